// The vfio-pci emulation over a function unlike edu: PCI Express, resettable, no INTx
// pin, MSI-X in a 32-bit BAR, a 64-bit prefetchable BAR and an I/O BAR. Checks the
// generic paths edu does not reach: RESET, 4 KiB config space, ERR, 64-bit and I/O BAR
// sizing, the MSI-X mappable capability and table hole, MSI-X delivery.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys } from '../../src/sys/mock.js';
import { buildConfigSpace } from '../../src/device/pci/config-builder.js';
import type { PciConfigSpace } from '../../src/device/pci/config-space.js';
import type { PciFunctionHost, PciFunctionModel } from '../../src/sys/mock/pci/model.js';
import { createVfioPciDevice } from '../../src/sys/mock/pci/vfio-pci.js';
import { ioctls, vfio_device_info, vfio_irq_info, vfio_region_info } from '../../src/uapi/index.js';
import { assertErrno, drain, IRQ, irqSet, SET } from './pci-helpers.js';
import type { MmioSize, PciBarSpec, PciIdentity } from '../../src/device/pci/types.js';

const ADDRESS = '0000:00:05.0';
const CONFIG = 7n << 40n;

class Toy implements PciFunctionModel {
  readonly identity: PciIdentity = { vendor: 0x1b36, device: 0x0001, subsystemVendor: 0x1af4, subsystemDevice: 0x1100, classCode: 0x020000, revision: 1 };
  readonly bars: readonly PciBarSpec[] = [
    { index: 0, size: 0x4000, kind: 'memory64', prefetchable: true, address: 0x8_0000_0000n },
    { index: 2, size: 0x1000, kind: 'memory32', address: 0xfe000000n },
    { index: 3, size: 0x20, kind: 'io', address: 0xc000n },
  ];
  readonly config: PciConfigSpace;
  readonly express = true;
  readonly resettable = true;
  host: PciFunctionHost | undefined;
  resets = 0;
  writes: [number, number, number][] = [];

  constructor() {
    this.config = buildConfigSpace({
      identity: this.identity, bars: this.bars, interruptPin: 0, interruptLine: 0, command: 0,
      msix: { vectors: 8, tableBar: 2, tableOffset: 0x800, pbaBar: 2, pbaOffset: 0xc00 }, express: true,
    });
  }

  attach(host: PciFunctionHost): void { this.host = host; }
  mmioRead(bar: number, offset: number): number { return (bar << 16) | offset; }
  mmioPeek(bar: number, offset: number): number { return (bar << 16) | offset; }
  mmioWrite(bar: number, offset: number, _size: MmioSize, value: number): void { this.writes.push([bar, offset, value]); }
  reset(): void { this.resets++; }
}

function rig() {
  const toy = new Toy();
  const sys = createMockSys({ devices: [createVfioPciDevice(ADDRESS, toy)] });
  const groupNo = sys.sysfs.readlink(`/sys/bus/pci/devices/${ADDRESS}/iommu_group`).split('/').pop()!;
  const container = sys.open('/dev/vfio/vfio');
  const group = sys.open(`/dev/vfio/${groupNo}`);
  const fdArg = new Uint8Array(4);
  new DataView(fdArg.buffer).setInt32(0, container, true);
  sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg);
  sys.ioctl(container, ioctls.VFIO_SET_IOMMU, 3);
  const fd = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${ADDRESS}\0`));
  const cfg = (offset: number): number => {
    const b = new Uint8Array(4);
    sys.pread(fd, b, CONFIG + BigInt(offset));
    return new DataView(b.buffer).getUint32(0, true);
  };
  const setCfg = (offset: number, v: number): void => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    sys.pwrite(fd, b, CONFIG + BigInt(offset));
  };
  const close = (): void => { sys.close(fd); sys.close(group); sys.close(container); };
  return { toy, sys, fd, cfg, setCfg, close };
}

test('a resettable PCI Express function: RESET flag and ioctl, 4 KiB config space, ERR', () => {
  const r = rig();
  try {
    assert.equal(r.toy.resets, 1, 'vfio-pci resets the function when it is opened');
    const info = vfio_device_info.encode({ argsz: 16 });
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_GET_INFO, info);
    assert.equal(vfio_device_info.decode(info).flags, 3);
    assert.equal(r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_RESET), 0);
    assert.equal(r.toy.resets, 2);
    const region = vfio_region_info.encode({ argsz: 32, index: 7 });
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, region);
    assert.equal(vfio_region_info.decode(region).size, 4096n);
    assert.equal(r.sys.pread(r.fd, new Uint8Array(1), CONFIG + 4095n), 1);
    assertErrno(() => r.sys.pread(r.fd, new Uint8Array(1), CONFIG + 4096n), 'EFAULT');
    const irq = (index: number) => {
      const b = vfio_irq_info.encode({ argsz: 16, index });
      r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_GET_IRQ_INFO, b);
      const { flags, count } = vfio_irq_info.decode(b);
      return [flags, count];
    };
    assert.deepEqual([0, 1, 2, 3, 4].map(irq), [[7, 0], [9, 0], [9, 8], [9, 1], [9, 1]]);
    assertErrno(() => r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 0)), 'EINVAL');
  } finally {
    r.close();
  }
});

test('64-bit prefetchable and I/O BAR sizing; the capability chain as the device links it', () => {
  const r = rig();
  try {
    assert.equal(r.cfg(0x10), 0x0000000c);
    assert.equal(r.cfg(0x14), 0x00000008);
    r.setCfg(0x10, 0xffffffff);
    r.setCfg(0x14, 0xffffffff);
    assert.equal(r.cfg(0x10), 0xffffc00c);
    assert.equal(r.cfg(0x14), 0xffffffff);
    r.setCfg(0x1c, 0xffffffff);
    assert.equal(r.cfg(0x1c), 0xffffffe1);
    assert.equal(r.cfg(0x34) & 0xff, 0x7c);
    assert.equal(r.cfg(0x7c) & 0xffff, 0x4011, 'MSI-X, then the PCI Express capability');
    assert.equal(r.cfg(0x40) & 0xffff, 0x0010);
  } finally {
    r.close();
  }
});

test('MSI-X BAR: mappable capability with the argsz protocol, table hole in trapped access', () => {
  const r = rig();
  try {
    const small = vfio_region_info.encode({ argsz: 32, index: 2, cap_offset: 0x55 });
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, small);
    assert.deepEqual(vfio_region_info.decode(small), { argsz: 40, flags: 0xf, index: 2, cap_offset: 0, size: 0x1000n, offset: 2n << 40n });
    const big = vfio_region_info.encode({ argsz: 40, index: 2 }, 40);
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, big);
    assert.equal(vfio_region_info.decode(big).cap_offset, 32);
    assert.deepEqual([...big.subarray(32, 40)], [3, 0, 1, 0, 0, 0, 0, 0]);
    const io = vfio_region_info.encode({ argsz: 32, index: 3 });
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, io);
    assert.equal(vfio_region_info.decode(io).flags, 3, 'an I/O BAR is not mappable');
    assertErrno(() => r.sys.mmap(r.fd, 3n << 40n, 4096, 3), 'EINVAL');

    const buf = new Uint8Array(8);
    r.sys.pread(r.fd, buf, (2n << 40n) + 0x7fcn);
    assert.deepEqual([...buf], [0xfc, 0x07, 0x02, 0x00, 0xff, 0xff, 0xff, 0xff]);
    r.sys.pwrite(r.fd, new Uint8Array(8), (2n << 40n) + 0x87cn);
    assert.deepEqual(r.toy.writes, [[2, 0x880, 0]]);
  } finally {
    r.close();
  }
});

test('I/O BARs are not gated by Memory Space Enable', () => {
  const r = rig();
  try {
    r.setCfg(0x04, 0);
    assertErrno(() => r.sys.pread(r.fd, new Uint8Array(4), 0n), 'EIO');
    const b = new Uint8Array(4);
    assert.equal(r.sys.pread(r.fd, b, (3n << 40n) + 4n), 4);
    assert.equal(new DataView(b.buffer).getUint32(0, true), 0x30004);
  } finally {
    r.close();
  }
});

test('MSI-X messages reach the eventfd bound to their vector', () => {
  const r = rig();
  const efd = r.sys.eventfd();
  try {
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSIX, 0, 2, [-1, efd]));
    assert.equal(r.toy.config.msixEnabled(), true);
    r.toy.host!.msiNotify(1);
    r.toy.host!.msiNotify(0);
    assert.equal(drain(r.sys, efd), 1n);
    r.sys.ioctl(r.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.NONE, IRQ.MSIX, 0, 0));
    assert.equal(r.toy.config.msixEnabled(), false);
    r.toy.host!.msiNotify(1);
    assert.equal(drain(r.sys, efd), 0n);
  } finally {
    r.sys.close(efd);
    r.close();
  }
});
