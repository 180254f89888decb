// DMA by devices through the mock IOMMU, pinned memory outliving munmap, and
// containers whose groups are not IOMMU-backed (mdev-style).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  extensions, ioctls, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get, vfio_iommu_type1_info, walkCaps,
  decodeIovaRanges, decodeMigration,
} from '../../src/uapi/index.js';
import { DmaFault } from '../../src/device/backend.js';
import { createMockSys } from '../../src/sys/mock.js';
import { assertErrno, fakePciDevice, fdArg, mapArg, mockWithDevices, nameArg, openContainer, unmapArg } from './mock-helpers.js';

const PAGE = 4096n;
const MAP = ioctls.VFIO_IOMMU_MAP_DMA;
const UNMAP = ioctls.VFIO_IOMMU_UNMAP_DMA;
const MDEV = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

function openDevice(sys: ReturnType<typeof mockWithDevices>['sys'], group: number, name: string): number {
  return sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg(name));
}

function info(sys: ReturnType<typeof mockWithDevices>['sys'], container: number, argsz = 256): Uint8Array {
  const buf = new Uint8Array(256);
  vfio_iommu_type1_info.write(buf, { argsz });
  sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, buf);
  return buf;
}

function groupStatus(sys: ReturnType<typeof mockWithDevices>['sys'], group: number): number {
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setUint32(0, 8, true);
  sys.ioctl(group, ioctls.VFIO_GROUP_GET_STATUS, buf);
  return new DataView(buf.buffer).getUint32(4, true);
}

describe('mock DMA space', () => {
  it('reads and writes through mappings, across adjacent ones', () => {
    const { sys, a } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const lo = sys.allocate(4096);
    const hi = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(lo.address, 0x10000n, PAGE));
    sys.ioctl(container, MAP, mapArg(hi.address, 0x11000n, PAGE));
    const dev = openDevice(sys, group, '0000:00:04.0');
    a.ctx!.dma.write(0x10ffen, Uint8Array.of(1, 2, 3, 4));
    assert.deepEqual([...new Uint8Array(lo.buffer, 4094, 2)], [1, 2]);
    assert.deepEqual([...new Uint8Array(hi.buffer, 0, 2)], [3, 4]);
    const out = new Uint8Array(4);
    a.ctx!.dma.read(0x10ffen, out);
    assert.deepEqual([...out], [1, 2, 3, 4]);
    a.ctx!.dma.read(0x10000n, new Uint8Array(0));
    sys.close(dev);
  });

  it('faults without touching a byte: unmapped tail, missing READ or WRITE', () => {
    const { sys, a } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const mem = sys.allocate(3 * 4096);
    const bytes = new Uint8Array(mem.buffer).fill(0x11);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address + PAGE, 0x20000n, PAGE, 1));
    sys.ioctl(container, MAP, mapArg(mem.address + 2n * PAGE, 0x30000n, PAGE, 2));
    const dev = openDevice(sys, group, '0000:00:04.0');
    const dma = a.ctx!.dma;
    assert.throws(() => dma.write(0x10ff0n, new Uint8Array(32).fill(0xff)), (e: unknown) => e instanceof DmaFault && e.access === 'write' && e.iova === 0x10ff0n);
    assert.ok(bytes.every((b) => b === 0x11), 'memory untouched');
    const dst = new Uint8Array(32).fill(0x22);
    assert.throws(() => dma.read(0x10ff0n, dst), DmaFault);
    assert.ok(dst.every((b) => b === 0x22), 'destination untouched');
    assert.throws(() => dma.write(0x20000n, Uint8Array.of(1)), DmaFault, 'READ-only mapping');
    dma.read(0x20000n, new Uint8Array(1));
    assert.throws(() => dma.read(0x30000n, new Uint8Array(1)), DmaFault, 'WRITE-only mapping');
    dma.write(0x30000n, Uint8Array.of(7));
    assert.equal(bytes[2 * 4096], 7);
    assert.throws(() => dma.read((1n << 64n) - 1n, new Uint8Array(2)), DmaFault);
    sys.close(dev);
  });

  it('pinned memory outlives munmap until its last DMA mapping goes', () => {
    const { sys, a } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const mem = sys.allocate(4096);
    new Uint8Array(mem.buffer)[0] = 0x42;
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address, 0x20000n, PAGE));
    const dev = openDevice(sys, group, '0000:00:04.0');
    sys.munmap(mem);
    sys.munmap(mem);
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0x30000n, PAGE)), 'EFAULT');
    const out = new Uint8Array(1);
    a.ctx!.dma.read(0x20000n, out);
    assert.equal(out[0], 0x42, 'the device still reaches the pinned page');
    sys.ioctl(container, UNMAP, unmapArg(0x10000n, PAGE));
    assert.equal(sys.kernel.mm.retainedCount, 1);
    sys.ioctl(container, UNMAP, unmapArg(0x20000n, PAGE));
    assert.equal(sys.kernel.mm.retainedCount, 0);
    assert.equal(mem.buffer.byteLength, 0, 'really unmapped now');
    sys.close(dev);
  });

  it('a device BAR mapping can be a DMA target (peer to peer)', () => {
    const { sys, a, b } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const g1 = sys.open('/dev/vfio/1');
    sys.ioctl(g1, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
    const devA = openDevice(sys, group, '0000:00:04.0');
    const devB = openDevice(sys, g1, '0000:00:05.0');
    const bar = sys.mmap(devB, 0n, 4096, 3);
    sys.ioctl(container, MAP, mapArg(bar.address, 0xe0000000n, PAGE));
    a.ctx!.dma.write(0xe0000010n, Uint8Array.of(0xab));
    assert.equal(b.bar!.bytes[0x10], 0xab);
    sys.ioctl(container, UNMAP, unmapArg(0n, 0n, 2));
    sys.munmap(bar);
    sys.close(devB);
    sys.close(devA);
  });
});

describe('mock mdev-only containers', () => {
  function mdevSys(kernel: '6.1' | '6.12' = '6.1') {
    const pci = fakePciDevice('0000:00:04.0');
    const mdev = fakePciDevice(MDEV);
    const sys = createMockSys({ kernel, devices: [pci], memlockLimit: 16 * 4096, capIpcLock: false });
    const mdevGroup = sys.kernel.registerDevice(mdev, { iommuBacked: false });
    return { sys, pci, mdev, mdevGroup };
  }

  it('no pinning, no accounting, PAGE_MASK page sizes, no IOVA range cap', () => {
    const { sys, mdevGroup } = mdevSys();
    assert.equal(mdevGroup, 1);
    const { container } = openContainer(sys, mdevGroup);
    assert.equal(vfio_iommu_type1_info.decode(info(sys, container, 24)).argsz, 68, 'packed: 24 + 32 + 12');
    const buf = info(sys, container);
    assert.deepEqual(vfio_iommu_type1_info.decode(buf), { argsz: 256, flags: 3, iova_pgsizes: 0xfffffffffffff000n, cap_offset: 24 });
    assert.deepEqual(walkCaps(buf, 24).map((c) => [c.id, c.offset]), [[2, 24], [3, 56]]);
    assert.equal(decodeMigration(buf, 24).pgsizeBitmap, 4096n);
    assert.equal(sys.ioctl(container, MAP, mapArg(0x7000_0000_0000n, 1n << 40n, 64n * PAGE)), 0, 'nothing pins, so nothing checks vaddr');
    assert.equal(sys.kernel.locked.lockedPages, 0);
    assert.equal(sys.ioctl(container, ioctls.VFIO_CHECK_EXTENSION, extensions.VFIO_UPDATE_VADDR), 0);
    assert.equal(sys.ioctl(container, ioctls.VFIO_CHECK_EXTENSION, extensions.VFIO_DMA_CC_IOMMU), 1);
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(1n << 40n, 64n * PAGE, 4)), 'EBUSY');
  });

  it('6.12 pads the two caps to 72 bytes', () => {
    const { sys, mdevGroup } = mdevSys('6.12');
    const { container } = openContainer(sys, mdevGroup);
    assert.equal(vfio_iommu_type1_info.decode(info(sys, container, 24)).argsz, 72);
  });

  it('device DMA reaches user memory at access time (vfio_dma_rw)', () => {
    const { sys, mdev, mdevGroup } = mdevSys();
    const { container, group } = openContainer(sys, mdevGroup);
    const mem = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    const dev = openDevice(sys, group, MDEV);
    mdev.ctx!.dma.write(0x10000n, Uint8Array.of(9));
    assert.equal(new Uint8Array(mem.buffer)[0], 9);
    sys.munmap(mem);
    assert.throws(() => mdev.ctx!.dma.read(0x10000n, new Uint8Array(1)), DmaFault);
    sys.close(dev);
  });

  it('dirty tracking reports only the pages the device wrote, once', () => {
    const { sys, mdev, mdevGroup } = mdevSys();
    const { container, group } = openContainer(sys, mdevGroup);
    const mem = sys.allocate(4 * 4096);
    const bitmap = sys.allocate(4096);
    const bits = new Uint8Array(bitmap.buffer);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 4n * PAGE));
    const dev = openDevice(sys, group, MDEV);
    const dirty = (flags: number) => vfio_iommu_type1_dirty_bitmap.encode({ argsz: 8, flags });
    const get = () => {
      const arg = vfio_iommu_type1_dirty_bitmap.encode({ argsz: 48, flags: 4 }, 48);
      vfio_iommu_type1_dirty_bitmap_get.write(arg, { iova: 0x10000n, size: 4n * PAGE, bitmap_pgsize: PAGE, bitmap_size: 8n, bitmap_data: bitmap.address }, 8);
      bits.fill(0);
      sys.ioctl(container, ioctls.VFIO_IOMMU_DIRTY_PAGES, arg);
      return bits[0];
    };
    mdev.ctx!.dma.write(0x10000n, Uint8Array.of(1)); // before tracking: not recorded
    sys.ioctl(container, ioctls.VFIO_IOMMU_DIRTY_PAGES, dirty(1));
    mdev.ctx!.dma.write(0x11ffen, Uint8Array.of(1, 2, 3)); // pages 1 and 2
    mdev.ctx!.dma.read(0x13000n, new Uint8Array(8));
    assert.equal(get(), 0b0110);
    assert.equal(get(), 0, 'a report starts a new interval');
    sys.close(dev);
  });

  it('an IOMMU-backed group joining pins what is mapped; leaving unpins it', () => {
    const { sys, mdevGroup } = mdevSys();
    const { container } = openContainer(sys, mdevGroup);
    const mem = sys.allocate(2 * 4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE));
    const g0 = sys.open('/dev/vfio/0');
    sys.ioctl(g0, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
    assert.equal(sys.kernel.locked.lockedPages, 2);
    assert.equal(vfio_iommu_type1_info.decode(info(sys, container)).iova_pgsizes, 0x40201000n);
    sys.ioctl(g0, ioctls.VFIO_GROUP_UNSET_CONTAINER);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    const after = info(sys, container);
    const iova = walkCaps(after, 24).find((c) => c.id === 1)!;
    assert.deepEqual(decodeIovaRanges(after, iova.offset), [{ start: 0n, end: (1n << 64n) - 1n }]);
    assert.equal(vfio_iommu_type1_info.decode(after).iova_pgsizes, 0xfffffffffffff000n);
    sys.close(g0);
  });

  it('joining fails, leaving the group out, when a mapping cannot be pinned or lies outside the aperture', () => {
    const { sys, mdevGroup } = mdevSys();
    const { container } = openContainer(sys, mdevGroup);
    const g0 = sys.open('/dev/vfio/0');
    sys.ioctl(container, MAP, mapArg(0x7000_0000_0000n, 0x10000n, PAGE));
    assertErrno(() => sys.ioctl(g0, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 'EFAULT');
    assert.equal(groupStatus(sys, g0), 1);
    sys.ioctl(container, UNMAP, unmapArg(0n, 0n, 2));
    const mem = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 1n << 40n, PAGE));
    assertErrno(() => sys.ioctl(g0, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 'EINVAL');
    sys.ioctl(container, UNMAP, unmapArg(0n, 0n, 2));
    const big = sys.allocate(17 * 4096);
    sys.ioctl(container, MAP, mapArg(big.address, 0x100000n, 17n * PAGE));
    assertErrno(() => sys.ioctl(g0, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 'ENOMEM');
    assert.equal(sys.kernel.locked.lockedPages, 0);
    sys.close(g0);
  });
});
