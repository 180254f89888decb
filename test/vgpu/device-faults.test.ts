// A vendor callback that throws: the user's syscall fails EIO (a SysError the vendor
// threw passes through), the vGPU stays usable, and another vGPU is untouched. Device
// ioctls the core does not answer go to the vendor, or are ENOTTY; VFIO_DEVICE_FEATURE
// is answered as the VFIO core answers a device without features. Broken models are
// refused at construction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ioctls, vfio_device_feature, vfio_pci_hot_reset_info } from '../../src/uapi/index.js';
import { flags as F } from '../../src/uapi/constants.js';
import { createMockSys } from '../../src/sys/mock.js';
import { openPciDevice } from '../../src/vfio/index.js';
import { VgpuDevice } from '../../src/vgpu/device/vgpu-device.js';
import { withVgpu, registerVgpu, assertErrno, UUID } from './fixtures/device-rig.js';
import { ID_VALUE, MODEL_IOCTL, REG, TestModel } from './fixtures/test-model.js';

test('a register handler that throws: EIO; the device and a second vGPU keep working', () => {
  const sys = createMockSys({ devices: [] });
  const a = new TestModel();
  const b = new TestModel();
  const events = { opened: () => {}, released: () => {} };
  const uuidB = '99999999-8888-4777-8666-555555555555';
  const ga = sys.kernel.registerDevice(new VgpuDevice(UUID, a, events), { iommuBacked: false });
  const gb = sys.kernel.registerDevice(new VgpuDevice(uuidB, b, events), { iommuBacked: false });
  const ha = openPciDevice(sys, UUID, { group: ga });
  const hb = openPciDevice(sys, uuidB, { group: gb });
  try {
    hb.device.bar(0).write32(REG.SCRATCH, 0xb);
    assertErrno(() => ha.device.bar(0).read32(REG.FAULT), 'EIO');
    assertErrno(() => ha.device.bar(0).write32(REG.FAULT, 1), 'EIO');
    assertErrno(() => ha.device.bar(0).read(0, 0x20), 'EIO', 'a bulk read touching the register');
    assert.equal(ha.device.bar(0).read32(REG.ID), ID_VALUE);
    assert.deepEqual([hb.device.bar(0).read32(REG.SCRATCH), hb.device.config.status & 0x0800], [0xb, 0]);
  } finally {
    ha.close();
    hb.close();
    a.dispose();
    b.dispose();
  }
});

test('a SysError from a register handler passes through', () => {
  withVgpu(({ device }) => {
    assertErrno(() => device.bar(0).read32(REG.SYSFAULT), 'EPERM');
    assertErrno(() => device.bar(0).write32(REG.SYSFAULT, 0), 'EPERM');
    assert.equal(device.config.status & 0x0800, 0, 'no target abort for a refusal the vendor chose');
  });
});

test('open that throws: GET_DEVICE_FD fails EIO, nothing is open, the next open works', () => {
  const r = registerVgpu();
  try {
    r.model.failing.add('open');
    assertErrno(() => openPciDevice(r.sys, UUID, { group: r.group }), 'EIO');
    assert.deepEqual([r.vgpu.isOpen, r.events.opened, r.events.released], [false, 0, 0]);
    r.model.failing.delete('open');
    const h = openPciDevice(r.sys, UUID, { group: r.group });
    assert.equal(h.device.bar(0).read32(REG.ID), ID_VALUE);
    h.close();
    assert.deepEqual(r.events, { opened: 1, released: 1 });
  } finally {
    r.dispose();
  }
});

test('a registry whose opened() throws: the open fails as a whole and the vendor is released', () => {
  const sys = createMockSys({ devices: [] });
  const model = new TestModel();
  try {
    const vgpu = new VgpuDevice(UUID, model, { opened: () => { throw new Error('registry bug'); }, released: () => {} });
    const group = sys.kernel.registerDevice(vgpu, { iommuBacked: false });
    assert.throws(() => openPciDevice(sys, UUID, { group }), /registry bug/);
    assert.deepEqual([vgpu.isOpen, model.calls], [false, ['open', 'release']]);
  } finally {
    model.dispose();
  }
});

test('reset that throws: VFIO_DEVICE_RESET fails EIO and the device keeps working', () => {
  withVgpu(({ device, model }) => {
    model.failing.add('reset');
    assertErrno(() => device.reset(), 'EIO');
    assertErrno(() => device.config.write16(0x48, 0x8000), 'EIO', 'an FLR through config space too');
    model.failing.delete('reset');
    device.reset();
    assert.equal(device.bar(0).read32(REG.ID), ID_VALUE);
  });
});

test('release that throws: the close still completes and the registry hears of it', () => {
  const r = registerVgpu();
  try {
    const h = openPciDevice(r.sys, UUID, { group: r.group });
    r.model.failing.add('release');
    h.close();
    assert.deepEqual([r.vgpu.isOpen, r.events.released], [false, 1]);
  } finally {
    r.dispose();
  }
});

test('device ioctls the core does not answer go to the vendor: its value, its errno, or EIO when it throws', () => {
  withVgpu(({ sys, device, model }) => {
    assert.equal(sys.ioctl(device.fd, MODEL_IOCTL, 0), 42);
    assertErrno(() => sys.ioctl(device.fd, MODEL_IOCTL + 1, 0), 'ENOTTY');
    const hotReset = vfio_pci_hot_reset_info.encode({ argsz: vfio_pci_hot_reset_info.size });
    assertErrno(() => sys.ioctl(device.fd, ioctls.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, hotReset), 'ENOTTY');
    assert.deepEqual(model.calls.filter((c) => c.startsWith('ioctl')).length, 3);
    model.failing.add('ioctl');
    assertErrno(() => sys.ioctl(device.fd, MODEL_IOCTL, 0), 'EIO');
    model.failing.delete('ioctl');
    assert.equal(sys.ioctl(device.fd, MODEL_IOCTL, 0), 42);
  });
});

test('without a vendor ioctl, unknown device ioctls are ENOTTY', () => {
  withVgpu(({ sys, device }) => {
    assertErrno(() => sys.ioctl(device.fd, MODEL_IOCTL, 0), 'ENOTTY');
    assertErrno(() => sys.ioctl(device.fd, ioctls.VFIO_DEVICE_IOEVENTFD, new Uint8Array(32)), 'ENOTTY');
  }, { withIoctl: false });
});

test('VFIO_DEVICE_FEATURE: header checks, ENOTTY for migration, EINVAL for the rest', () => {
  withVgpu(({ sys, device }) => {
    const feature = (flags: number, argsz = vfio_device_feature.size): number =>
      sys.ioctl(device.fd, ioctls.VFIO_DEVICE_FEATURE, vfio_device_feature.encode({ argsz, flags }, 64));
    const { VFIO_DEVICE_FEATURE_GET: GET, VFIO_DEVICE_FEATURE_SET: SET, VFIO_DEVICE_FEATURE_PROBE: PROBE } = F;
    assertErrno(() => feature(GET | 1, 7), 'EINVAL', 'argsz');
    assertErrno(() => feature(GET | 1 << 19), 'EINVAL', 'unknown flag');
    assertErrno(() => feature(GET | SET | 1), 'EINVAL', 'GET and SET');
    assertErrno(() => feature(PROBE | GET | 1), 'ENOTTY', 'MIGRATION');
    assertErrno(() => feature(GET | 2), 'ENOTTY', 'MIG_DEVICE_STATE');
    assertErrno(() => feature(PROBE | SET | 3), 'EINVAL', 'LOW_POWER_ENTRY: no such feature here');
    assertErrno(() => feature(PROBE | GET | 0), 'EINVAL', 'PCI_VF_TOKEN');
    assertErrno(() => sys.ioctl(device.fd, ioctls.VFIO_DEVICE_FEATURE, new Uint8Array(4)), 'EFAULT');
  });
});

test('broken models are refused when the device is made', () => {
  const cases: [string, (m: TestModel) => void][] = [
    ['overlapping areas', (m) => { (m.bars[1]!.areas as unknown[]).push({ kind: 'trapped', offset: 0xc080, size: 4, handler: { read: () => 0, write: () => {} } }); }],
    ['a mapped area not page-aligned', (m) => { (m.bars[1]!.areas[0] as { offset: number }).offset = 0x800; }],
    ['an area past the BAR', (m) => { (m.bars[0]!.areas[0] as { size: number }).size = 0x3000; }],
    ['a BAR size not a power of two', (m) => { (m.bars[0] as { size: number }).size = 0x3000; }],
    ['two BARs in one slot', (m) => { (m.bars[2] as { index: number }).index = 3; }],
    ['MSI-X over a vendor area', (m) => { (m.pci as { msix: unknown }).msix = { vectors: 8, bar: 4, tableOffset: 0x1000, pbaOffset: 0x800 }; }],
    ['MSI-X table and PBA overlapping', (m) => { (m.pci as { msix: unknown }).msix = { vectors: 8, bar: 4, tableOffset: 0, pbaOffset: 0x40 }; }],
    ['MSI vectors not a power of two', (m) => { (m.pci as { msiVectors: number }).msiVectors = 3; }],
    ['a mapped area whose memory is smaller than the area', (m) => { (m.bars[1]!.areas[1] as { size: number }).size = 0x4000; }],
    ['a mapped area whose memory has no read/write/unmap', (m) => {
      const area = m.bars[1]!.areas[0] as { memory: unknown };
      area.memory = { size: 0x4000, bytes: new Uint8Array(0x4000), map: () => { throw new Error('unused'); } };
    }],
    ['a mapped area in an I/O BAR', (m) => { (m.bars[3] as { areas: unknown }).areas = [{ kind: 'mapped', offset: 0, size: 32, memory: m.bars[1]!.areas[0]!.kind === 'mapped' ? m.bars[1]!.areas[0]!.memory : undefined }]; }],
  ];
  for (const [what, spoil] of cases) {
    const model = new TestModel();
    try {
      spoil(model);
      assert.throws(() => new VgpuDevice(UUID, model, { opened: () => {}, released: () => {} }), /invalid vGPU model/, what);
    } finally {
      model.dispose();
    }
  }
});
