// The mock TYPE1 IOMMU: MAP_DMA validation order, IOVA ranges, entry limit, locked
// memory, UNMAP_DMA (v2 and v1), UPDATE_VADDR, GET_INFO layouts on 6.1 and 6.12.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extensions, ioctls, vfio_iommu_type1_info, walkCaps, decodeIovaRanges, decodeMigration, decodeDmaAvail } from '../../src/uapi/index.js';
import { PROT_READ } from '../../src/sys/types.js';
import { assertErrno, mapArg, mockWithDevices, nameArg, openContainer, TYPE1, unmapArg, unmappedSize } from './mock-helpers.js';

const PAGE = 4096n;
const MAP = ioctls.VFIO_IOMMU_MAP_DMA;
const UNMAP = ioctls.VFIO_IOMMU_UNMAP_DMA;
const VADDR = 4;
const UNMAP_ALL = 2;
const UNMAP_VADDR = 4;

function getInfo(sys: ReturnType<typeof mockWithDevices>['sys'], container: number, argsz: number, bufSize = argsz, fill = 0): Uint8Array {
  const buf = new Uint8Array(bufSize).fill(fill);
  vfio_iommu_type1_info.write(buf, { argsz }, 0);
  sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, buf);
  return buf;
}

function avail(sys: ReturnType<typeof mockWithDevices>['sys'], container: number): number {
  const buf = getInfo(sys, container, 256);
  const cap = walkCaps(buf, 24).find((c) => c.id === 3)!;
  return decodeDmaAvail(buf, cap.offset);
}

describe('mock TYPE1 MAP_DMA', () => {
  it('validates in the kernel\'s order with the kernel\'s errnos', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(4 * 4096);
    const v = mem.address;
    const map = (arg: Uint8Array | number) => sys.ioctl(container, MAP, arg);
    assertErrno(() => map(0x1000), 'EFAULT');
    assertErrno(() => map(new Uint8Array(31)), 'EFAULT');
    assertErrno(() => map(mapArg(v, 0n, PAGE, 3, 31)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0n, PAGE, 3 | 8)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0n, PAGE, 0)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0n, PAGE, 1 | VADDR)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0n, 0n)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0x800n, PAGE)), 'EINVAL');
    assertErrno(() => map(mapArg(v + 1n, 0n, PAGE)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0n, 0x800n)), 'EINVAL');
    assertErrno(() => map(mapArg(v, (1n << 64n) - PAGE, 2n * PAGE)), 'EINVAL');
    assertErrno(() => map(mapArg((1n << 64n) - PAGE, 0n, 2n * PAGE)), 'EINVAL');
    assert.equal(map(mapArg(v, 0x10000n, 2n * PAGE)), 0);
    assertErrno(() => map(mapArg(v, 0x10000n, 2n * PAGE)), 'EEXIST');
    assertErrno(() => map(mapArg(v, 0x11000n, 2n * PAGE)), 'EEXIST');
    assertErrno(() => map(mapArg(v, 0xf000n, 2n * PAGE)), 'EEXIST');
    // Outside the IOVA ranges: past the 39-bit aperture, in or across the MSI window.
    assertErrno(() => map(mapArg(v, 1n << 39n, PAGE)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0xfee00000n, PAGE)), 'EINVAL');
    assertErrno(() => map(mapArg(v, 0xfedff000n, 2n * PAGE)), 'EINVAL');
    assert.equal(map(mapArg(v, 0xfedff000n, PAGE)), 0);
    assert.equal(map(mapArg(v, 0xfef00000n, PAGE)), 0);
    assert.equal(map(mapArg(v, (1n << 39n) - PAGE, PAGE)), 0);
    // The same memory at another IOVA is fine; memory the process does not have is EFAULT.
    assertErrno(() => map(mapArg(v + 4n * PAGE, 0x40000n, PAGE)), 'EFAULT');
    assertErrno(() => map(mapArg(v + 3n * PAGE, 0x40000n, 2n * PAGE)), 'EFAULT');
    assert.equal(avail(sys, container), 65535 - 4, 'failed maps leave nothing behind');
    assert.equal(sys.kernel.locked.lockedPages, 5);
  });

  it('needs live, accessible memory: munmapped EFAULT, WRITE on read-only EFAULT', () => {
    const { sys } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const gone = sys.allocate(4096);
    const addr = gone.address;
    sys.munmap(gone);
    assertErrno(() => sys.ioctl(container, MAP, mapArg(addr, 0n, PAGE)), 'EFAULT');
    const dev = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
    const bar = sys.mmap(dev, 0n, 4096, PROT_READ);
    assertErrno(() => sys.ioctl(container, MAP, mapArg(bar.address, 0n, PAGE, 3)), 'EFAULT');
    assertErrno(() => sys.ioctl(container, MAP, mapArg(bar.address, 0n, PAGE, 2)), 'EFAULT');
    assert.equal(sys.ioctl(container, MAP, mapArg(bar.address, 0n, PAGE, 1)), 0, 'a device read of a read-only BAR is fine');
    assert.equal(sys.kernel.locked.lockedPages, 0, 'device memory is not locked memory');
    sys.ioctl(container, UNMAP, unmapArg(0n, 0n, UNMAP_ALL));
    sys.munmap(bar);
    sys.close(dev);
  });

  it('ENOSPC once dma_entry_limit mappings exist, before the IOVA range check', () => {
    const { sys } = mockWithDevices({ dmaEntryLimit: 3 });
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(4096);
    for (let i = 0n; i < 3n; i++) sys.ioctl(container, MAP, mapArg(mem.address, i * PAGE, PAGE));
    assert.equal(avail(sys, container), 0);
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0x100000n, PAGE)), 'ENOSPC');
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 1n << 40n, PAGE)), 'ENOSPC');
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0n, PAGE)), 'EEXIST');
    sys.ioctl(container, UNMAP, unmapArg(PAGE, PAGE));
    assert.equal(avail(sys, container), 1);
    assert.equal(sys.ioctl(container, MAP, mapArg(mem.address, 0x100000n, PAGE)), 0);
  });

  it('locked memory: ENOMEM past the limit, two IOVAs count twice, CAP_IPC_LOCK only counts', () => {
    const { sys } = mockWithDevices({ memlockLimit: 3 * 4096, capIpcLock: false });
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(2 * 4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0n, 2n * PAGE));
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE)), 'ENOMEM');
    assert.equal(sys.kernel.locked.lockedPages, 2);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE));
    assert.equal(sys.kernel.locked.lockedPages, 3);
    sys.ioctl(container, UNMAP, unmapArg(0n, 0n, UNMAP_ALL));
    assert.equal(sys.kernel.locked.lockedPages, 0);
    // The limit is hit before the bad page (pinning goes in order): ENOMEM, not EFAULT.
    const small = mockWithDevices({ memlockLimit: 4096, capIpcLock: false });
    const s = openContainer(small.sys, 0);
    const m2 = small.sys.allocate(2 * 4096);
    assertErrno(() => small.sys.ioctl(s.container, MAP, mapArg(m2.address, 0n, 3n * PAGE)), 'ENOMEM');
    const roomy = mockWithDevices({ memlockLimit: 16 * 4096, capIpcLock: false });
    const r = openContainer(roomy.sys, 0);
    const m3 = roomy.sys.allocate(2 * 4096);
    assertErrno(() => roomy.sys.ioctl(r.container, MAP, mapArg(m3.address, 0n, 3n * PAGE)), 'EFAULT');
    const capable = mockWithDevices({ memlockLimit: 4096, capIpcLock: true });
    const k = openContainer(capable.sys, 0);
    const m4 = capable.sys.allocate(4 * 4096);
    assert.equal(capable.sys.ioctl(k.container, MAP, mapArg(m4.address, 0n, 4n * PAGE)), 0);
    assert.equal(capable.sys.kernel.locked.lockedPages, 4);
  });

  it('locked memory is per process: shared by all containers', () => {
    const { sys } = mockWithDevices({ memlockLimit: 2 * 4096, capIpcLock: false });
    const one = openContainer(sys, 0);
    const two = openContainer(sys, 1);
    const mem = sys.allocate(4096);
    sys.ioctl(one.container, MAP, mapArg(mem.address, 0n, PAGE));
    sys.ioctl(two.container, MAP, mapArg(mem.address, 0n, PAGE));
    assertErrno(() => sys.ioctl(two.container, MAP, mapArg(mem.address, PAGE, PAGE)), 'ENOMEM');
  });

  it('keeps 65535 mappings fast in any order, then ENOSPC', () => {
    const { sys } = mockWithDevices({ capIpcLock: true });
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(4096);
    const arg = mapArg(mem.address, 0n, PAGE);
    const view = new DataView(arg.buffer);
    const started = performance.now();
    // Descending IOVAs: every insert lands in front of all the others.
    for (let i = 65535n; i >= 1n; i--) {
      view.setBigUint64(16, i * PAGE, true);
      sys.ioctl(container, MAP, arg);
    }
    view.setBigUint64(16, 0n, true);
    assertErrno(() => sys.ioctl(container, MAP, arg), 'ENOSPC');
    const unmap = unmapArg(0n, 0n, UNMAP_ALL);
    sys.ioctl(container, UNMAP, unmap);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(unmappedSize(unmap), 65535n * PAGE);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    assert.ok(seconds < 10, `65535 maps and an unmap took ${seconds.toFixed(2)} s`);
  });
});

describe('mock TYPE1 UNMAP_DMA', () => {
  it('checks argsz, flags and their combinations', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    assertErrno(() => sys.ioctl(container, UNMAP, new Uint8Array(23)), 'EFAULT');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, PAGE, 0, 23)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, PAGE, 8)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, 0n, 1 | UNMAP_ALL)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, PAGE, 1 | UNMAP_VADDR)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, PAGE, UNMAP_ALL)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(PAGE, 0n, UNMAP_ALL)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0x800n, PAGE)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, 0n)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0n, 0x800n)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg((1n << 63n) + PAGE, 1n << 63n)), 'EINVAL');
    assert.equal(sys.ioctl(container, UNMAP, unmapArg(1n << 63n, 1n << 63n)), 0, 'ends exactly at 2^64: no wrap');
  });

  it('v2: no splitting, several whole mappings at once, none gives size 0, size written only on success', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(3 * 4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address + 2n * PAGE, 0x12000n, PAGE));
    for (const [iova, size] of [[0x11000n, PAGE], [0x10000n, PAGE], [0xf000n, 2n * PAGE], [0x11000n, 2n * PAGE]] as const) {
      const arg = unmapArg(iova, size);
      assertErrno(() => sys.ioctl(container, UNMAP, arg), 'EINVAL');
      assert.equal(unmappedSize(arg), size, 'size is left alone on failure');
    }
    const none = unmapArg(0x20000n, 0x10000n);
    assert.equal(sys.ioctl(container, UNMAP, none), 0);
    assert.equal(unmappedSize(none), 0n);
    const both = unmapArg(0xf000n, 0x10000n);
    assert.equal(sys.ioctl(container, UNMAP, both), 0);
    assert.equal(unmappedSize(both), 3n * PAGE);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });

  it('UNMAP_ALL removes everything and reports the total', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0n, PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address, 0x7f_ffff_f000n, PAGE));
    const all = unmapArg(0n, 0n, UNMAP_ALL);
    sys.ioctl(container, UNMAP, all);
    assert.equal(unmappedSize(all), 2n * PAGE);
    assert.equal(avail(sys, container), 65535);
  });

  it('v1: a range starting inside a mapping unmaps nothing; covering its first byte removes it whole', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0, TYPE1);
    const mem = sys.allocate(2 * 4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE));
    const inside = unmapArg(0x11000n, PAGE);
    assert.equal(sys.ioctl(container, UNMAP, inside), 0);
    assert.equal(unmappedSize(inside), 0n);
    const head = unmapArg(0x10000n, PAGE);
    assert.equal(sys.ioctl(container, UNMAP, head), 0);
    assert.equal(unmappedSize(head), 2n * PAGE);
    assert.equal(sys.kernel.locked.lockedPages, 0);
  });

  it('UPDATE_VADDR: invalidate, then map the new vaddr for exactly that range', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    assert.equal(sys.ioctl(container, ioctls.VFIO_CHECK_EXTENSION, extensions.VFIO_UPDATE_VADDR), 1);
    const mem = sys.allocate(2 * 4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE));
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE, VADDR)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0x80000n, PAGE, VADDR)), 'ENOENT');
    const inval = unmapArg(0x10000n, 2n * PAGE, UNMAP_VADDR);
    sys.ioctl(container, UNMAP, inval);
    assert.equal(unmappedSize(inval), 2n * PAGE);
    assertErrno(() => sys.ioctl(container, UNMAP, unmapArg(0x10000n, 2n * PAGE, UNMAP_VADDR)), 'EINVAL');
    assertErrno(() => sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, PAGE, VADDR)), 'EINVAL');
    assert.equal(sys.ioctl(container, MAP, mapArg(mem.address, 0x10000n, 2n * PAGE, VADDR)), 0);
    assert.equal(sys.kernel.locked.lockedPages, 2, 'the pages stayed pinned throughout');
  });
});

describe('mock TYPE1 GET_INFO', () => {
  it('6.1: packed caps at 24/56/68, 116 bytes', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    assertErrno(() => sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, new Uint8Array(15)), 'EFAULT');
    assertErrno(() => getInfo(sys, container, 15, 24), 'EINVAL');
    const buf = getInfo(sys, container, 116);
    assert.deepEqual(vfio_iommu_type1_info.decode(buf), { argsz: 116, flags: 3, iova_pgsizes: 0x40201000n, cap_offset: 24 });
    const caps = walkCaps(buf, 24);
    assert.deepEqual(caps.map((c) => [c.id, c.offset]), [[2, 24], [3, 56], [1, 68]]);
    assert.deepEqual(decodeMigration(buf, 24), { flags: 0, pgsizeBitmap: 4096n, maxDirtyBitmapSize: 256n * 1024n * 1024n });
    assert.equal(decodeDmaAvail(buf, 56), 65535);
    assert.deepEqual(decodeIovaRanges(buf, 68), [{ start: 0n, end: 0xfedfffffn }, { start: 0xfef00000n, end: 0x7fffffffffn }]);
    assertErrno(() => getInfo(sys, container, 116, 100), 'EFAULT');
  });

  it('6.12: each cap padded to 8, at 24/56/72, 120 bytes', () => {
    const { sys } = mockWithDevices({ kernel: '6.12' });
    const { container } = openContainer(sys, 0);
    const buf = getInfo(sys, container, 120);
    assert.equal(vfio_iommu_type1_info.decode(buf).argsz, 120);
    assert.deepEqual(walkCaps(buf, 24).map((c) => [c.id, c.offset]), [[2, 24], [3, 56], [1, 72]]);
    assert.equal(vfio_iommu_type1_info.decode(getInfo(sys, container, 24)).argsz, 120);
  });

  it('a too small argsz: CAPS flag, cap_offset 0, the needed argsz, no bytes past argsz', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    const at24 = getInfo(sys, container, 24, 24, 0xee);
    assert.deepEqual(vfio_iommu_type1_info.decode(at24), { argsz: 116, flags: 3, iova_pgsizes: 0x40201000n, cap_offset: 0 });
    const at16 = getInfo(sys, container, 16, 32, 0xee);
    assert.equal(vfio_iommu_type1_info.decode(at16).argsz, 116);
    assert.deepEqual([...at16.subarray(16, 32)], new Array(16).fill(0xee), 'cap_offset and beyond untouched');
    const at20 = getInfo(sys, container, 20, 24, 0xee);
    assert.deepEqual([...at20.subarray(16, 24)], [0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee]);
    const roomy = getInfo(sys, container, 200, 200, 0xee);
    assert.deepEqual([...roomy.subarray(116, 200)], new Array(84).fill(0xee));
  });

  it('DMA_AVAIL counts live mappings', () => {
    const { sys } = mockWithDevices();
    const { container } = openContainer(sys, 0);
    const mem = sys.allocate(4096);
    sys.ioctl(container, MAP, mapArg(mem.address, 0n, PAGE));
    sys.ioctl(container, MAP, mapArg(mem.address, PAGE, PAGE));
    assert.equal(avail(sys, container), 65533);
  });
});
