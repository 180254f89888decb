// Device-specific regions (index 9 and up) of a vGPU: GET_INFO counts them, GET_REGION_INFO
// gives each one's flags and size with a VFIO_REGION_INFO_CAP_TYPE (and the argsz
// protocol when the chain does not fit), reads and writes reach the vendor's handler in
// aligned pieces clipped at the region's end, and they cannot be mapped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys } from '../../src/sys/mock.js';
import { openPciDevice } from '../../src/vfio/index.js';
import { capIds, ioctls, vfio_region_info, vfio_region_info_cap_type } from '../../src/uapi/index.js';
import { VgpuDevice } from '../../src/vgpu/device/vgpu-device.js';
import type { RegisterHandler, VgpuModel, VgpuRegion } from '../../src/vgpu/vendor.js';
import { assertErrno, openFdCount } from './fixtures/device-rig.js';

const UUID = '2d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5';

/** 16 bytes of registers; records every access. */
function registers(log: string[]): RegisterHandler & { bytes: Uint8Array } {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  return {
    bytes,
    read(offset, size) {
      log.push(`r${size}@${offset}`);
      return size === 4 ? view.getUint32(offset, true) : size === 2 ? view.getUint16(offset, true) : view.getUint8(offset);
    },
    write(offset, size, value) {
      log.push(`w${size}@${offset}=${value.toString(16)}`);
      if (size === 4) view.setUint32(offset, value, true);
      else if (size === 2) view.setUint16(offset, value, true);
      else view.setUint8(offset, value);
    },
  };
}

function model(regions: VgpuRegion[]): VgpuModel {
  return {
    pci: {
      identity: { vendor: 0x1234, device: 0x0c02, subsystemVendor: 0x1234, subsystemDevice: 1, classCode: 0xff0000, revision: 1 },
      interruptPin: 0, msiVectors: 0, express: false, powerManagement: false,
    },
    bars: [],
    regions,
    open() {}, release() {}, reset() {}, dmaUnmap() {},
  };
}

function open(regions: VgpuRegion[]) {
  const sys = createMockSys({ devices: [] });
  const vgpu = new VgpuDevice(UUID, model(regions), { opened() {}, released() {} });
  const group = sys.kernel.registerDevice(vgpu, { iommuBacked: false });
  const handle = openPciDevice(sys, UUID, { group });
  return { sys, handle, device: handle.device };
}

test('region 9 and 10: counted by GET_INFO, typed by CAP_TYPE, flags from readable/writable, at index << 40', () => {
  const log: string[] = [];
  const { handle, device } = open([
    { type: 1, subtype: 1, size: 16, readable: true, writable: true, handler: registers(log) },
    { type: 0x8000_1af4, subtype: 7, size: 8, readable: true, writable: false, handler: registers(log) },
  ]);
  try {
    assert.equal(device.info.numRegions, 11);
    const r9 = device.region(9);
    const r10 = device.region(10);
    assert.deepEqual([r9.flags, r9.size, r9.offset, r9.type], [0x8 | 0x3, 16, 9n << 40n, { type: 1, subtype: 1 }]);
    assert.deepEqual([r10.flags, r10.size, r10.offset, r10.type], [0x8 | 0x1, 8, 10n << 40n, { type: 0x8000_1af4, subtype: 7 }]);
    assert.equal(r9.mmappable, false);
    assert.equal(device.regions.has(11), false);
  } finally {
    handle.close();
  }
});

test('GET_REGION_INFO of a device region: argsz 32 gets the size it needs and cap_offset 0; argsz 48 gets the chain', () => {
  const { sys, handle, device } = open([{ type: 1, subtype: 1, size: 16, readable: true, writable: true, handler: registers([]) }]);
  try {
    const short = vfio_region_info.encode({ argsz: 32, index: 9, cap_offset: 0x55 });
    sys.ioctl(device.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, short);
    assert.deepEqual(vfio_region_info.decode(short), { argsz: 48, flags: 0xb, index: 9, cap_offset: 0, size: 16n, offset: 9n << 40n });
    const full = vfio_region_info.encode({ argsz: 48, index: 9 }, 48);
    sys.ioctl(device.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, full);
    assert.equal(vfio_region_info.decode(full).cap_offset, 32);
    assert.deepEqual(vfio_region_info_cap_type.decode(full, 32), { id: capIds.VFIO_REGION_INFO_CAP_TYPE, version: 1, next: 0, type: 1, subtype: 1 });
    assertErrno(() => sys.ioctl(device.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, vfio_region_info.encode({ argsz: 48, index: 10 }, 48)), 'EINVAL');
    assertErrno(() => sys.ioctl(device.fd, ioctls.VFIO_DEVICE_GET_REGION_INFO, vfio_region_info.encode({ argsz: 31, index: 9 }, 48)), 'EINVAL');
  } finally {
    handle.close();
  }
});

test('device region access: aligned pieces, clipped at the end, EINVAL past it or against its flags, never mmap', () => {
  const log: string[] = [];
  const regs = registers(log);
  const { sys, handle, device } = open([
    { type: 1, subtype: 1, size: 16, readable: true, writable: true, handler: regs },
    { type: 1, subtype: 2, size: 8, readable: false, writable: true, handler: registers(log) },
  ]);
  try {
    const r9 = device.region(9);
    r9.write32(4, 0xdeadbeef);
    assert.equal(r9.read32(4), 0xdeadbeef);
    assert.deepEqual(log.splice(0), ['w4@4=deadbeef', 'r4@4']);
    assert.equal(r9.write(1, new Uint8Array([1, 2, 3, 4, 5, 6, 7])), 7);
    assert.deepEqual(log.splice(0), ['w1@1=1', 'w2@2=302', 'w4@4=7060504']);
    assert.equal(r9.read(12, 16).byteLength, 4, 'clipped at the end');
    assertErrno(() => r9.read(16, 1), 'EINVAL');
    assertErrno(() => device.region(10).read(0, 4), 'EINVAL');
    assert.equal(device.region(10).write(0, new Uint8Array(4)), 4);
    assertErrno(() => sys.mmap(device.fd, 9n << 40n, 4096, 3), 'EINVAL');
    assert.deepEqual([...regs.bytes.subarray(0, 8)], [0, 1, 2, 3, 4, 5, 6, 7]);
  } finally {
    handle.close();
  }
});

test('a device region handler that throws: EIO for that access, the device stays usable, no fd leaked', () => {
  const before = openFdCount();
  const handler: RegisterHandler = {
    read: (offset) => { if (offset === 0) throw new Error('broken'); return 7; },
    write: () => {},
  };
  const { handle, device } = open([{ type: 1, subtype: 1, size: 8, readable: true, writable: true, handler }]);
  try {
    assertErrno(() => device.region(9).read32(0), 'EIO');
    assert.equal(device.region(9).read32(4), 7);
  } finally {
    handle.close();
  }
  assert.equal(openFdCount(), before);
});

test('a model with a malformed region is refused at creation', () => {
  assert.throws(() => new VgpuDevice(UUID, model([{ type: 1, subtype: 1, size: 2, readable: true, writable: true, handler: registers([]) }]), { opened() {}, released() {} }),
    /region 9 size 2/);
  assert.throws(() => new VgpuDevice(UUID, model([{ type: -1, subtype: 1, size: 8, readable: true, writable: true, handler: registers([]) }]), { opened() {}, released() {} }),
    /region 9 type -1/);
});
