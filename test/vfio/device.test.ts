import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { openPciDevice, pciCommand } from '../../src/vfio/index.js';
import { flags, pciIrq, pciRegion } from '../../src/uapi/constants.js';
import { ioctls } from '../../src/uapi/ioctls.js';
import { createMockSys } from '../../src/sys/mock.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import { spySys } from './spy-sys.js';
import { EDU, fdCount, ioctlError, mockSys } from './helpers.js';

const { EINVAL } = constants.errno;
const RWM = flags.VFIO_REGION_INFO_FLAG_READ | flags.VFIO_REGION_INFO_FLAG_WRITE | flags.VFIO_REGION_INFO_FLAG_MMAP;
const RW = flags.VFIO_REGION_INFO_FLAG_READ | flags.VFIO_REGION_INFO_FLAG_WRITE;

test('device info, regions and irq infos of the simulated edu', () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { device } = handle;
    assert.equal(device.name, EDU);
    assert.deepEqual(device.info, { flags: flags.VFIO_DEVICE_FLAGS_PCI, numRegions: 9, numIrqs: 5, pci: true, reset: false, caps: [] });
    assert.deepEqual(device.pciId, { vendor: 0x1234, device: 0x11e8 });
    // VGA answers EINVAL on a device without VGA: absent, not an error.
    assert.deepEqual([...device.regions.keys()], [0, 1, 2, 3, 4, 5, 6, 7]);
    const bar0 = device.bar(0);
    assert.deepEqual([bar0.name, bar0.flags, bar0.size, bar0.offset], ['BAR0', RWM, 1 << 20, 0n]);
    assert.deepEqual([bar0.readable, bar0.writable, bar0.mmappable, bar0.sparseAreas, bar0.type, bar0.msixMappable], [true, true, true, undefined, undefined, false]);
    for (const n of [1, 2, 3, 4, 5]) assert.deepEqual([device.bar(n).size, device.bar(n).flags, device.bar(n).offset], [0, 0, BigInt(n) << 40n]);
    const config = device.region(pciRegion.VFIO_PCI_CONFIG_REGION_INDEX);
    assert.deepEqual([config.name, config.flags, config.size, config.offset], ['CONFIG', RW, 256, 7n << 40n]);
    assert.throws(() => device.region(pciRegion.VFIO_PCI_VGA_REGION_INDEX), { code: 'EINVAL', errno: EINVAL });
    assert.throws(() => device.bar(6), RangeError);

    const irqs = device.irqs.infos.map((i) => [i.name, i.flags, i.count]);
    // ERR answers EINVAL on a device that is not PCI Express.
    assert.deepEqual(irqs, [['INTx', 0x7, 1], ['MSI', 0x9, 1], ['MSI-X', 0x9, 0], ['REQ', 0x9, 1]]);
    assert.deepEqual(device.irqs.info(pciIrq.VFIO_PCI_INTX_IRQ_INDEX), {
      index: 0, name: 'INTx', flags: 7, count: 1, eventfd: true, maskable: true, automasked: true, noresize: false,
    });
    assert.throws(() => device.reset(), ioctlError('EINVAL', EINVAL, 'VFIO_DEVICE_RESET'));
  } finally {
    handle.close();
  }
});

test('region access: 1/2/4/8-byte little-endian registers and bulk reads through pread/pwrite', () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { device } = handle;
    device.config.enable(pciCommand.MEMORY);
    const bar0 = device.bar(0);
    assert.equal(bar0.read32(0x00), 0x010000ed);
    bar0.write32(0x04, 0x12345678);
    assert.equal(bar0.read32(0x04), 0xedcba987);
    bar0.write32(0x04, -1);
    assert.equal(bar0.read32(0x04), 0);
    bar0.write32(0x80, 0x11223344);
    assert.equal(bar0.read32(0x80), 0x11223344);
    bar0.write32(0x04, 0x0f00ff00);
    const bytes = bar0.read(0x00, 8);
    assert.deepEqual([...bytes], [0xed, 0x00, 0x00, 0x01, 0xff, 0x00, 0xff, 0xf0], 'id, then liveness 0xf0ff00ff');
    const config = device.region(pciRegion.VFIO_PCI_CONFIG_REGION_INDEX);
    assert.equal(config.read8(0), 0x34);
    assert.equal(config.read16(0), 0x1234);
    assert.equal(config.read16(2), 0x11e8);
    // 8 bytes of config space: ids, then COMMAND (memory on) and STATUS (capability list).
    const eight = config.read64(0);
    assert.equal(eight & 0xffffffffn, 0x11e81234n);
    assert.equal((eight >> 32n) & BigInt(pciCommand.MEMORY), BigInt(pciCommand.MEMORY));
    assert.equal((eight >> 48n) & 0x10n, 0x10n);
    assert.equal(config.write(0, new Uint8Array([0xff, 0xff])), 2, 'a write to the vendor id succeeds...');
    assert.equal(config.read16(0), 0x1234, '...and changes nothing');
    // Past the end of config space: EFAULT from the kernel, untouched by the client.
    assert.throws(() => config.read32(256), { code: 'EFAULT', syscall: 'pread' });
    assert.throws(() => bar0.read32(-4), RangeError);
    assert.throws(() => bar0.read32(1.5), RangeError);
    // A read crossing the end of a BAR is short: bulk read returns what came, a typed read refuses.
    assert.equal(bar0.read((1 << 20) - 4, 8).byteLength, 4);
    assert.throws(() => bar0.read64((1 << 20) - 4), { code: 'EIO', syscall: 'pread' });
  } finally {
    handle.close();
  }
});

test('memory space disabled: BAR accesses fail EIO from the kernel', () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { device } = handle;
    device.config.command = device.config.command & ~pciCommand.MEMORY;
    assert.throws(() => device.bar(0).read32(0), { code: 'EIO', syscall: 'pread' });
    device.config.enable(pciCommand.MEMORY);
    assert.equal(device.bar(0).read32(0), 0x010000ed);
  } finally {
    handle.close();
  }
});

test('config space helper: header fields in one read, capability list walk', () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { config } = handle.device;
    const h = config.header();
    assert.deepEqual(
      [h.vendorId, h.deviceId, h.revisionId, h.classCode, h.headerType, h.subsystemVendorId, h.subsystemId, h.interruptPin],
      [0x1234, 0x11e8, 0x10, 0x00ff00, 0, 0x1af4, 0x1100, 1],
    );
    assert.equal(config.classCode, 0x00ff00);
    assert.equal(config.interruptPin, 1);
    const caps = config.capabilities();
    assert.deepEqual(caps.map((c) => c.name), ['MSI']);
    assert.equal(caps[0]!.offset, h.capabilitiesPointer);
    assert.equal(config.findCapability(0x05)?.offset, h.capabilitiesPointer);
    assert.equal(config.findCapability(0x11), undefined);
    // BAR sizing through the virtualized BAR: writing all ones reads back the size mask.
    const saved = config.bar(0);
    config.write32(0x10, 0xffffffff);
    assert.equal(config.bar(0), 0xfff00000);
    config.write32(0x10, saved);
    assert.equal(config.bar(0), saved);
  } finally {
    handle.close();
  }
});

test('mmap of BAR0: a Mapping with views, unmapped when the device closes; CONFIG cannot be mapped', () => {
  const sys = mockSys();
  const handle = openPciDevice(sys, EDU);
  const { device } = handle;
  device.config.enable(pciCommand.MEMORY);
  const bar0 = device.bar(0);
  const whole = bar0.mmap();
  const page = bar0.mmap({ offset: 4096, size: 4096 });
  assert.equal(whole.length, 1 << 20);
  assert.equal(page.regionOffset, 4096);
  assert.equal(whole.read32(0), 0x010000ed);
  assert.throws(() => whole.read32(2), RangeError);
  assert.throws(() => whole.write32(1 << 20, 0), RangeError);
  assert.deepEqual(bar0.mappings, [whole, page]);
  page.unmap();
  page.unmap();
  assert.equal(page.buffer.byteLength, 0);
  assert.deepEqual(bar0.mappings, [whole]);
  assert.throws(() => device.region(pciRegion.VFIO_PCI_CONFIG_REGION_INDEX).mmap(), { code: 'EINVAL' });
  handle.close();
  assert.equal(whole.unmapped, true);
  assert.equal(whole.buffer.byteLength, 0);
  assert.equal(whole.bytes.byteLength, 0);
  assert.throws(() => whole.read32(0), RangeError);
});

test('openPciDevice: the device fd closes before the group, the group before the container', () => {
  const sys = spySys(mockSys());
  const handle = openPciDevice(sys, EDU);
  const order = [handle.device.fd, handle.group.fd, handle.container.fd];
  sys.reset();
  handle.close();
  assert.deepEqual(sys.closed, order);
  assert.deepEqual(sys.calls, ['close', 'ioctl', 'close', 'close'], 'device fd, UNSET_CONTAINER, group fd, container fd');
  assert.equal(sys.ioctls[0]?.request, ioctls.VFIO_GROUP_UNSET_CONTAINER);
  handle.close();
  assert.deepEqual(sys.closed, order, 'close is idempotent');
  assert.equal(handle.device.closed && handle.group.closed && handle.container.closed, true);
  assert.throws(() => handle.device.bar(0).read32(0), { code: 'EBADF' });
  assert.throws(() => handle.container.iommuInfo(), { code: 'EBADF' });
});

test('openPciDevice leaves nothing open when a step fails', () => {
  const sys = mockSys();
  const before = fdCount();
  assert.throws(() => openPciDevice(sys, '0000:00:1f.0'), { code: 'ENOENT' });
  assert.throws(() => openPciDevice(sys, EDU, { iommuType: 'VFIO_SPAPR_TCE_IOMMU' }), { code: 'ENODEV', operation: 'VFIO_SET_IOMMU' });
  const handle = openPciDevice(sys, EDU);
  assert.throws(() => openPciDevice(sys, EDU), { code: 'EBUSY' });
  handle.close();
  assert.equal(fdCount(), before);
});

test('two functions in two groups share one container: one SET_IOMMU, either closes alone', () => {
  const OTHER = '0000:00:05.0';
  const sys = spySys(createMockSys({ devices: [createEduDevice(EDU), createEduDevice(OTHER)] }));
  const first = openPciDevice(sys, EDU);
  const second = openPciDevice(sys, OTHER, { container: first.container });
  try {
    assert.notEqual(first.group.number, second.group.number);
    assert.equal(second.container, first.container);
    assert.deepEqual(first.container.attachedGroups, [first.group, second.group]);
    assert.equal(sys.ioctls.filter((c) => c.request === ioctls.VFIO_SET_IOMMU).length, 1);
    second.close();
    assert.equal(first.container.closed, false, 'a borrowed container stays open');
    assert.deepEqual(first.container.attachedGroups, [first.group]);
    assert.equal(first.device.bar(0).size, 1 << 20);
  } finally {
    second.close();
    first.close();
  }
  assert.equal(first.container.closed, true);
});
