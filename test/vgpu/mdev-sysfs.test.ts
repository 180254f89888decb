// The mdev sysfs ABI on the mock kernel: the tree's shape, links and attribute text,
// create and remove written as a user writes them (errnos as the kernel's), each vGPU
// its own IOMMU group and /dev/vfio/<N>, remove refused while open, rollback at every
// step of a create that fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import { MockMdevBus } from '../../src/vgpu/mdev/bus.js';
import { VgpuRegistry } from '../../src/vgpu/registry.js';
import { assertErrno } from '../sys/mock-helpers.js';
import { groupOf, mdevFixture, openRaw, PARENT_DIR, TYPES_DIR } from './mdev-helpers.js';
import { DRIVER, fakeVgpuDevice, TestBoard, UUID_A, UUID_B, UUID_C } from './registry-vendor.js';

const T1 = `${TYPES_DIR}/tgpu-1Q`;
const T2 = `${TYPES_DIR}/tgpu-2Q`;

/** Every path under `dir` (links listed, not followed), for before/after comparisons. */
function tree(sys: ReturnType<typeof mdevFixture>['sys'], dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string): void => {
    for (const name of sys.sysfs.list(path)) {
      const child = `${path}/${name}`;
      out.push(child);
      let isLink = true;
      try { sys.sysfs.readlink(child); } catch { isLink = false; }
      if (!isLink) {
        try { sys.sysfs.list(child); } catch { continue; }
        walk(child);
      }
    }
  };
  walk(dir);
  return out;
}

function snapshot(sys: ReturnType<typeof mdevFixture>['sys']): string[] {
  return ['/sys/devices/virtual', '/sys/bus/mdev', '/sys/class/mdev_bus', '/sys/kernel/iommu_groups'].flatMap((d) => tree(sys, d));
}

describe('mdev sysfs: the tree', () => {
  it('parent: class link, mdev_supported_types with one directory per type', () => {
    const { sys } = mdevFixture();
    assert.deepEqual(sys.sysfs.list('/sys/class/mdev_bus'), ['board0']);
    assert.equal(sys.sysfs.readlink('/sys/class/mdev_bus/board0'), '../../devices/virtual/tgpu/board0');
    assert.deepEqual(sys.sysfs.list('/sys/class/mdev_bus/board0'), ['mdev_supported_types']);
    assert.deepEqual(sys.sysfs.list(TYPES_DIR), ['tgpu-1Q', 'tgpu-2Q', 'tgpu-4Q', 'tgpu-8Q']);
    assert.deepEqual(sys.sysfs.list(T1),
      ['available_instances', 'create', 'description', 'device_api', 'devices', 'framebuffer', 'heads', 'max_resolution', 'name']);
    // No description for a type without one (the kernel hides the attribute).
    assert.deepEqual(sys.sysfs.list(`${TYPES_DIR}/tgpu-8Q`),
      ['available_instances', 'create', 'device_api', 'devices', 'framebuffer', 'heads', 'max_resolution', 'name']);
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), []);
  });

  it('type attributes: name, description, device_api, available_instances, driver attributes', () => {
    const { sys } = mdevFixture();
    const via = '/sys/class/mdev_bus/board0/mdev_supported_types/tgpu-2Q';
    assert.equal(sys.sysfs.read(`${via}/name`), 'TGPU-2Q');
    assert.equal(sys.sysfs.read(`${via}/description`), '2 GiB framebuffer, 2 heads');
    assert.equal(sys.sysfs.read(`${via}/device_api`), 'vfio-pci');
    assert.equal(sys.sysfs.read(`${via}/available_instances`), '4');
    assert.equal(sys.sysfs.read(`${via}/framebuffer`), '2G');
    assert.equal(sys.sysfs.read(`${via}/max_resolution`), '4096x2160');
    assert.deepEqual(sys.sysfs.list(`${via}/devices`), []);
  });

  it('create is write-only and the other attributes read-only (EACCES)', () => {
    const { sys } = mdevFixture();
    assertErrno(() => sys.sysfs.read(`${T1}/create`), 'EACCES');
    for (const name of ['name', 'description', 'available_instances', 'device_api', 'framebuffer']) {
      assertErrno(() => sys.sysfs.write(`${T1}/${name}`, '1'), 'EACCES');
    }
    assertErrno(() => sys.sysfs.write(`${T1}/devices`, '1'), 'EISDIR');
  });

  it('a vGPU: its directory under the parent, remove, mdev_type, iommu_group, and the links to it', () => {
    const { sys } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, `${UUID_A}\n`);
    const dir = `${PARENT_DIR}/${UUID_A}`;
    assert.deepEqual(sys.sysfs.list(dir), ['driver', 'iommu_group', 'mdev_type', 'remove', 'subsystem', 'uevent']);
    // What the driver core gives a bound device: its driver (the vendor's), its bus, uevent.
    assert.equal(sys.sysfs.readlink(`${dir}/driver`), '../../../../../bus/mdev/drivers/tgpu');
    assert.equal(sys.sysfs.readlink(`${dir}/subsystem`), '../../../../../bus/mdev');
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/drivers/tgpu'), [UUID_A]);
    assert.equal(sys.sysfs.read(`${dir}/uevent`), 'DRIVER=tgpu');
    sys.sysfs.write(`${dir}/uevent`, 'change\n');
    sys.sysfs.write(`${dir}/uevent`, `add ${UUID_B} A=1`);
    assertErrno(() => sys.sysfs.write(`${dir}/uevent`, 'bogus'), 'EINVAL');
    assertErrno(() => sys.sysfs.write(`${dir}/uevent`, 'add not-a-uuid'), 'EINVAL');
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), [UUID_A]);
    assert.equal(sys.sysfs.readlink(`/sys/bus/mdev/devices/${UUID_A}`), `../../../devices/virtual/tgpu/board0/${UUID_A}`);
    assert.equal(sys.sysfs.readlink(`${dir}/mdev_type`), '../mdev_supported_types/tgpu-1Q');
    assert.equal(sys.sysfs.read(`/sys/bus/mdev/devices/${UUID_A}/mdev_type/name`), 'TGPU-1Q');
    assert.deepEqual(sys.sysfs.list(`${T1}/devices`), [UUID_A]);
    assert.equal(sys.sysfs.readlink(`${T1}/devices/${UUID_A}`), `../../../${UUID_A}`);
    // The edu has group 0: the vGPU gets the next, with /dev/vfio/1 and the group's links.
    assert.equal(sys.sysfs.readlink(`${dir}/iommu_group`), '../../../../../kernel/iommu_groups/1');
    assert.equal(groupOf(sys, UUID_A), 1);
    assert.deepEqual(sys.sysfs.list('/sys/kernel/iommu_groups/1/devices'), [UUID_A]);
    assert.equal(sys.sysfs.readlink(`/sys/kernel/iommu_groups/1/devices/${UUID_A}`), `../../../../devices/virtual/tgpu/board0/${UUID_A}`);
    assert.equal(sys.sysfs.read('/sys/kernel/iommu_groups/1/reserved_regions'), '');
    assertErrno(() => sys.sysfs.read(`${dir}/remove`), 'EACCES');
    assert.equal(sys.kernel.groupOf(UUID_A), 1);
  });

  it('each vGPU gets its own group; numbers are reused after remove', () => {
    const { sys } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    sys.sysfs.write(`${T1}/create`, UUID_B);
    assert.deepEqual([groupOf(sys, UUID_A), groupOf(sys, UUID_B)], [1, 2]);
    sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
    assert.deepEqual(sys.sysfs.list('/sys/kernel/iommu_groups'), ['0', '2']);
    sys.sysfs.write(`${T1}/create`, UUID_C);
    assert.equal(groupOf(sys, UUID_C), 1);
  });
});

describe('mdev sysfs: create', () => {
  it('a UUID with or without a newline, either case; the directory is lower case', () => {
    const { sys, registry } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    sys.sysfs.write(`${T1}/create`, `${UUID_B.toUpperCase()}\n`);
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), [UUID_B, UUID_A].sort());
    assert.equal(registry.get(UUID_B)?.type.id, 'tgpu-1Q');
    assert.equal(sys.sysfs.read(`${T1}/available_instances`), '6');
  });

  it('the kernel\'s length and parse rules: EINVAL, and the 37th byte is not looked at', () => {
    const { sys, registry, board } = mdevFixture();
    for (const bad of [UUID_A.slice(0, 35), `${UUID_A}\n\n`, `${UUID_A} \n`, ` ${UUID_A}`, UUID_A.replace(/-/g, ':'),
      UUID_A.replace('c', 'g'), 'c0b26072dd1b434084febf338c510818', '1', '\n']) {
      assertErrno(() => sys.sysfs.write(`${T1}/create`, bad), 'EINVAL');
    }
    assert.equal(board.creates, 0);
    sys.sysfs.write(`${T1}/create`, `${UUID_A}x`);
    assert.equal(registry.get(UUID_A)?.uuid, UUID_A);
  });

  it('a zero-length write does nothing', () => {
    const { sys, registry } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, '');
    assert.equal(registry.size, 0);
  });

  it('EEXIST for a UUID in use, ENOSPC when available_instances is 0', () => {
    const { sys, board } = mdevFixture();
    sys.sysfs.write(`${T2}/create`, UUID_A);
    assertErrno(() => sys.sysfs.write(`${T2}/create`, UUID_A), 'EEXIST');
    assertErrno(() => sys.sysfs.write(`${T1}/create`, UUID_A.toUpperCase()), 'EEXIST');
    // A 2Q runs: the other types are narrowed to 0.
    assert.equal(sys.sysfs.read(`${T1}/available_instances`), '0');
    assert.equal(sys.sysfs.read(`${T2}/available_instances`), '3');
    assertErrno(() => sys.sysfs.write(`${T1}/create`, UUID_B), 'ENOSPC');
    for (const u of [UUID_B, UUID_C, 'aaaaaaaa-0000-0000-0000-000000000000']) sys.sysfs.write(`${T2}/create`, u);
    assert.equal(sys.sysfs.read(`${T2}/available_instances`), '0');
    assertErrno(() => sys.sysfs.write(`${T2}/create`, 'bbbbbbbb-0000-0000-0000-000000000000'), 'ENOSPC');
    assert.equal(board.creates, 4);
    const err = (() => { try { sys.sysfs.write(`${T2}/create`, 'bbbbbbbb-0000-0000-0000-000000000000'); } catch (e) { return e; } })();
    assert.ok(isSysError(err));
    assert.equal(err.errno, 28);
    assert.equal(err.syscall, 'write');
  });

  it('a vendor failure: its SysError passes (ENOSPC), anything else EIO; the tree is as before', () => {
    const { sys, registry, board } = mdevFixture();
    const before = snapshot(sys);
    board.failCreate = 'ENOSPC';
    assertErrno(() => sys.sysfs.write(`${T1}/create`, UUID_A), 'ENOSPC');
    board.failCreate = 'throw';
    assertErrno(() => sys.sysfs.write(`${T1}/create`, UUID_A), 'EIO');
    assert.deepEqual(snapshot(sys), before);
    assert.equal(registry.size, 0);
    board.failAvailable = 'throw';
    assertErrno(() => sys.sysfs.read(`${T1}/available_instances`), 'EIO');
    assertErrno(() => sys.sysfs.write(`${T1}/create`, UUID_A), 'EIO');
    board.failAvailable = undefined;
    assert.deepEqual(snapshot(sys), before);
    assert.equal(sys.sysfs.read(`${T1}/available_instances`), '8');
  });

  it('a failure at each step of adding the vGPU to the kernel is rolled back completely', () => {
    // Step 1: making the device. Step 2: registering it (a clashing device name).
    // Steps 3-5: the sysfs nodes (an entry already where one must go).
    const steps: [string, (f: ReturnType<typeof mdevFixture>) => void][] = [
      ['device', () => {}],
      ['register', (f) => f.sys.kernel.registerDevice(fakeVgpuDevice({ uuid: UUID_A } as never), { iommuBacked: false })],
      ['type devices link', (f) => f.sys.kernel.sysfs.mkdir(`${T1}/devices/${UUID_A}`)],
      ['bus link', (f) => f.sys.kernel.sysfs.mkdir(`/sys/bus/mdev/devices/${UUID_A}`)],
    ];
    for (const [step, arrange] of steps) {
      let broken = step === 'device';
      const f = mdevFixture((vgpu) => {
        if (broken) throw new Error('no device');
        return fakeVgpuDevice(vgpu);
      });
      arrange(f);
      const before = snapshot(f.sys);
      const groups = f.sys.kernel.deviceNames();
      const code = step === 'register' ? 'EEXIST' : 'EIO';
      assertErrno(() => f.sys.sysfs.write(`${T1}/create`, UUID_A), code);
      assert.deepEqual(snapshot(f.sys), before, step);
      assert.deepEqual(f.sys.kernel.deviceNames(), groups, step);
      assert.equal(f.registry.size, 0, step);
      assert.equal(f.board.creates, 1, step);
      assert.equal(f.board.removes, 1, step);
      assert.equal(f.board.live.size, 0, step);
      assert.equal(f.sys.sysfs.read(`${T1}/available_instances`), '8', step);
      broken = false;
      f.sys.sysfs.write(`${T1}/create`, UUID_B);
      assert.equal(f.registry.get(UUID_B)?.state, 'live', step);
    }
  });
});

describe('mdev sysfs: remove', () => {
  it('kstrtoul: a non-number is EINVAL, 0 does nothing, any other number removes', () => {
    const { sys, registry, board } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    const remove = `/sys/bus/mdev/devices/${UUID_A}/remove`;
    for (const bad of ['x', 'yes', ' 1', '1 ', '-1', '1\n\n', '08', '0x', '18446744073709551616']) {
      assertErrno(() => sys.sysfs.write(remove, bad), 'EINVAL');
    }
    for (const nothing of ['', '0', '0\n', '00', '0x0']) sys.sysfs.write(remove, nothing);
    assert.equal(registry.size, 1);
    assert.equal(board.removes, 0);
    sys.sysfs.write(remove, '0x2\n');
    assert.equal(registry.size, 0);
    assert.equal(board.removes, 1);
    assert.equal(sys.sysfs.exists(`/sys/bus/mdev/devices/${UUID_A}`), false);
    assert.equal(sys.sysfs.exists(`${PARENT_DIR}/${UUID_A}`), false);
    assert.deepEqual(sys.sysfs.list(`${T1}/devices`), []);
    assert.deepEqual(sys.sysfs.list('/sys/kernel/iommu_groups'), ['0']);
    assertErrno(() => sys.open('/dev/vfio/1'), 'ENOENT');
    assertErrno(() => sys.sysfs.write(remove, '1'), 'ENOENT');
  });

  it('removes through every path to the file, back to the tree before the create', () => {
    for (const path of [`/sys/bus/mdev/devices/${UUID_A}/remove`, `${PARENT_DIR}/${UUID_A}/remove`, `${T1}/devices/${UUID_A}/remove`]) {
      const { sys } = mdevFixture();
      const before = snapshot(sys);
      sys.sysfs.write(`${T1}/create`, UUID_A);
      sys.sysfs.write(path, '1\n');
      assert.deepEqual(snapshot(sys), before, path);
    }
  });

  it('EBUSY while the device is open, and while only its group is; removable once closed', () => {
    const { sys, registry, board } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    const remove = `/sys/bus/mdev/devices/${UUID_A}/remove`;
    const user = openRaw(sys, UUID_A);
    const model = board.live.get(UUID_A)!;
    assert.equal(model.opens, 1);
    assert.equal(registry.get(UUID_A)?.isOpen, true);
    assertErrno(() => sys.sysfs.write(remove, '1'), 'EBUSY');
    sys.close(user.device);
    assert.equal(model.releases, 1);
    assert.equal(registry.get(UUID_A)?.isOpen, false);
    // The group is still open (the user holds its fd): still refused, nothing changed.
    assertErrno(() => sys.sysfs.write(remove, '1'), 'EBUSY');
    assert.equal(registry.get(UUID_A)?.state, 'live');
    assert.equal(sys.sysfs.readlink(`/sys/bus/mdev/devices/${UUID_A}/mdev_type`), '../mdev_supported_types/tgpu-1Q');
    sys.close(user.group);
    sys.close(user.container);
    sys.sysfs.write(remove, '1');
    assert.equal(registry.size, 0);
    assert.equal(board.removes, 1);
  });

  it('vGPUs are created and removed while another is open', () => {
    const { sys, registry } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    const user = openRaw(sys, UUID_A);
    sys.sysfs.write(`${T1}/create`, UUID_B);
    sys.sysfs.write(`${T1}/create`, UUID_C);
    sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_B}/remove`, '1');
    const other = openRaw(sys, UUID_C);
    assert.deepEqual(registry.list().map((v) => [v.uuid, v.isOpen]).sort(), [[UUID_A, true], [UUID_C, true]].sort());
    other.close();
    sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_C}/remove`, '1');
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), [UUID_A]);
    user.close();
  });

  it('a model whose open throws: the user sees the error, the vGPU stays and is not open', () => {
    const { sys, registry, board } = mdevFixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    board.failOpen = 'ENOSPC';
    assertErrno(() => openRaw(sys, UUID_A), 'ENOSPC');
    assert.equal(registry.get(UUID_A)?.isOpen, false);
    board.failOpen = undefined;
    sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
  });

  it('a vendor removeVgpu that throws: EIO, and the vGPU is gone from sysfs and the kernel', () => {
    const { sys, registry, board } = mdevFixture();
    const before = snapshot(sys);
    sys.sysfs.write(`${T1}/create`, UUID_A);
    board.failRemove = 'throw';
    assertErrno(() => sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1'), 'EIO');
    assert.deepEqual(snapshot(sys), before);
    assert.equal(registry.size, 0);
    board.failRemove = undefined;
    sys.sysfs.write(`${T1}/create`, UUID_A);
  });
});

describe('mdev sysfs: parents', () => {
  it('a parent removed takes its vGPUs, its types and its class link with it', () => {
    const { sys, registry } = mdevFixture();
    const board1 = new TestBoard('board1', 4);
    registry.addParent('tgpu', board1);
    assert.deepEqual(sys.sysfs.list('/sys/class/mdev_bus'), ['board0', 'board1']);
    assert.equal(sys.sysfs.read('/sys/class/mdev_bus/board1/mdev_supported_types/tgpu-1Q/available_instances'), '4');
    sys.sysfs.write('/sys/class/mdev_bus/board1/mdev_supported_types/tgpu-1Q/create', UUID_A);
    sys.sysfs.write(`${T1}/create`, UUID_B);
    registry.removeParent('board1');
    assert.deepEqual(sys.sysfs.list('/sys/class/mdev_bus'), ['board0']);
    assert.equal(sys.sysfs.exists('/sys/devices/virtual/tgpu/board1'), false);
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), [UUID_B]);
    assert.equal(board1.live.size, 0);
  });

  it('a parent given its own directory (one that exists) keeps it when it goes', () => {
    const sys = mdevFixture().sys;
    const registry = new VgpuRegistry();
    registry.registerDriver(DRIVER);
    sys.kernel.sysfs.mkdir('/sys/devices/platform/gpu0');
    const bus = new MockMdevBus(registry, sys.kernel, { createDevice: fakeVgpuDevice, parentDir: (p) => `/sys/devices/platform/${p.name}` });
    // A second registry's bus on the same kernel: its parents need names of their own.
    registry.attach(bus);
    registry.addParent('tgpu', new TestBoard('gpu0'));
    assert.equal(sys.sysfs.readlink('/sys/class/mdev_bus/gpu0'), '../../devices/platform/gpu0');
    assert.equal(bus.parentDir(registry.parent('gpu0')!), '/sys/devices/platform/gpu0');
    registry.create('gpu0', 'tgpu-4Q', UUID_C);
    assert.equal(sys.sysfs.readlink(`/sys/bus/mdev/devices/${UUID_C}`), `../../../devices/platform/gpu0/${UUID_C}`);
    registry.removeParent('gpu0');
    assert.deepEqual(sys.sysfs.list('/sys/devices/platform/gpu0'), []);
    assert.deepEqual(sys.sysfs.list('/sys/class/mdev_bus'), ['board0']);
  });

  it('a parent whose directory cannot be made is refused and leaves nothing', () => {
    const { sys, registry } = mdevFixture();
    sys.kernel.sysfs.mkdir('/sys/devices/virtual/tgpu/board2/mdev_supported_types');
    const before = snapshot(sys);
    assertErrno(() => registry.addParent('tgpu', new TestBoard('board2')), 'EEXIST');
    assert.deepEqual(snapshot(sys), before);
    assert.equal(registry.parent('board2'), undefined);
  });
});
