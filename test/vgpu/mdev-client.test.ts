// vGPUs on the mock kernel's mdev bus, served by the core's VgpuDevice and opened with
// the ordinary VFIO client (openPciDevice with the UUID, as QEMU does with sysfsdev):
// open and release reach the vendor and the registry, remove is refused while open,
// other vGPUs come and go meanwhile, and throwing vendor callbacks give the user EIO
// while the registry and the other vGPUs carry on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMockSys, type MockSysLayer } from '../../src/sys/mock.js';
import { openPciDevice, type PciDeviceHandle } from '../../src/vfio/index.js';
import { attachMockKernel } from '../../src/vgpu/mdev/index.js';
import { VgpuRegistry } from '../../src/vgpu/registry.js';
import type { VgpuModel } from '../../src/vgpu/vendor.js';
import { assertErrno } from '../sys/mock-helpers.js';
import { PARENT_DIR, TYPES_DIR } from './mdev-helpers.js';
import { DRIVER, TestBoard, UUID_A, UUID_B, UUID_C } from './registry-vendor.js';

const T1 = `${TYPES_DIR}/tgpu-1Q`;

function fixture() {
  const sys = createMockSys();
  const registry = new VgpuRegistry();
  registry.registerDriver(DRIVER);
  const board = new TestBoard('board0');
  registry.addParent('tgpu', board);
  const bus = attachMockKernel(registry, sys.kernel);
  return { sys, registry, board, bus };
}

/** By UUID alone: the client finds the group through /sys/bus/mdev/devices/<uuid>/iommu_group. */
function openVgpu(sys: MockSysLayer, uuid: string): PciDeviceHandle {
  return openPciDevice(sys, uuid);
}

const removePath = (uuid: string) => `/sys/bus/mdev/devices/${uuid}/remove`;

describe('vGPUs through the VFIO client', () => {
  it('opens like a PCI function: vfio-pci shapes, registers reach the vendor; remove waits for the close', () => {
    const { sys, registry, board } = fixture();
    sys.sysfs.write(`${T1}/create`, `${UUID_A}\n`);
    const handle = openVgpu(sys, UUID_A);
    const model = board.live.get(UUID_A)!;
    assert.equal(model.opens, 1);
    assert.equal(registry.get(UUID_A)?.isOpen, true);
    assert.equal(handle.device.info.numRegions, 9);
    assert.deepEqual(handle.device.pciId, { vendor: 0x1de5, device: 0x0001 });
    const bar0 = handle.device.bar(0);
    assert.equal(bar0.size, 0x1000);
    assert.equal(bar0.read32(0x10), 0xcafe0010);
    bar0.write32(0x20, 0x55aa);
    assert.equal(model.registers.get(0x20), 0x55aa);
    assert.equal(bar0.read32(0x20), 0x55aa);

    assertErrno(() => sys.sysfs.write(removePath(UUID_A), '1'), 'EBUSY');
    assertErrno(() => registry.remove(UUID_A), 'EBUSY');
    assertErrno(() => registry.removeParent('board0'), 'EBUSY');
    assert.equal(board.removes, 0);
    handle.close();
    assert.equal(model.releases, 1);
    assert.equal(registry.get(UUID_A)?.isOpen, false);
    const group = sys.kernel.groupOf(UUID_A)!;
    sys.sysfs.write(removePath(UUID_A), '1');
    assert.equal(board.removes, 1);
    assertErrno(() => sys.open(`/dev/vfio/${group}`), 'ENOENT');
    assert.deepEqual(sys.kernel.deviceNames(), ['0000:00:04.0']);
  });

  it('open and release each time: the proposal\'s start and shutdown', () => {
    const { sys, board } = fixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    for (let i = 1; i <= 3; i++) {
      openVgpu(sys, UUID_A).close();
      assert.deepEqual([board.live.get(UUID_A)!.opens, board.live.get(UUID_A)!.releases], [i, i]);
    }
  });

  it('vGPUs of the parent are created, opened and removed while another is open', () => {
    const { sys, registry } = fixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    const a = openVgpu(sys, UUID_A);
    sys.sysfs.write(`${T1}/create`, UUID_B);
    sys.sysfs.write(`${T1}/create`, UUID_C);
    const b = openVgpu(sys, UUID_B);
    b.device.bar(0).write32(0, 7);
    assert.equal(b.device.bar(0).read32(0), 7);
    b.close();
    sys.sysfs.write(removePath(UUID_B), '1');
    sys.sysfs.write(removePath(UUID_C), '1');
    assert.equal(a.device.bar(0).read32(0), 0xcafe0000);
    assert.deepEqual(registry.list().map((v) => [v.uuid, v.isOpen]), [[UUID_A, true]]);
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), [UUID_A]);
    a.close();
  });

  it('a vendor open that throws: EIO (or its SysError) to the user; the vGPU stays, closed and usable', () => {
    const { sys, registry, board } = fixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    sys.sysfs.write(`${T1}/create`, UUID_B);
    const b = openVgpu(sys, UUID_B);
    board.failOpen = 'throw';
    assertErrno(() => openVgpu(sys, UUID_A), 'EIO');
    board.failOpen = 'ENOSPC';
    assertErrno(() => openVgpu(sys, UUID_A), 'ENOSPC');
    board.failOpen = undefined;
    assert.deepEqual(registry.list().map((v) => [v.uuid, v.isOpen]).sort(), [[UUID_A, false], [UUID_B, true]].sort());
    assert.equal(b.device.bar(0).read32(4), 0xcafe0004);
    const a = openVgpu(sys, UUID_A);
    assert.equal(a.device.bar(0).read32(8), 0xcafe0008);
    a.close();
    b.close();
    sys.sysfs.write(removePath(UUID_A), '1');
  });

  it('a register handler that throws: the access fails EIO; registry and other vGPUs intact', () => {
    const { sys, registry, board } = fixture();
    sys.sysfs.write(`${T1}/create`, UUID_A);
    sys.sysfs.write(`${T1}/create`, UUID_B);
    const a = openVgpu(sys, UUID_A);
    const b = openVgpu(sys, UUID_B);
    board.failRegister = 'throw';
    assertErrno(() => a.device.bar(0).read32(0), 'EIO');
    assertErrno(() => a.device.bar(0).write32(0, 1), 'EIO');
    board.failRegister = undefined;
    assert.equal(a.device.bar(0).read32(0), 0xcafe0000);
    assert.equal(b.device.bar(0).read32(0), 0xcafe0000);
    assert.equal(registry.size, 2);
    assert.deepEqual(registry.list().map((v) => v.isOpen), [true, true]);
    assert.equal(sys.sysfs.read(`${T1}/available_instances`), '6');
    a.close();
    b.close();
    sys.sysfs.write(removePath(UUID_A), '1');
    sys.sysfs.write(removePath(UUID_B), '1');
    assert.equal(board.live.size, 0);
  });

  it('a model the core cannot serve fails the create with EIO and leaves nothing', () => {
    const { sys, registry, board } = fixture();
    const before = sys.sysfs.list(PARENT_DIR);
    const create = board.createVgpu.bind(board);
    board.createVgpu = (type, uuid): VgpuModel => {
      const model = create(type, uuid);
      return { ...model, bars: [{ ...model.bars[0]!, size: 3000 }] };
    };
    assertErrno(() => sys.sysfs.write(`${T1}/create`, UUID_A), 'EIO');
    assert.deepEqual(sys.sysfs.list(PARENT_DIR), before);
    assert.deepEqual(sys.sysfs.list('/sys/bus/mdev/devices'), []);
    assert.deepEqual(sys.kernel.deviceNames(), ['0000:00:04.0']);
    assert.equal(registry.size, 0);
    assert.equal(board.removes, 1);
    assert.equal(board.live.size, 0);
  });
});
