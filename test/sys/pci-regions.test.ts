// The device-fd ioctls and region accesses of the simulated edu behind vfio-pci:
// GET_INFO, GET_REGION_INFO, GET_IRQ_INFO, RESET, hot reset, IOEVENTFD, DEVICE_FEATURE,
// unknown ioctls, and trapped BAR reads and writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ioctls, vfio_device_feature, vfio_device_info, vfio_device_ioeventfd, vfio_irq_info, vfio_pci_hot_reset_info,
  vfio_region_info,
} from '../../src/uapi/index.js';
import { assertErrno, cfgRead, cfgWrite, CONFIG, drain, openEdu, type EduRig } from './pci-helpers.js';

const R = 1 << 0;
const W = 1 << 1;
const MMAP = 1 << 2;

function regionInfo(rig: EduRig, index: number, argsz = 32) {
  const buf = vfio_region_info.encode({ argsz, index });
  rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, buf);
  return vfio_region_info.decode(buf);
}

test('GET_INFO: PCI without RESET, 9 regions, 5 irqs; cap_offset 0 when argsz leaves room for it', () => {
  const rig = openEdu();
  try {
    const buf = vfio_device_info.encode({ argsz: 20, cap_offset: 0xaaaaaaaa });
    assert.equal(rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_INFO, buf), 0);
    assert.deepEqual(vfio_device_info.decode(buf), { argsz: 20, flags: 2, num_regions: 9, num_irqs: 5, cap_offset: 0 });
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_INFO, vfio_device_info.encode({ argsz: 15 })), 'EINVAL');
    const short = vfio_device_info.encode({ argsz: 16 }, 16);
    assert.equal(rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_INFO, short), 0);
    assert.deepEqual([...short.subarray(4, 16)], [2, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0]);
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_INFO, new Uint8Array(12)), 'EFAULT');
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_INFO, 0), 'EFAULT');
  } finally {
    rig.close();
  }
});

test('GET_REGION_INFO: BAR0, empty BARs and ROM, config, and the EINVALs', () => {
  const rig = openEdu();
  try {
    assert.deepEqual(regionInfo(rig, 0), { argsz: 32, flags: R | W | MMAP, index: 0, cap_offset: 0, size: 1n << 20n, offset: 0n });
    for (let i = 1; i <= 6; i++) {
      assert.deepEqual(regionInfo(rig, i), { argsz: 32, flags: 0, index: i, cap_offset: 0, size: 0n, offset: BigInt(i) << 40n });
    }
    assert.deepEqual(regionInfo(rig, 7), { argsz: 32, flags: R | W, index: 7, cap_offset: 0, size: 256n, offset: 7n << 40n });
    assertErrno(() => regionInfo(rig, 8), 'EINVAL'); // VGA on a device without VGA
    assertErrno(() => regionInfo(rig, 9), 'EINVAL');
    assertErrno(() => regionInfo(rig, 0xffffffff), 'EINVAL');
    assertErrno(() => regionInfo(rig, 0, 31), 'EINVAL');
    // Without capabilities cap_offset is left as the caller gave it.
    const buf = vfio_region_info.encode({ argsz: 32, index: 0, cap_offset: 0x1234 });
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, buf);
    assert.equal(vfio_region_info.decode(buf).cap_offset, 0x1234);
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, new Uint8Array(24)), 'EFAULT');
  } finally {
    rig.close();
  }
});

test('GET_IRQ_INFO through the device fd', () => {
  const rig = openEdu();
  try {
    const irq = (index: number) => {
      const buf = vfio_irq_info.encode({ argsz: 16, index });
      rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_IRQ_INFO, buf);
      const { flags, count } = vfio_irq_info.decode(buf);
      return [flags, count];
    };
    assert.deepEqual([0, 1, 2, 4].map(irq), [[7, 1], [9, 1], [9, 0], [9, 1]]);
    assertErrno(() => irq(3), 'EINVAL');
    assertErrno(() => irq(5), 'EINVAL');
  } finally {
    rig.close();
  }
});

test('RESET is EINVAL (edu cannot reset); hot reset is ENODEV after its own checks', () => {
  const rig = openEdu();
  try {
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_RESET), 'EINVAL');
    const info = (argsz: number, flags = 0) => vfio_pci_hot_reset_info.encode({ argsz, flags });
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info(11)), 'EINVAL');
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info(12)), 'ENODEV');
    // struct vfio_pci_hot_reset has the same header; count 1 (6.12 refuses count 0 for group users).
    const reset = (argsz: number, flags: number, count: number) => vfio_pci_hot_reset_info.encode({ argsz, flags, count }, 16);
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_PCI_HOT_RESET, reset(16, 1, 1)), 'EINVAL');
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_PCI_HOT_RESET, reset(11, 0, 1)), 'EINVAL');
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_PCI_HOT_RESET, reset(16, 0, 1)), 'ENODEV');
  } finally {
    rig.close();
  }
});

test('PCI_HOT_RESET with count 0: ENODEV on the 6.1 flavour, EINVAL on 6.12 (zero-length arrays are for cdev users)', () => {
  const reset = (argsz: number, count: number) => vfio_pci_hot_reset_info.encode({ argsz, flags: 0, count }, 16);
  for (const [kernel, code] of [['6.1', 'ENODEV'], ['6.12', 'EINVAL']] as const) {
    const rig = openEdu({ kernel });
    try {
      assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_PCI_HOT_RESET, reset(12, 0)), code);
      assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_PCI_HOT_RESET, reset(16, 1)), 'ENODEV');
    } finally {
      rig.close();
    }
  }
});

test('unknown device ioctls are ENOTTY, including the mdev-only graphics ones', () => {
  const rig = openEdu();
  try {
    const buf = new Uint8Array(64);
    new DataView(buf.buffer).setUint32(0, 64, true);
    for (const req of [ioctls.VFIO_DEVICE_QUERY_GFX_PLANE, ioctls.VFIO_DEVICE_GET_GFX_DMABUF, 0x3b64, 0x3b66, 0x3b99, 0x1234]) {
      assertErrno(() => rig.sys.ioctl(rig.fd, req, buf), 'ENOTTY');
    }
  } finally {
    rig.close();
  }
});

test('DEVICE_FEATURE: header checks, ENOTTY for migration, logging and the VF token', () => {
  const rig = openEdu();
  try {
    const GET = 1 << 16;
    const SETF = 1 << 17;
    const PROBE = 1 << 18;
    const feature = (flags: number, argsz = 8) =>
      rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_FEATURE, vfio_device_feature.encode({ argsz, flags }));
    assertErrno(() => feature(PROBE | GET | 1, 7), 'EINVAL');
    assertErrno(() => feature(1 << 19), 'EINVAL');
    assertErrno(() => feature(GET | SETF | 3), 'EINVAL');
    assertErrno(() => feature(PROBE | GET | 1), 'ENOTTY'); // migration
    assertErrno(() => feature(PROBE | GET | 2), 'ENOTTY');
    assertErrno(() => feature(PROBE | SETF | 0), 'ENOTTY'); // VF token
    assertErrno(() => feature(PROBE | GET | 6), 'ENOTTY'); // DMA logging
    assertErrno(() => feature(PROBE | SETF | 0xffff), 'ENOTTY');
    assert.equal(feature(PROBE | SETF | 3), 0);
    assert.equal(feature(PROBE | SETF | 4), 0);
    assert.equal(feature(PROBE | SETF | 5), 0);
    assertErrno(() => feature(PROBE | GET | SETF | 5), 'EINVAL'); // low power has no GET
    assertErrno(() => rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_FEATURE, new Uint8Array(4)), 'EFAULT');
  } finally {
    rig.close();
  }
});

test('DEVICE_FEATURE low power: entry, wakeup eventfd signalled by the next access', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    const SETF = 1 << 17;
    const GET = 1 << 16;
    const feature = (flags: number, data: number[] = []) => {
      const buf = vfio_device_feature.encode({ argsz: 8 + data.length * 4, flags }, 8 + data.length * 4);
      data.forEach((v, i) => new DataView(buf.buffer).setInt32(8 + 4 * i, v, true));
      return rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_FEATURE, buf);
    };
    assertErrno(() => feature(GET | 3), 'EINVAL');
    assertErrno(() => feature(3), 'EINVAL'); // neither GET nor SET
    assert.equal(feature(SETF | 3), 0);
    assertErrno(() => feature(SETF | 3), 'EINVAL'); // already in low power
    assert.equal(feature(SETF | 5), 0);
    assertErrno(() => feature(SETF | 4, [efd]), 'EINVAL'); // argsz must cover 8 bytes of data
    assertErrno(() => feature(SETF | 4, [efd, 1]), 'EINVAL'); // reserved must be 0
    assertErrno(() => feature(SETF | 4, [-1, 0]), 'EINVAL');
    assertErrno(() => feature(SETF | 4, [9999, 0]), 'EBADF');
    assert.equal(feature(SETF | 4, [efd, 0]), 0);
    assert.equal(drain(rig.sys, efd), 0n);
    assert.equal(cfgRead(rig, 0, 2), 0x1234); // any access resumes the device and wakes the user
    assert.equal(drain(rig.sys, efd), 1n);
    assert.equal(feature(SETF | 5), 0); // exit when not in low power is fine
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('IOEVENTFD: checks and registration like vfio_pci_ioeventfd', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  const notEventfd = rig.sys.open('/dev/null');
  try {
    const ev = (v: { argsz?: number; flags?: number; offset?: bigint; data?: bigint; fd: number }) =>
      rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_IOEVENTFD, vfio_device_ioeventfd.encode({ argsz: 32, flags: 4, offset: 0x60n, data: 1n, ...v }));
    assertErrno(() => ev({ argsz: 27, fd: efd }), 'EINVAL');
    assertErrno(() => ev({ flags: 0x10 | 4, fd: efd }), 'EINVAL');
    assertErrno(() => ev({ flags: 4 | 2, fd: efd }), 'EINVAL');
    assertErrno(() => ev({ flags: 0, fd: efd }), 'EINVAL');
    assertErrno(() => ev({ fd: -2 }), 'EINVAL');
    assertErrno(() => ev({ offset: 1n << 40n, fd: efd }), 'EINVAL'); // BAR1 is empty
    assertErrno(() => ev({ offset: CONFIG, fd: efd }), 'EINVAL'); // only BARs
    assertErrno(() => ev({ offset: (1n << 20n) - 2n, fd: efd }), 'EINVAL'); // past the end
    assertErrno(() => ev({ fd: -1 }), 'ENODEV');
    assertErrno(() => ev({ fd: 9999 }), 'EBADF');
    assertErrno(() => ev({ fd: notEventfd }), 'EINVAL');
    assert.equal(ev({ fd: efd }), 0);
    assertErrno(() => ev({ fd: efd }), 'EEXIST');
    assert.equal(ev({ flags: 8, offset: 0x80n, fd: efd }), 0); // 8-byte on x86_64
    assert.equal(ev({ fd: -1 }), 0);
    assertErrno(() => ev({ fd: -1 }), 'ENODEV');
  } finally {
    rig.sys.close(notEventfd);
    rig.sys.close(efd);
    rig.close();
  }
});

test('BAR0 reads and writes: short at the end, EINVAL past it, empty BARs, ROM and VGA', () => {
  const rig = openEdu();
  try {
    const buf = new Uint8Array(8);
    assert.equal(rig.sys.pread(rig.fd, buf, 0n), 8);
    assert.deepEqual([...buf], [0xed, 0x00, 0x00, 0x01, 0, 0, 0, 0]); // id, then liveness (0 until written)
    assert.equal(rig.sys.pread(rig.fd, buf, (1n << 20n) - 4n), 4);
    assertErrno(() => rig.sys.pread(rig.fd, buf, 1n << 20n), 'EINVAL');
    assertErrno(() => rig.sys.pwrite(rig.fd, buf, 1n << 20n), 'EINVAL');
    assertErrno(() => rig.sys.pread(rig.fd, buf, 1n << 40n), 'EINVAL'); // BAR1
    assertErrno(() => rig.sys.pread(rig.fd, buf, 6n << 40n), 'EINVAL'); // no ROM
    assertErrno(() => rig.sys.pwrite(rig.fd, buf, 6n << 40n), 'EINVAL');
    assertErrno(() => rig.sys.pread(rig.fd, buf, 8n << 40n), 'EINVAL'); // no VGA
    assertErrno(() => rig.sys.pread(rig.fd, buf, 9n << 40n), 'EINVAL');
    assert.equal(rig.sys.pread(rig.fd, new Uint8Array(0), 9n << 40n), 0);
  } finally {
    rig.close();
  }
});

test('BAR accesses are split 4/2/1 by alignment; edu answers sub-4-byte accesses with 0', () => {
  const rig = openEdu();
  try {
    const one = new Uint8Array(1);
    assert.equal(rig.sys.pread(rig.fd, one, 0n), 1);
    assert.equal(one[0], 0);
    const six = new Uint8Array(6);
    assert.equal(rig.sys.pread(rig.fd, six, 2n), 6); // 2 at 2, then 4 at 4
    assert.deepEqual([...six], [0, 0, 0, 0, 0, 0]);
    const twelve = new Uint8Array(12);
    assert.equal(rig.sys.pread(rig.fd, twelve, 0x10n), 12); // no register at 0x10..0x1b: ~0
    assert.deepEqual([...twelve], new Array(12).fill(0xff));
    // A 2-byte write to liveness is dropped by edu; a 4-byte one lands.
    rig.sys.pwrite(rig.fd, new Uint8Array([1, 2]), 4n);
    assert.equal(cfgRead(rig, 0, 2), 0x1234);
    const four = new Uint8Array(4);
    rig.sys.pread(rig.fd, four, 4n);
    assert.deepEqual([...four], [0, 0, 0, 0]);
    rig.sys.pwrite(rig.fd, new Uint8Array([0x78, 0x56, 0x34, 0x12]), 4n);
    rig.sys.pread(rig.fd, four, 4n);
    assert.equal(new DataView(four.buffer).getUint32(0, true), ~0x12345678 >>> 0);
  } finally {
    rig.close();
  }
});

test('the device fd survives a memory-disable/enable cycle and config writes to COMMAND bytes', () => {
  const rig = openEdu();
  try {
    const cmd = cfgRead(rig, 4, 2);
    cfgWrite(rig, 4, 1, cmd & 0xfd); // a byte write at COMMAND also counts
    assertErrno(() => rig.sys.pread(rig.fd, new Uint8Array(4), 0n), 'EIO');
    cfgWrite(rig, 4, 1, cmd & 0xff);
    const buf = new Uint8Array(4);
    assert.equal(rig.sys.pread(rig.fd, buf, 0n), 4);
  } finally {
    rig.close();
  }
});
