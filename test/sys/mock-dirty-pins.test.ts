// Dirty-page tracking with pinning on the mock TYPE1 IOMMU: pinned pages count as
// dirty (a report resets the bitmap to them), device writes through vfio_dma_rw mark
// pages, and the pinned-page dirty scope (an IOMMU-backed group that never pinned makes
// every page dirty; one that pins reports only what it pins and writes).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ioctls, vfio_bitmap, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get } from '../../src/uapi/index.js';
import type { MockSysLayer } from '../../src/sys/mock.js';
import { createMockSys } from '../../src/sys/mock.js';
import { mapArg, openContainer, unmapArg, unmappedSize } from './mock-helpers.js';
import { addDevice, MDEV_B, PAGE, pinningDevice, pinSys } from './mock-pin-fixtures.js';

const DIRTY = ioctls.VFIO_IOMMU_DIRTY_PAGES;
const START = 1;
const STOP = 2;
const GET = 4;

function dirtyPages(sys: MockSysLayer, container: number, flags: number): void {
  sys.ioctl(container, DIRTY, vfio_iommu_type1_dirty_bitmap.encode({ argsz: 8, flags }));
}

/** GET_BITMAP of [iova, iova + pages): the first byte of the bitmap (pages 0..7). */
function report(sys: MockSysLayer, container: number, iova: bigint, pages: number): number {
  const bitmap = sys.allocate(4096);
  const arg = vfio_iommu_type1_dirty_bitmap.encode({ argsz: 48, flags: GET }, 48);
  vfio_iommu_type1_dirty_bitmap_get.write(arg, { iova, size: BigInt(pages) * PAGE, bitmap_pgsize: PAGE, bitmap_size: 8n, bitmap_data: bitmap.address }, 8);
  sys.ioctl(container, DIRTY, arg);
  const bits = new Uint8Array(bitmap.buffer)[0]!;
  sys.munmap(bitmap);
  return bits;
}

describe('mock dirty tracking with pinned pages', () => {
  it('START marks pinned pages; a report resets the bitmap to the pinned pages', () => {
    const { sys, a, container, map } = pinSys();
    map(0x10000n, 4);
    a.pin(0x11000n, 1);
    a.pin(0x13000n, 1);
    dirtyPages(sys, container, START);
    assert.equal(report(sys, container, 0x10000n, 4), 0b1010);
    a.ctx!.dma.write(0x10000n, Uint8Array.of(1)); // vfio_dma_rw marks what it writes
    a.ctx!.dma.read(0x12000n, new Uint8Array(1)); // and not what it reads
    assert.equal(report(sys, container, 0x10000n, 4), 0b1011);
    assert.equal(report(sys, container, 0x10000n, 4), 0b1010, 'pinned pages stay dirty');
    a.unpin(0x13000n, 1);
    assert.equal(report(sys, container, 0x10000n, 4), 0b1010, 'unpinning does not clean the current interval');
    assert.equal(report(sys, container, 0x10000n, 4), 0b0010);
    a.pin(0x12000n, 1);
    assert.equal(report(sys, container, 0x10000n, 4), 0b0110, 'a pin while tracking marks its page');
  });

  it('STOP forgets; START again marks what is pinned then', () => {
    const { sys, a, container, map } = pinSys();
    map(0x10000n, 2);
    dirtyPages(sys, container, START);
    a.ctx!.dma.write(0x10000n, Uint8Array.of(1));
    dirtyPages(sys, container, STOP);
    a.pin(0x11000n, 1);
    dirtyPages(sys, container, START);
    assert.equal(report(sys, container, 0x10000n, 2), 0b10);
  });

  it('UNMAP_DMA with GET_DIRTY_BITMAP reports the pages that were pinned, after the device unpinned them', () => {
    const { sys, a, container, map } = pinSys();
    map(0x10000n, 4);
    a.pin(0x12000n, 1);
    dirtyPages(sys, container, START);
    report(sys, container, 0x10000n, 4);
    const bitmap = sys.allocate(4096);
    const arg = new Uint8Array(48);
    arg.set(unmapArg(0x10000n, 4n * PAGE, 1, 48).subarray(0, 24));
    vfio_bitmap.write(arg, { pgsize: PAGE, size: 8n, data: bitmap.address }, 24);
    sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, arg);
    assert.equal(unmappedSize(arg), 4n * PAGE);
    assert.equal(a.calls.length, 1);
    assert.deepEqual(a.held, []);
    assert.equal(new Uint8Array(bitmap.buffer)[0], 0b0100);
  });

  it('an IOMMU-backed group that never pinned makes every page dirty; once it pins, only what it pins and writes', () => {
    const pci = pinningDevice('0000:00:04.0');
    const sys = createMockSys({ devices: [pci], capIpcLock: false, memlockLimit: 64 * 4096 });
    const { container, group } = openContainer(sys, 0);
    const mem = sys.allocate(4 * 4096);
    sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0x10000n, 4n * PAGE));
    sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${pci.name}\0`));
    dirtyPages(sys, container, START);
    assert.equal(report(sys, container, 0x10000n, 4), 0b1111);
    assert.equal(report(sys, container, 0x10000n, 4), 0b1111, 'every report, while the group may write anywhere');
    pci.pin(0x12000n, 1);
    assert.equal(report(sys, container, 0x10000n, 4), 0b0100, 'pinned-page scope now');
    pci.ctx!.dma.write(0x10000n, Uint8Array.of(1));
    assert.equal(report(sys, container, 0x10000n, 4), 0b0101);
    assert.equal(sys.kernel.locked.lockedPages, 4, 'pinning in a domain charges nothing more');
  });

  it('an IOMMU-backed group that never pinned leaving: every page dirty until the next report', () => {
    const { sys, a, container, map } = pinSys();
    const pci = pinningDevice('0000:00:04.0');
    const joined = addDevice(sys, container, pci, true);
    map(0x10000n, 3);
    a.pin(0x11000n, 1);
    dirtyPages(sys, container, START);
    assert.equal(report(sys, container, 0x10000n, 3), 0b111);
    sys.close(joined.deviceFd);
    sys.close(joined.groupFd);
    assert.equal(report(sys, container, 0x10000n, 3), 0b111, 'what it may have dirtied is unknown');
    assert.equal(report(sys, container, 0x10000n, 3), 0b010, 'then pinned-page scope');
    assert.equal(sys.kernel.locked.lockedPages, 1);
  });

  it('an emulated group leaving changes nothing: it could only dirty through pins and DMA writes', () => {
    const { sys, a, container, map } = pinSys();
    const b = pinningDevice(MDEV_B);
    const joined = addDevice(sys, container, b);
    map(0x10000n, 3);
    a.pin(0x10000n, 1);
    dirtyPages(sys, container, START);
    report(sys, container, 0x10000n, 3);
    b.ctx!.dma.write(0x12000n, Uint8Array.of(1));
    sys.close(joined.deviceFd);
    sys.close(joined.groupFd);
    assert.equal(report(sys, container, 0x10000n, 3), 0b101);
    assert.equal(report(sys, container, 0x10000n, 3), 0b001);
  });
});
