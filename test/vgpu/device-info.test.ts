// A vGPU opens through the ordinary VFIO client like any vfio-pci function: device info,
// region info with the sparse mmap capability, irq info; lifecycle events; no fd leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ioctls, vfio_device_info, vfio_region_info } from '../../src/uapi/index.js';
import { openVgpu, openFdCount, registerVgpu, assertErrno, UUID } from './fixtures/device-rig.js';
import { openPciDevice } from '../../src/vfio/index.js';

test('GET_INFO: PCI | RESET, 9 regions, 5 irqs; 16 bytes back, 20 with cap_offset when argsz allows', () => {
  const rig = openVgpu();
  try {
    assert.deepEqual(
      { flags: rig.device.info.flags, regions: rig.device.info.numRegions, irqs: rig.device.info.numIrqs },
      { flags: 0x3, regions: 9, irqs: 5 },
    );
    const fd = rig.device.fd;
    const small = vfio_device_info.encode({ argsz: 16, cap_offset: 0xdead }, 20);
    rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_INFO, small);
    assert.deepEqual(vfio_device_info.decode(small), { argsz: 16, flags: 3, num_regions: 9, num_irqs: 5, cap_offset: 0xdead });
    const full = vfio_device_info.encode({ argsz: 20, cap_offset: 0xdead });
    rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_INFO, full);
    assert.equal(vfio_device_info.decode(full).cap_offset, 0);
    assertErrno(() => rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_INFO, vfio_device_info.encode({ argsz: 15 })), 'EINVAL');
    assertErrno(() => rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_INFO, new Uint8Array(12)), 'EFAULT');
  } finally {
    rig.close();
  }
});

test('regions: sizes, flags and offsets as vfio-pci gives them; sparse areas only where the BAR is not all memory', () => {
  const rig = openVgpu();
  try {
    const d = rig.device;
    const summary = [...d.regions.values()].map((r) => ({
      index: r.index, size: r.size, flags: r.flags, offset: r.offset, sparse: r.sparseAreas,
    }));
    assert.deepEqual(summary, [
      { index: 0, size: 0x2000, flags: 0x3, offset: 0n, sparse: undefined },
      { index: 1, size: 0, flags: 0, offset: 1n << 40n, sparse: undefined },
      { index: 2, size: 0x10000, flags: 0xf, offset: 2n << 40n, sparse: [{ offset: 0, size: 0x4000 }, { offset: 0x8000, size: 0x2000 }] },
      { index: 3, size: 0, flags: 0, offset: 3n << 40n, sparse: undefined },
      { index: 4, size: 0x4000, flags: 0x3, offset: 4n << 40n, sparse: undefined },
      { index: 5, size: 32, flags: 0x3, offset: 5n << 40n, sparse: undefined },
      { index: 6, size: 0, flags: 0, offset: 6n << 40n, sparse: undefined },
      { index: 7, size: 4096, flags: 0x3, offset: 7n << 40n, sparse: undefined },
    ]);
    assert.equal(d.regions.has(8), false, 'no VGA region (EINVAL)');
    assert.equal(d.region(2).msixMappable, false);
  } finally {
    rig.close();
  }
});

test('REGION_INFO argsz protocol: too small for the sparse capability returns the size needed and no chain', () => {
  const rig = openVgpu();
  try {
    const fd = rig.device.fd;
    const short = vfio_region_info.encode({ argsz: 32, index: 2, cap_offset: 0x77 });
    rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, short);
    const head = vfio_region_info.decode(short);
    // 32-byte header + sparse cap: 16-byte head + 2 areas x 16.
    assert.deepEqual({ argsz: head.argsz, flags: head.flags, cap: head.cap_offset }, { argsz: 80, flags: 0xf, cap: 0 });
    const full = vfio_region_info.encode({ argsz: 80, index: 2 }, 80);
    rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, full);
    assert.equal(vfio_region_info.decode(full).cap_offset, 32);
    const dv = new DataView(full.buffer);
    assert.deepEqual([dv.getUint16(32, true), dv.getUint16(34, true), dv.getUint32(36, true), dv.getUint32(40, true)], [1, 1, 0, 2]);
    // A BAR without capabilities leaves cap_offset as the user gave it.
    const bar0 = vfio_region_info.encode({ argsz: 32, index: 0, cap_offset: 0x77 });
    rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, bar0);
    assert.equal(vfio_region_info.decode(bar0).cap_offset, 0x77);
    assertErrno(() => rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, vfio_region_info.encode({ argsz: 32, index: 8 })), 'EINVAL');
    assertErrno(() => rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, vfio_region_info.encode({ argsz: 32, index: 9 })), 'EINVAL');
    assertErrno(() => rig.sys.ioctl(fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, vfio_region_info.encode({ argsz: 31, index: 0 })), 'EINVAL');
  } finally {
    rig.close();
  }
});

test('a conventional PCI vGPU: 256-byte config, no ERR index; a BAR all memory has MMAP without sparse areas', () => {
  const rig = openVgpu({ express: false, msix: false, msiVectors: 0, interruptPin: 0, mappedBar1: true });
  try {
    assert.equal(rig.device.region(7).size, 256);
    assert.deepEqual([rig.device.region(1).size, rig.device.region(1).flags, rig.device.region(1).sparseAreas], [0x4000, 0x7, undefined]);
    assert.deepEqual(rig.device.irqs.infos.map((i) => [i.index, i.count]), [[0, 0], [1, 0], [2, 0], [4, 1]]);
  } finally {
    rig.close();
  }
});

test('irq info: counts and flags of vfio-pci', () => {
  const rig = openVgpu();
  try {
    assert.deepEqual(rig.device.irqs.infos.map((i) => [i.index, i.flags, i.count]), [
      [0, 0x7, 1], [1, 0x9, 4], [2, 0x9, 8], [3, 0x9, 1], [4, 0x9, 1],
    ]);
  } finally {
    rig.close();
  }
});

test('open and release are the start and shutdown events; reopen starts over', () => {
  const r = registerVgpu();
  try {
    assert.equal(r.vgpu.isOpen, false);
    const h = openPciDevice(r.sys, UUID, { group: r.group });
    assert.equal(r.vgpu.isOpen, true);
    assert.deepEqual(r.events, { opened: 1, released: 0 });
    // A second device fd does not open the device again.
    const fd2 = r.sys.ioctl(h.group.fd, ioctls.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${UUID}\0`));
    assert.deepEqual(r.model.calls, ['open']);
    r.sys.close(fd2);
    assert.equal(r.vgpu.isOpen, true);
    h.close();
    assert.equal(r.vgpu.isOpen, false);
    assert.deepEqual(r.events, { opened: 1, released: 1 });
    assert.deepEqual(r.model.calls, ['open', 'release']);
    const h2 = openPciDevice(r.sys, UUID, { group: r.group });
    assert.deepEqual(r.events, { opened: 2, released: 1 });
    h2.close();
  } finally {
    r.dispose();
  }
});

test('the device is reached by its UUID in its own group; another name is ENODEV', () => {
  const r = registerVgpu();
  try {
    assert.equal(r.sys.sysfs.readlink(`/sys/devices/virtual/mock/${UUID}/iommu_group`).endsWith(`/${r.group}`), true);
    assertErrno(() => openPciDevice(r.sys, '00000000-0000-0000-0000-000000000000', { group: r.group }), 'ENODEV');
  } finally {
    r.dispose();
  }
});

test('no fd leaks over open, map, irq enable and close', () => {
  const before = openFdCount();
  for (let i = 0; i < 3; i++) {
    const rig = openVgpu();
    rig.device.bar(2).mmap({ offset: 0, size: 0x4000 });
    rig.device.irqs.enable(1, { count: 2 });
    rig.close();
  }
  assert.equal(openFdCount(), before);
});
