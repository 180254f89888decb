// Dirty-page tracking on the mock TYPE1 IOMMU: START/STOP, GET_BITMAP and
// UNMAP_DMA with GET_DIRTY_BITMAP, bit layout in user memory, and their errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ioctls, vfio_bitmap, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get } from '../../src/uapi/index.js';
import { assertErrno, mapArg, mockWithDevices, openContainer, TYPE1, unmapArg, unmappedSize } from './mock-helpers.js';

const PAGE = 4096n;
const START = 1;
const STOP = 2;
const GET = 4;
const DIRTY = ioctls.VFIO_IOMMU_DIRTY_PAGES;

function dirtyArg(flags: number, argsz = 8): Uint8Array {
  return vfio_iommu_type1_dirty_bitmap.encode({ argsz, flags });
}

function getArg(iova: bigint, size: bigint, data: bigint, bitmapSize = 8n, pgsize = PAGE, argsz = 48): Uint8Array {
  const buf = vfio_iommu_type1_dirty_bitmap.encode({ argsz, flags: GET }, 48);
  vfio_iommu_type1_dirty_bitmap_get.write(buf, { iova, size, bitmap_pgsize: pgsize, bitmap_size: bitmapSize, bitmap_data: data }, 8);
  return buf;
}

/** Two mappings: 3 pages at 0x10000 and 2 pages at 0x14000 (a one-page hole between). */
function setup(kernel: '6.1' | '6.12' = '6.1') {
  const { sys } = mockWithDevices({ kernel });
  const { container } = openContainer(sys, 0);
  const mem = sys.allocate(5 * 4096);
  sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0x10000n, 3n * PAGE));
  sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address + 3n * PAGE, 0x14000n, 2n * PAGE));
  const bitmap = sys.allocate(4096);
  return { sys, container, bitmap, bits: new Uint8Array(bitmap.buffer) };
}

describe('mock TYPE1 dirty pages', () => {
  it('is v2 only and checks argsz and flags', () => {
    const { sys } = mockWithDevices();
    const v1 = openContainer(sys, 0, TYPE1);
    assertErrno(() => sys.ioctl(v1.container, DIRTY, dirtyArg(START)), 'EACCES');
    const { container } = openContainer(sys, 1);
    assertErrno(() => sys.ioctl(container, DIRTY, new Uint8Array(7)), 'EFAULT');
    assertErrno(() => sys.ioctl(container, DIRTY, dirtyArg(START, 7)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, DIRTY, dirtyArg(0)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, DIRTY, dirtyArg(START | STOP)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, DIRTY, dirtyArg(8)), 'EINVAL');
    assert.equal(sys.ioctl(container, DIRTY, dirtyArg(STOP)), 0, 'STOP while stopped');
    assert.equal(sys.ioctl(container, DIRTY, dirtyArg(START)), 0);
    assert.equal(sys.ioctl(container, DIRTY, dirtyArg(START)), 0, 'START while started');
  });

  it('GET_BITMAP reports every mapped page of an IOMMU-backed group, in place', () => {
    const { sys, container, bitmap, bits } = setup();
    assertErrno(() => sys.ioctl(container, DIRTY, getArg(0x10000n, 6n * PAGE, bitmap.address)), 'EINVAL');
    sys.ioctl(container, DIRTY, dirtyArg(START));
    bits.fill(0);
    bits[8] = 0xaa; // the next word is not the kernel's to touch
    sys.ioctl(container, DIRTY, getArg(0x10000n, 6n * PAGE, bitmap.address));
    assert.deepEqual([...bits.subarray(0, 9)], [0b110111, 0, 0, 0, 0, 0, 0, 0, 0xaa]);
    // A mapping that starts a word overwrites the whole word, zeros past its end included...
    bits.fill(0);
    bits[0] = 0x80;
    sys.ioctl(container, DIRTY, getArg(0x14000n, 2n * PAGE, bitmap.address));
    assert.equal(bits[0], 0x03);
    // ...one that starts mid-word is ORed into what the user had there.
    bits.fill(0);
    bits[0] = 0x81;
    sys.ioctl(container, DIRTY, getArg(0x13000n, 3n * PAGE, bitmap.address));
    assert.equal(bits[0], 0x87);
    // Every report again: nothing pins, so the IOMMU may have written anywhere.
    bits.fill(0);
    sys.ioctl(container, DIRTY, getArg(0x10000n, 3n * PAGE, bitmap.address));
    assert.equal(bits[0], 0b111);
  });

  it('GET_BITMAP errors: argsz, page size, alignment, split mappings, small or unmapped bitmap', () => {
    const { sys, container, bitmap } = setup();
    sys.ioctl(container, DIRTY, dirtyArg(START));
    const get = (arg: Uint8Array) => sys.ioctl(container, DIRTY, arg);
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, bitmap.address, 8n, PAGE, 47)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, bitmap.address).subarray(0, 40)), 'EFAULT');
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, bitmap.address, 8n, 0x200000n)), 'EINVAL');
    assertErrno(() => get(getArg(0x10800n, 6n * PAGE, bitmap.address)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 0x800n, bitmap.address)), 'EINVAL');
    assertErrno(() => get(getArg(0x11000n, 2n * PAGE, bitmap.address)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 2n * PAGE, bitmap.address)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, bitmap.address, 0n)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 65n * 4096n * 8n, bitmap.address, 8n)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, 1n << 47n)), 'EINVAL');
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, 0x1000n)), 'EFAULT');
    assertErrno(() => get(getArg((1n << 64n) - PAGE, 2n * PAGE, bitmap.address)), 'EINVAL');
    sys.ioctl(container, DIRTY, dirtyArg(STOP));
    assertErrno(() => get(getArg(0x10000n, 6n * PAGE, bitmap.address)), 'EINVAL');
  });

  it('UNMAP_DMA with GET_DIRTY_BITMAP reports the pages of what it unmaps', () => {
    const { sys, container, bitmap, bits } = setup();
    const withBitmap = (iova: bigint, size: bigint, bitmapSize = 8n, pgsize = PAGE, argsz = 48) => {
      const arg = unmapArg(iova, size, 1, argsz);
      const full = new Uint8Array(48);
      full.set(arg.subarray(0, 24));
      vfio_bitmap.write(full, { pgsize, size: bitmapSize, data: bitmap.address }, 24);
      return full;
    };
    assertErrno(() => sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, withBitmap(0x10000n, 6n * PAGE)), 'EINVAL');
    sys.ioctl(container, DIRTY, dirtyArg(START));
    assertErrno(() => sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, withBitmap(0x10000n, 6n * PAGE, 8n, PAGE, 47)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, withBitmap(0x10000n, 6n * PAGE, 8n, 0x200000n)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, withBitmap(0x10000n, 6n * PAGE, 0n)), 'EINVAL');
    bits.fill(0);
    const arg = withBitmap(0x10000n, 6n * PAGE);
    assert.equal(sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, arg), 0);
    assert.equal(unmappedSize(arg), 5n * PAGE);
    assert.equal(bits[0], 0b110111);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });
});
