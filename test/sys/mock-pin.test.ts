// Pinning for mediated devices on the mock TYPE1 IOMMU (DmaSpace.pin/unpin, the
// kernel's vfio_pin_pages/vfio_unpin_pages): errnos in the kernel's order, per-page
// reference counts, views of the host memory, and locked memory charged at pin time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ioctls } from '../../src/uapi/index.js';
import { createMockSys } from '../../src/sys/mock.js';
import { assertErrno, fakePciDevice, mapArg, nameArg, openContainer, TYPE1, unmapArg } from './mock-helpers.js';
import { addDevice, IOMMU_READ, IOMMU_WRITE, MDEV_B, PAGE, pinningDevice, pinSys } from './mock-pin-fixtures.js';

const MAP = ioctls.VFIO_IOMMU_MAP_DMA;
const UNMAP = ioctls.VFIO_IOMMU_UNMAP_DMA;

describe('mock vfio_pin_pages', () => {
  it('returns one page-sized view per page of the user memory behind the IOVAs', () => {
    const { a, map } = pinSys();
    const mem = map(0x10000n, 4);
    const user = new Uint8Array(mem.buffer);
    user[2 * 4096 + 5] = 0x5a;
    const views = a.pin(0x11000n, 3, IOMMU_READ | IOMMU_WRITE);
    assert.equal(views.length, 3);
    for (const [i, v] of views.entries()) {
      assert.equal(v.byteLength, 4096);
      assert.equal(v.buffer, mem.buffer, 'a view of the Mapping itself, not a copy');
      assert.equal(v.byteOffset, (i + 1) * 4096);
    }
    assert.equal(views[1]![5], 0x5a);
    views[2]![0] = 0xa5;
    assert.equal(user[3 * 4096], 0xa5, 'writes through a view land in user memory');
  });

  it('counts pins per page: the page stays pinned until its last pin goes', () => {
    const { a, iommu, map } = pinSys();
    map(0x10000n, 4);
    const first = a.pin(0x10000n, 2);
    const again = a.pin(0x11000n, 2, IOMMU_READ);
    assert.equal(again[0], first[1], 'the same page, the same view');
    assert.equal(iommu().pinnedPages, 3);
    a.unpin(0x11000n, 1);
    assert.equal(iommu().pinnedPages, 3, 'page 1 still has a pin');
    a.unpin(0x10000n, 2);
    assert.equal(iommu().pinnedPages, 1);
    a.unpin(0x12000n, 1);
    assert.equal(iommu().pinnedPages, 0);
    assertErrno(() => a.unpin(0x10000n, 1), 'EINVAL');
  });

  it('checks its arguments first: npage 0 or not an integer EINVAL, over 512 E2BIG, iova unaligned EINVAL', () => {
    const { a, map } = pinSys();
    map(0x10000n, 1);
    const dma = a.ctx!.dma;
    assertErrno(() => dma.pin(0x10000n, 0, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.pin(0x10000n, -1, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.pin(0x10000n, 1.5, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.pin(0x10000n, 513, IOMMU_READ), 'E2BIG');
    assertErrno(() => dma.pin(0x10001n, 513, IOMMU_READ), 'E2BIG');
    assertErrno(() => dma.pin(0x10800n, 1, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.pin(-4096n, 1, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.pin((1n << 64n) - PAGE, 2, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.unpin(0x10000n, 0), 'EINVAL');
    assertErrno(() => dma.unpin(0x10000n, 513), 'E2BIG');
    assertErrno(() => dma.unpin(0x10800n, 1), 'EINVAL');
  });

  it('pins 512 pages in one call and unpins them in one call', () => {
    const { sys, a, iommu, map } = pinSys({ memlockLimit: 512 * 4096 });
    map(0x100000n, 512);
    assert.equal(a.pin(0x100000n, 512).length, 512);
    assert.equal(sys.kernel.locked.lockedPages, 512);
    a.unpin(0x100000n, 512);
    assert.equal(iommu().pinnedPages, 0);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });

  it('a TYPE1 (v1) container refuses with EACCES', () => {
    const { a, sys, container } = pinSys({ type: TYPE1 });
    const mem = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    assertErrno(() => a.pin(0x10000n, 1), 'EACCES');
    assertErrno(() => a.pin(0x20000n, 1), 'EACCES');
  });

  it('a page that is not mapped is EINVAL, and nothing of the call stays pinned', () => {
    const { sys, a, iommu, map } = pinSys();
    map(0x10000n, 2);
    a.pin(0x10000n, 1);
    assertErrno(() => a.pin(0x30000n, 1), 'EINVAL');
    assertErrno(() => a.pin(0x10000n, 3), 'EINVAL');
    assert.equal(iommu().pinnedPages, 1);
    assert.equal(sys.kernel.locked.lockedPages, 1);
    a.unpin(0x10000n, 1);
    assertErrno(() => a.unpin(0x10000n, 1), 'EINVAL');
  });

  it('access beyond the mapping\'s protection is EPERM', () => {
    const { a, iommu, map } = pinSys();
    map(0x10000n, 1, 1); // READ only, from the device's point of view
    map(0x11000n, 1, 2); // WRITE only
    assert.equal(a.pin(0x10000n, 1, IOMMU_READ).length, 1);
    assertErrno(() => a.pin(0x10000n, 1, IOMMU_WRITE), 'EPERM');
    assertErrno(() => a.pin(0x11000n, 1, IOMMU_READ | IOMMU_WRITE), 'EPERM');
    assertErrno(() => a.pin(0x10000n, 2, IOMMU_READ), 'EPERM'); // the second page is not readable
    assertErrno(() => a.pin(0x10000n, 1, 4), 'EPERM'); // no mapping has prot 4
    assert.equal(iommu().pinnedPages, 1);
  });

  it('memory that is not there is EFAULT, device memory EINVAL', () => {
    const { sys, a, container, deviceFd, iommu, map } = pinSys();
    // An mdev-only MAP does not look at the vaddr; the pin does.
    sys.ioctl(container, MAP, mapArg(0x7000_0000_0000n, 0x10000n, PAGE));
    assertErrno(() => a.pin(0x10000n, 1), 'EFAULT');
    const gone = map(0x20000n, 2);
    a.pin(0x21000n, 1);
    sys.munmap(gone);
    assertErrno(() => a.pin(0x20000n, 1), 'EFAULT'); // unmapped by the user after MAP_DMA
    assert.equal(a.pin(0x21000n, 1).length, 1, 'a page already pinned needs no user memory');
    // A BAR of the device itself, mapped for peer-to-peer DMA: no struct page to pin.
    const bar = sys.mmap(deviceFd, 0n, 4096, 3);
    sys.ioctl(container, MAP, mapArg(bar.address, 0x30000n, PAGE));
    assertErrno(() => a.pin(0x30000n, 1), 'EINVAL');
    assert.equal(iommu().pinnedPages, 1);
    assert.equal(sys.kernel.locked.lockedPages, 1);
  });

  it('needs an open device that has dma_unmap (EINVAL otherwise)', () => {
    const { sys, a, container, deviceFd, map } = pinSys({ aHasDmaUnmap: false });
    map(0x10000n, 1);
    assertErrno(() => a.pin(0x10000n, 1), 'EINVAL');
    const b = pinningDevice(MDEV_B);
    const opened = addDevice(sys, container, b);
    b.pin(0x10000n, 1);
    const dma = b.ctx!.dma;
    b.unpin(0x10000n, 1);
    sys.close(opened.deviceFd);
    assertErrno(() => dma.pin(0x10000n, 1, IOMMU_READ), 'EINVAL');
    assertErrno(() => dma.unpin(0x10000n, 1), 'EINVAL');
    sys.close(deviceFd);
  });

  it('unpin of a range that is not all pinned is EINVAL and changes nothing', () => {
    const { a, iommu, map } = pinSys();
    map(0x10000n, 3);
    a.pin(0x10000n, 2);
    assertErrno(() => a.ctx!.dma.unpin(0x10000n, 3), 'EINVAL');
    assertErrno(() => a.ctx!.dma.unpin(0x40000n, 1), 'EINVAL');
    assert.equal(iommu().pinnedPages, 2);
    a.unpin(0x10000n, 2);
  });

  it('one device may drop a pin another took (pins belong to IOVAs, as in the kernel)', () => {
    const { sys, a, container, iommu, map } = pinSys();
    map(0x10000n, 1);
    const b = pinningDevice(MDEV_B);
    addDevice(sys, container, b);
    a.pin(0x10000n, 1);
    b.ctx!.dma.unpin(0x10000n, 1);
    assert.equal(iommu().pinnedPages, 0);
  });
});

describe('mock vfio_pin_pages: locked memory', () => {
  it('charges each newly pinned page at pin time, ENOMEM past RLIMIT_MEMLOCK, and releases at unpin', () => {
    const { sys, a, iommu, map } = pinSys({ memlockLimit: 4 * 4096, capIpcLock: false });
    map(0x10000n, 8);
    assert.equal(sys.kernel.locked.lockedPages, 0, 'an mdev-only MAP charges nothing');
    a.pin(0x11000n, 2);
    assert.equal(sys.kernel.locked.lockedPages, 2);
    a.pin(0x10000n, 4); // pages 1 and 2 again: only 0 and 3 are new
    assert.equal(sys.kernel.locked.lockedPages, 4);
    assertErrno(() => a.pin(0x14000n, 1), 'ENOMEM');
    assertErrno(() => a.pin(0x10000n, 5), 'ENOMEM'); // the fifth page is one too many
    assert.equal(sys.kernel.locked.lockedPages, 4, 'a failed pin charges nothing');
    assert.equal(iommu().pinnedPages, 4, 'and pins nothing');
    a.unpin(0x11000n, 2);
    assert.equal(sys.kernel.locked.lockedPages, 4, 'pages 1 and 2 still have a pin each');
    a.unpin(0x10000n, 4);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });

  it('with CAP_IPC_LOCK the limit is not checked but pinned pages are counted', () => {
    const { sys, a, map } = pinSys({ memlockLimit: 1 * 4096, capIpcLock: true });
    map(0x10000n, 3);
    a.pin(0x10000n, 3);
    assert.equal(sys.kernel.locked.lockedPages, 3);
    a.unpin(0x10000n, 3);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });

  it('the same memory mapped at two IOVAs is charged twice', () => {
    const { sys, a, container } = pinSys();
    const mem = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address, 0x20000n, PAGE));
    const [one] = a.pin(0x10000n, 1);
    const [two] = a.pin(0x20000n, 1);
    assert.equal(one!.byteOffset, two!.byteOffset);
    assert.equal(one!.buffer, two!.buffer);
    assert.equal(sys.kernel.locked.lockedPages, 2);
  });

  it('with an IOMMU-backed group in the container pins charge nothing more; each page stays charged once as the domain comes and goes', () => {
    const { sys, a, container, iommu, map } = pinSys({ memlockLimit: 16 * 4096 });
    const pci = fakePciDevice('0000:00:04.0');
    map(0x10000n, 4);
    a.pin(0x10000n, 1);
    assert.equal(sys.kernel.locked.lockedPages, 1);
    const joined = addDevice(sys, container, pci, true);
    assert.equal(sys.kernel.locked.lockedPages, 4, 'the domain pins all 4 pages; the device-pinned one is not charged twice');
    a.pin(0x11000n, 2);
    assert.equal(sys.kernel.locked.lockedPages, 4);
    a.unpin(0x12000n, 1);
    assert.equal(sys.kernel.locked.lockedPages, 4);
    sys.close(joined.deviceFd);
    sys.close(joined.groupFd); // the domain goes; what devices still pin stays charged
    assert.equal(sys.kernel.locked.lockedPages, 2);
    assert.equal(iommu().pinnedPages, 2);
    a.unpin(0x10000n, 2);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });

  it('a pinned page outlives the user\'s munmap; it goes with its last pin', () => {
    const { sys, a, map } = pinSys();
    const mem = map(0x10000n, 1);
    const [view] = a.pin(0x10000n, 1);
    view![0] = 7;
    sys.munmap(mem);
    assert.equal(sys.kernel.mm.retainedCount, 1);
    assert.equal(view![0], 7, 'still readable while pinned');
    a.unpin(0x10000n, 1);
    assert.equal(sys.kernel.mm.retainedCount, 0);
    assert.equal(view!.byteLength, 0, 'the buffer is detached once the memory is really unmapped');
  });

  it('an invalidated vaddr makes pinning EBUSY', () => {
    // VADDR invalidation needs a container without emulated groups: a PCI device that pins.
    const pci = pinningDevice('0000:00:04.0');
    const sys = createMockSys({ devices: [pci], capIpcLock: false, memlockLimit: 64 * 4096 });
    const { container, group } = openContainer(sys, 0);
    const mem = sys.allocate(2 * 4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address + PAGE, 0x11000n, PAGE));
    sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg(pci.name));
    sys.ioctl(container, UNMAP, unmapArg(0x10000n, PAGE, 4 /* VADDR */));
    assertErrno(() => pci.pin(0x11000n, 1), 'EBUSY');
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE, 4 /* VADDR */));
    assert.equal(pci.pin(0x11000n, 1).length, 1);
  });
});
