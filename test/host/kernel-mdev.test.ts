// Kernel mdev parents against a fake sysfs tree (fixtures/sysfs-mtty.ts): what the host
// reads from the kernel's files, and the exact bytes it writes to `create` and `remove`.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createHost, type Host } from '../../src/host/host.js';
import { KernelMdevParents } from '../../src/host/kernel-mdev.js';
import { createFsSysfs } from '../../src/sys/fs-sysfs.js';
import { createMockSys } from '../../src/sys/index.js';
import { createFakeMttyKernel, MTTY_TYPES, type FakeMttyKernel } from './fixtures/sysfs-mtty.js';

const U1 = '1b2c3d4e-0000-4000-8000-000000000001';
const U2 = '1b2c3d4e-0000-4000-8000-000000000002';

describe('createFsSysfs', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'vgpu-fs-sysfs-'));
    mkdirSync(join(root, 'sys/a'), { recursive: true });
    writeFileSync(join(root, 'sys/a/attr'), 'value\n');
    symlinkSync('/etc', join(root, 'sys/out'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reads, lists and writes under the root, with the trailing newline removed', () => {
    const fs = createFsSysfs(root);
    assert.equal(fs.read('/sys/a/attr'), 'value');
    assert.deepEqual(fs.list('/sys/a'), ['attr']);
    assert.equal(fs.exists('/sys/a/attr'), true);
    assert.equal(fs.exists('/sys/a/none'), false);
    fs.write('/sys/a/attr', 'X');
    assert.equal(readFileSync(join(root, 'sys/a/attr'), 'utf8'), 'Xalue\n'); // no O_TRUNC, like sysfs
    assert.equal(fs.readlink('/sys/out'), '/etc');
  });

  it('keeps ".." inside the root and refuses links that lead out of it (EXDEV)', () => {
    const fs = createFsSysfs(root);
    assert.equal(fs.read('/../../sys/a/attr'), 'value');
    assert.throws(() => fs.list('/sys/out'), { code: 'EXDEV' });
    assert.throws(() => fs.read('/sys/out/hostname'), { code: 'EXDEV' });
    assert.equal(fs.exists('/sys/out/hostname'), false);
  });

  it('gives errnos: ENOENT for a missing file, EINVAL for a relative path, no O_CREAT on write', () => {
    const fs = createFsSysfs(root);
    assert.throws(() => fs.read('/sys/a/none'), { code: 'ENOENT', errno: 2 });
    assert.throws(() => fs.read('sys/a/attr'), { code: 'EINVAL' });
    assert.throws(() => fs.write('/sys/a/new', '1'), { code: 'ENOENT' });
    assert.throws(() => fs.list('/sys/a/attr'), { code: 'ENOTDIR' });
  });
});

describe('KernelMdevParents on a fake mtty tree', () => {
  let kernel: FakeMttyKernel;
  beforeEach(() => {
    kernel = createFakeMttyKernel();
  });
  afterEach(() => kernel.cleanup());

  it('lists the parent and its types with the kernel files\' values', () => {
    const mdev = new KernelMdevParents(kernel.sysfs);
    assert.deepEqual(mdev.parents(), ['mtty']);
    assert.deepEqual(mdev.types(), [
      { parent: 'mtty', id: 'mtty-1', name: 'Single port serial', description: '', deviceApi: 'vfio-pci', availableInstances: 24, attributes: {} },
      { parent: 'mtty', id: 'mtty-2', name: 'Dual port serial', description: 'two 16550 ports', deviceApi: 'vfio-pci', availableInstances: 12, attributes: {} },
    ]);
    assert.equal(mdev.hasType('mtty', 'mtty-2'), true);
    assert.equal(mdev.hasType('mtty', 'mtty-3'), false);
    assert.equal(mdev.hasParent('MTTY'), false);
  });

  it('creates by writing the UUID to create, lists from /sys/bus/mdev/devices, removes by writing 1', () => {
    const mdev = new KernelMdevParents(kernel.sysfs);
    mdev.create('mtty', 'mtty-2', U1);
    assert.deepEqual(kernel.writes, [{ path: `/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create`, value: U1 }]);
    assert.equal(readFileSync(join(kernel.root, MTTY_TYPES, 'mtty-2/create'), 'utf8'), U1);
    assert.deepEqual(mdev.devices(), [{ uuid: U1, parent: 'mtty', type: 'mtty-2', group: 10 }]);
    assert.equal(mdev.availableInstances('mtty', 'mtty-1'), 22);
    assert.equal(mdev.availableInstances('mtty', 'mtty-2'), 11);
    mdev.remove(U1);
    assert.deepEqual(kernel.writes[1], { path: `/sys/bus/mdev/devices/${U1}/remove`, value: '1' });
    assert.deepEqual(mdev.devices(), []);
    assert.equal(mdev.availableInstances('mtty', 'mtty-1'), 24);
  });

  it('passes the kernel\'s errnos through (EEXIST for a duplicate UUID)', () => {
    const mdev = new KernelMdevParents(kernel.sysfs);
    mdev.create('mtty', 'mtty-1', U1);
    assert.throws(() => mdev.create('mtty', 'mtty-1', U1), { code: 'EEXIST' });
  });

  it('sees nothing where there is no mdev class (no mdev module loaded)', () => {
    const empty = mkdtempSync(join(tmpdir(), 'vgpu-empty-'));
    try {
      const mdev = new KernelMdevParents(createFsSysfs(empty));
      assert.deepEqual(mdev.parents(), []);
      assert.deepEqual(mdev.devices(), []);
      assert.deepEqual(mdev.types(), []);
    } finally {
      rmSync(empty, { recursive: true });
    }
  });
});

describe('Host with kernel mdev parents beside the simulated ones', () => {
  let kernel: FakeMttyKernel;
  let defs: string;
  let host: Host;
  beforeEach(() => {
    kernel = createFakeMttyKernel({ deviceAttributes: ['speed', 'mode'] });
    defs = mkdtempSync(join(tmpdir(), 'vgpu-defs-'));
    host = createHost({ sys: createMockSys({ devices: [] }), definitionsRoot: defs, kernelSysfs: kernel.sysfs });
  });
  afterEach(async () => {
    await host.close();
    kernel.cleanup();
    rmSync(defs, { recursive: true, force: true });
  });

  it('shows both kinds of parent in types and list, one view', async () => {
    const types = await host.types();
    assert.deepEqual([...new Set(types.map((t) => t.parent))], ['simgpu0', 'display0', 'mtty']);
    assert.deepEqual((await host.types({ parent: 'mtty' })).map((t) => `${t.id}=${t.availableInstances}`), ['mtty-1=24', 'mtty-2=12']);
    const sim = await host.start({ parent: 'simgpu0', type: 'simgpu-8Q' });
    const tty = await host.start({ parent: 'mtty', type: 'mtty-1', uuid: U1 });
    assert.equal(tty, U1);
    assert.deepEqual((await host.list()).map((d) => [d.uuid, d.parent, d.type]), [[sim, 'simgpu0', 'simgpu-8Q'], [U1, 'mtty', 'mtty-1']]);
    assert.deepEqual(await host.list({ parent: 'mtty' }), [{ uuid: U1, parent: 'mtty', type: 'mtty-1', open: false, group: 10 }]);
  });

  it('writes the attrs in order after the create', async () => {
    await host.start({ parent: 'mtty', uuid: U1, definition: { type: 'mtty-2', attrs: [{ name: 'speed', value: '115200' }, { name: 'mode', value: 'raw' }] } });
    assert.deepEqual(kernel.writes.map((w) => `${w.path}=${w.value}`), [
      `/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=${U1}`,
      `/sys/bus/mdev/devices/${U1}/speed=115200`,
      `/sys/bus/mdev/devices/${U1}/mode=raw`,
    ]);
  });

  it('removes the device again when an attr write fails (no half-configured device)', async () => {
    await assert.rejects(
      host.start({ parent: 'mtty', uuid: U1, definition: { type: 'mtty-1', attrs: [{ name: 'speed', value: '9600' }, { name: 'mode', value: 'bad' }] } }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'EINVAL');
        assert.match(err.message, /^attribute "mode" of 1b2c3d4e-0000-4000-8000-000000000001: .*EINVAL.*; the device was removed again$/);
        return true;
      },
    );
    assert.deepEqual(kernel.writes.map((w) => w.path.split('/').pop()), ['create', 'speed', 'mode', 'remove']);
    assert.deepEqual(await host.list(), []);
    assert.equal(kernel.portsLeft(), 24);
  });

  it('stop writes 1 to remove; a second stop is ENODEV', async () => {
    await host.start({ parent: 'mtty', type: 'mtty-1', uuid: U2 });
    await host.stop(U2);
    assert.deepEqual(kernel.writes.at(-1), { path: `/sys/bus/mdev/devices/${U2}/remove`, value: '1' });
    await assert.rejects(host.stop(U2), { code: 'ENODEV', message: `device ${U2} is not running` });
  });

  it('refuses unknown types and a case-mismatched parent with a hint, and a full pool', async () => {
    await assert.rejects(host.start({ parent: 'MTTY', type: 'mtty-1' }), { code: 'ENOENT', message: 'unknown parent MTTY (did you mean mtty?)' });
    await assert.rejects(host.start({ parent: 'mtty', type: 'MTTY-1' }), { code: 'ENOENT', message: 'parent mtty has no type MTTY-1 (did you mean mtty-1?)' });
    for (let i = 0; i < 12; i++) await host.start({ parent: 'mtty', type: 'mtty-2' });
    await assert.rejects(host.start({ parent: 'mtty', type: 'mtty-1' }), { code: 'EUSERS', message: 'No available instances of mtty-1 on mtty' });
    assert.equal(kernel.writes.filter((w) => w.path.endsWith('/create')).length, 12);
  });

  it('close() removes the kernel mdevs this host created', async () => {
    await host.start({ parent: 'mtty', type: 'mtty-1', uuid: U1 });
    await host.close();
    assert.deepEqual(new KernelMdevParents(kernel.sysfs).devices(), []);
  });

  it('info on a kernel mdev says what it could not open (this fd layer has no such group)', async () => {
    await host.start({ parent: 'mtty', type: 'mtty-1', uuid: U1 });
    const { lines } = await host.info(U1);
    assert.equal(lines[0], `${U1}: mtty-1 on mtty, IOMMU group 10`);
    assert.match(lines[1]!, /^ {2}not opened here \(ENOENT: .*\): regions and config space unknown$/);
  });
});

describe('Host without simulated parents', () => {
  it('offers only the kernel\'s parents', async () => {
    const kernel = createFakeMttyKernel();
    const defs = mkdtempSync(join(tmpdir(), 'vgpu-defs-'));
    const host = createHost({ sys: createMockSys({ devices: [] }), definitionsRoot: defs, kernelSysfs: kernel.sysfs, simulated: false });
    try {
      assert.deepEqual(host.parentNames(), ['mtty']);
      assert.deepEqual((await host.types()).map((t) => t.id), ['mtty-1', 'mtty-2']);
      await assert.rejects(host.start({ parent: 'simgpu0', type: 'simgpu-1Q' }), { code: 'ENOENT', message: 'unknown parent simgpu0 (parents: mtty)' });
    } finally {
      await host.close();
      kernel.cleanup();
      rmSync(defs, { recursive: true, force: true });
    }
  });
});
