// A simgpu vGPU as users reach it: created through the mdev sysfs `create` file, opened
// through the VFIO client like any vfio-pci function, and removed through `remove`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { flags, pciIrq } from '../../src/uapi/constants.js';
import { SimGpuGuest } from '../../src/vendors/simgpu/guest.js';
import { Group } from '../../src/vfio/index.js';
import { SIMGPU_ID, SimGpuInt, SimGpuReg } from '../../src/vendors/simgpu/registers.js';
import { simgpuWorld, testUuid } from './simgpu-world.js';

const GiB = 1024 ** 3;

test('sysfs: create by writing a UUID, the mdev nodes, available_instances narrowed, remove restores', () => {
  const world = simgpuWorld([{ framebufferSize: 2 * GiB }]);
  const { sysfs } = world.sys;
  const uuid = testUuid(1);
  try {
    assert.equal(sysfs.read(`${world.typeDir('1Q')}/available_instances`), '2');
    assert.equal(sysfs.read(`${world.typeDir('1Q')}/name`), 'GRID M60-1Q');
    assert.equal(sysfs.read(`${world.typeDir('1Q')}/device_api`), 'vfio-pci');
    assert.equal(sysfs.read(`${world.typeDir('1Q')}/framebuffer`), String(GiB));
    world.create('1Q', `${uuid}\n`);
    assert.equal(sysfs.read(`${world.typeDir('1Q')}/available_instances`), '1');
    assert.equal(sysfs.read(`${world.typeDir('0B')}/available_instances`), '0', 'narrowed to the living type');
    assert.deepEqual(sysfs.list(`${world.typeDir('1Q')}/devices`), [uuid]);
    const dev = `/sys/bus/mdev/devices/${uuid}`;
    assert.equal(posix.basename(sysfs.readlink(`${dev}/mdev_type`)), 'simgpu-1Q');
    const group = Group.numberOf(world.sys, uuid);
    assert.ok(sysfs.exists(`/sys/kernel/iommu_groups/${group}/devices/${uuid}`));
    // Only the living type can be created; a second one fits; a third does not.
    assert.throws(() => world.create('0B', testUuid(2)), { code: 'ENOSPC' });
    world.create('1Q', testUuid(3));
    assert.throws(() => world.create('1Q', testUuid(4)), { code: 'ENOSPC' });
    assert.throws(() => world.create('1Q', uuid), { code: 'EEXIST' });
    assert.throws(() => world.create('1Q', 'not-a-uuid'), { code: 'EINVAL' });
    world.remove(testUuid(3));
    world.remove(uuid);
    assert.equal(sysfs.exists(dev), false);
    assert.equal(sysfs.read(`${world.typeDir('0B')}/available_instances`), '4');
    assert.equal(sysfs.read(`${world.typeDir('1Q')}/available_instances`), '2');
    assert.throws(() => world.sys.open(`/dev/vfio/${group}`), { code: 'ENOENT' });
  } finally {
    world.close();
  }
});

test('the client opens a vGPU like a PCI function: identity, capabilities, regions, irqs', () => {
  const world = simgpuWorld([{ framebufferSize: GiB }]);
  const uuid = world.create('0Q', testUuid(1));
  const guest = SimGpuGuest.open(world.sys, uuid);
  try {
    const { device } = guest;
    const config = device.config;
    assert.equal(config.vendorId, 0x1234);
    assert.equal(config.deviceId, 0x5347);
    assert.equal(config.classCode, 0x030000);
    assert.equal(config.revisionId, 1);
    assert.equal(config.subsystemVendorId, 0x1234);
    assert.equal(config.subsystemId, 12, 'the 0Q type id');
    assert.equal(config.interruptPin, 1);
    assert.deepEqual(config.capabilities().filter((c) => !c.extended).map((c) => c.id).sort((a, b) => a - b), [0x01, 0x05, 0x10], 'PM, MSI, PCIe');
    assert.equal(device.info.pci, true);
    const bar0 = device.bar(0);
    assert.equal(bar0.size, 4096);
    assert.equal(bar0.mmappable, false, 'registers are trapped');
    const bar1 = device.bar(1);
    assert.equal(bar1.size, 512 * 1024 * 1024);
    assert.equal(bar1.mmappable, true);
    assert.equal(config.bar(1) & 0xf, 0xc, '64-bit prefetchable memory');
    assert.equal(device.bar(2).size, 0, 'the upper half of BAR1');
    assert.equal(device.irqs.info(pciIrq.VFIO_PCI_MSI_IRQ_INDEX)?.count, 1);
    assert.equal(device.irqs.info(pciIrq.VFIO_PCI_INTX_IRQ_INDEX)?.count, 1);
    assert.equal(bar0.read32(SimGpuReg.ID), SIMGPU_ID);
    assert.deepEqual(guest.info, { typeId: 12, framebufferSize: 512 * 1024 * 1024, heads: 2, maxWidth: 2560, maxHeight: 1600 });
    // 1- and 2-byte reads reach the bytes of a register; writes to identity registers do nothing.
    assert.equal(bar0.read8(SimGpuReg.ID + 3), SIMGPU_ID >>> 24);
    assert.equal(bar0.read16(SimGpuReg.MAX_RES + 2), 2560);
    bar0.write32(SimGpuReg.ID, 0);
    assert.equal(bar0.read32(SimGpuReg.ID), SIMGPU_ID);
    // 8-byte accesses arrive as two 4-byte pieces.
    bar0.write64(SimGpuReg.RING_BASE_LO, 0x1_2345_6000n);
    assert.equal(bar0.read64(SimGpuReg.RING_BASE_LO), 0x1_2345_6000n);
    assert.equal(bar0.read32(0x800), 0, 'unused offsets read 0');
    assert.ok((bar0.flags & flags.VFIO_REGION_INFO_FLAG_READ) !== 0);
  } finally {
    guest.close();
    world.close();
  }
});

test('remove refuses an open vGPU with EBUSY and completes once it is released', () => {
  const world = simgpuWorld([{ framebufferSize: GiB }]);
  const uuid = world.create('1B', testUuid(7));
  const guest = SimGpuGuest.open(world.sys, uuid);
  try {
    assert.throws(() => world.remove(uuid), { code: 'EBUSY' });
    assert.equal(world.sys.sysfs.read(`${world.typeDir('1B')}/available_instances`), '0');
  } finally {
    guest.close();
  }
  world.remove(uuid);
  assert.equal(world.sys.sysfs.read(`${world.typeDir('1B')}/available_instances`), '1');
  assert.equal(world.registry.size, 0);
  world.close();
});

test('vGPUs of one board are created and removed while another is open', async () => {
  const world = simgpuWorld([{ framebufferSize: 2 * GiB }]);
  const a = world.create('0B', testUuid(1));
  const guest = SimGpuGuest.open(world.sys, a);
  try {
    const b = world.create('0B', testUuid(2));
    world.remove(b);
    const c = world.create('0B', testUuid(3));
    const buf = guest.allocate(4096, 0x100000n);
    assert.equal((await guest.fill(buf.iova, 64, 0x01020304)).error, undefined);
    assert.deepEqual([...buf.bytes.subarray(0, 8)], [4, 3, 2, 1, 4, 3, 2, 1]);
    world.remove(c);
    assert.equal(world.sys.sysfs.read(`${world.typeDir('0B')}/available_instances`), '3');
  } finally {
    guest.close();
    world.close();
  }
});

test('VFIO_DEVICE_RESET brings the registers back to power-on values', async () => {
  const world = simgpuWorld([{ framebufferSize: GiB }]);
  const uuid = world.create('1Q', testUuid(1));
  const guest = SimGpuGuest.open(world.sys, uuid);
  try {
    const buf = guest.allocate(4096, 0x100000n);
    await guest.fence(buf.iova, 0xabcdn);
    const bar0 = guest.bar0;
    assert.equal(bar0.read32(SimGpuReg.FENCE), 0xabcd);
    assert.notEqual(bar0.read32(SimGpuReg.RING_SIZE), 0);
    guest.device.reset();
    for (const reg of [SimGpuReg.FENCE, SimGpuReg.COMPLETED, SimGpuReg.RING_SIZE, SimGpuReg.RING_BASE_LO, SimGpuReg.INT_ENABLE, SimGpuReg.STATUS]) {
      assert.equal(bar0.read32(reg), 0, `register 0x${reg.toString(16)}`);
    }
  } finally {
    guest.close();
    world.close();
  }
});

test('interrupts: INTx when MSI is off, none while INT_ENABLE masks the cause', async () => {
  const world = simgpuWorld([{ framebufferSize: GiB }]);
  const uuid = world.create('1Q', testUuid(1));
  const guest = SimGpuGuest.open(world.sys, uuid);
  try {
    const { irqs } = guest.device;
    const bar0 = guest.bar0;
    irqs.disable(pciIrq.VFIO_PCI_MSI_IRQ_INDEX);
    irqs.enable(pciIrq.VFIO_PCI_INTX_IRQ_INDEX);
    // A doorbell on an empty ring completes at once: DONE, on INTx now.
    const intx = irqs.once(pciIrq.VFIO_PCI_INTX_IRQ_INDEX, 0, 5000);
    bar0.write32(SimGpuReg.DOORBELL, 1);
    assert.equal(await intx, 1n);
    assert.equal(bar0.read32(SimGpuReg.INT_STATUS), SimGpuInt.DONE);
    bar0.write32(SimGpuReg.INT_STATUS, SimGpuInt.DONE);
    irqs.unmask(pciIrq.VFIO_PCI_INTX_IRQ_INDEX);
    // With DONE masked in INT_ENABLE the status is set but nothing is raised.
    let fired = 0n;
    const listener = irqs.on(pciIrq.VFIO_PCI_INTX_IRQ_INDEX, 0, (n) => { fired += n; });
    bar0.write32(SimGpuReg.INT_ENABLE, SimGpuInt.ERROR);
    bar0.write32(SimGpuReg.DOORBELL, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    listener.close();
    assert.equal(bar0.read32(SimGpuReg.INT_STATUS), SimGpuInt.DONE);
    assert.equal(fired, 0n);
  } finally {
    guest.close();
    world.close();
  }
});

test('no fd is leaked: create, open, submit, close and remove leave the process fds as they were', async () => {
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const world = simgpuWorld([{ framebufferSize: GiB }]);
  const before = fds();
  for (let round = 0; round < 3; round++) {
    const uuid = world.create('0B', testUuid(round + 1));
    const guest = SimGpuGuest.open(world.sys, uuid);
    const buf = guest.allocate(4096, 0x100000n);
    guest.mapFramebuffer(0, 4096);
    assert.equal((await guest.fill(buf.iova, 16, 1)).error, undefined);
    guest.close();
    world.remove(uuid);
  }
  assert.equal(fds(), before);
  world.close();
});
