// Conformance: the TYPE1v2 IOMMU behind a container (drivers/vfio/vfio_iommu_type1.c):
// GET_INFO and its capability chain, MAP_DMA, UNMAP_DMA, DIRTY_PAGES. Memory comes only
// from sys.allocate() (and, for peer to peer, a BAR mmap). IOVAs stay below 256 MiB
// except where the aperture itself is the point; no device ever DMAs here.
import {
  capIds, extensions as X, decodeDmaAvail, decodeIovaRanges, decodeMigration, findCap, flags as F, walkCaps, vfio_iommu_type1_info,
  vfio_bitmap, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dma_unmap,
} from '../../src/uapi/index.js';
import type { SysLayer } from '../../src/sys/types.js';
import { PROT_READ } from '../../src/sys/types.js';
import {
  dirtyBitmap, dirtyPages, fullIommuInfo, iommuInfo, mapDma, READ_WRITE, regionOffset, regionSize, SENTINEL, unmapDma,
} from './abi.js';
import { byFlavour, conformanceCase, fails, ok } from './outcome.js';
import { setupFile, withSession, type Session } from './target.js';

const t = setupFile();

const PAGE = BigInt(t.sys.pageSize);
const IOVA = 0x1000000n; // 16 MiB
const PGSIZES = 0x40201000n; // 4K | 2M | 1G on the emulated VT-d
const ENTRY_LIMIT = 65535; // dma_entry_limit's default

/** The capability chain's total size and the IOVA range capability's offset. */
const layout = byFlavour(t, { '6.1': { total: 116, iovaRangeAt: 68 }, '6.12': { total: 120, iovaRangeAt: 72 } });
const whyLayout = 'IOMMU GET_INFO capabilities are packed on 6.1 (IOVA_RANGE at 68, 116 bytes) and 8-byte aligned on 6.12 (at 72, 120 bytes)';

/** A container with TYPE1v2 and `pages` pages of memory to map. */
function setup(s: Session, pages = 4): { container: number; vaddr: bigint } {
  const { container } = s.attach();
  const mem = s.allocate(Number(PAGE) * pages);
  return { container, vaddr: mem.address };
}

function dmaAvail(sys: SysLayer, container: number): number {
  const { info, buf } = fullIommuInfo(sys, container);
  const cap = findCap(buf, info.cap_offset, capIds.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
  if (!cap) throw new Error('no DMA_AVAIL capability');
  return decodeDmaAvail(buf, cap.offset);
}

const mapCase = (name: string, expected: unknown, observe: (s: Session) => unknown) =>
  conformanceCase(t, `type1: ${name}`, expected, () => withSession(t, observe));

// --- GET_INFO -----------------------------------------------------------------------

mapCase('GET_INFO with argsz 15 is EINVAL', fails('EINVAL'), (s) => iommuInfo(s.sys, s.attach().container, 15).outcome);

// minsz is 16 (through iova_pgsizes): argsz 16 gets flags, pgsizes and the needed argsz only.
conformanceCase(t, 'type1: GET_INFO with argsz 16 asks for the full size and leaves cap_offset alone',
  { outcome: ok(0), argsz: layout.total, flags: F.VFIO_IOMMU_INFO_PGSIZES | F.VFIO_IOMMU_INFO_CAPS, iova_pgsizes: PGSIZES, cap_offset: SENTINEL },
  () => withSession(t, (s) => {
    const { outcome, info } = iommuInfo(s.sys, s.attach().container, 16, 24);
    return { outcome, ...info };
  }), { versionDependent: whyLayout });

// With room for cap_offset but not for the chain: CAPS set, cap_offset 0, argsz = needed.
conformanceCase(t, 'type1: GET_INFO with argsz 24 sets CAPS, cap_offset 0 and the needed argsz',
  { outcome: ok(0), argsz: layout.total, flags: F.VFIO_IOMMU_INFO_PGSIZES | F.VFIO_IOMMU_INFO_CAPS, iova_pgsizes: PGSIZES, cap_offset: 0 },
  () => withSession(t, (s) => {
    const { outcome, info } = iommuInfo(s.sys, s.attach().container, 24);
    return { outcome, ...info };
  }), { versionDependent: whyLayout });

conformanceCase(t, 'type1: GET_INFO chain is MIGRATION -> DMA_AVAIL -> IOVA_RANGE at 24, 56, 68 (6.1) or 72 (6.12)',
  {
    outcome: ok(0), cap_offset: vfio_iommu_type1_info.size,
    chain: [
      { id: capIds.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version: 1, offset: 24 },
      { id: capIds.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, offset: 56 },
      { id: capIds.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, offset: layout.iovaRangeAt },
    ],
  },
  () => withSession(t, (s) => {
    const { outcome, info, buf } = iommuInfo(s.sys, s.attach().container, layout.total);
    return { outcome, cap_offset: info.cap_offset, chain: walkCaps(buf, info.cap_offset) };
  }), { versionDependent: whyLayout });

mapCase('GET_INFO MIGRATION capability: 4 KiB pages, 256 MiB max dirty bitmap',
  { flags: 0, pgsizeBitmap: 0x1000n, maxDirtyBitmapSize: 0x10000000n }, (s) => {
    const { info, buf } = fullIommuInfo(s.sys, s.attach().container);
    return decodeMigration(buf, findCap(buf, info.cap_offset, capIds.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION)!.offset);
  });

mapCase('GET_INFO DMA_AVAIL of a fresh container is 65535', ENTRY_LIMIT, (s) => dmaAvail(s.sys, s.attach().container));

mapCase('GET_INFO IOVA ranges are the 39-bit aperture without the MSI window',
  [{ start: 0n, end: 0xfedfffffn }, { start: 0xfef00000n, end: 0x7fffffffffn }], (s) => {
    const { info, buf } = fullIommuInfo(s.sys, s.attach().container);
    return decodeIovaRanges(buf, findCap(buf, info.cap_offset, capIds.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)!.offset);
  });

mapCase('GET_INFO DMA_AVAIL goes down by one per mapping and back after unmap',
  { afterMap: ENTRY_LIMIT - 2, afterUnmap: ENTRY_LIMIT }, (s) => {
    const { container, vaddr } = setup(s);
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE });
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr: vaddr + PAGE, iova: IOVA + PAGE, size: PAGE });
    const afterMap = dmaAvail(s.sys, container);
    unmapDma(s.sys, container, { iova: IOVA, size: 2n * PAGE });
    return { afterMap, afterUnmap: dmaAvail(s.sys, container) };
  });

// --- MAP_DMA: validation (vfio_iommu_type1_map_dma, vfio_dma_do_map) ------------------

mapCase('MAP_DMA with argsz 31 is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE, argsz: 31 });
});

mapCase('MAP_DMA with an unknown flag is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE | (1 << 3), vaddr, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA with neither READ nor WRITE is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: 0, vaddr, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA of size 0 is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 0n });
});

mapCase('MAP_DMA with an unaligned iova is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA + 0x800n, size: PAGE });
});

mapCase('MAP_DMA with an unaligned vaddr is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr: vaddr + 0x800n, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA with an unaligned size is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE + 0x800n });
});

mapCase('MAP_DMA whose iova + size wraps is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: 0xfffffffffffff000n, size: 2n * PAGE });
});

mapCase('MAP_DMA whose vaddr + size wraps is EINVAL', fails('EINVAL'), (s) => {
  const { container } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr: 0xfffffffffffff000n, iova: IOVA, size: 2n * PAGE });
});

mapCase('MAP_DMA at 2^39 (outside the aperture) is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: 1n << 39n, size: PAGE });
});

mapCase('MAP_DMA in the MSI window (0xfee00000) is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: 0xfee00000n, size: PAGE });
});

mapCase('MAP_DMA crossing into the MSI window is EINVAL', fails('EINVAL'), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: 0xfee00000n - PAGE, size: 2n * PAGE });
});

mapCase('MAP_DMA of memory that is not mapped (vaddr 0x1000) is EFAULT', fails('EFAULT'), (s) => {
  const { container } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr: 0x1000n, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA that failed leaves nothing behind', { avail: ENTRY_LIMIT, mapAgain: ok(0) }, (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr: 0x1000n, iova: IOVA, size: PAGE });
  const avail = dmaAvail(s.sys, container);
  return { avail, mapAgain: mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE }) };
});

// --- MAP_DMA: success and overlap ---------------------------------------------------

mapCase('MAP_DMA READ|WRITE returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 4n * PAGE });
});

mapCase('MAP_DMA READ only returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: F.VFIO_DMA_MAP_FLAG_READ, vaddr, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA WRITE only returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: F.VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA of the same range twice is EEXIST', fails('EEXIST'), (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
});

mapCase('MAP_DMA starting inside an existing mapping is EEXIST', fails('EEXIST'), (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr: vaddr + 2n * PAGE, iova: IOVA + PAGE, size: 2n * PAGE });
});

mapCase('MAP_DMA ending inside an existing mapping is EEXIST', fails('EEXIST'), (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA + PAGE, size: 2n * PAGE });
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
});

mapCase('MAP_DMA enclosing an existing mapping is EEXIST', fails('EEXIST'), (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA + PAGE, size: PAGE });
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 4n * PAGE });
});

mapCase('MAP_DMA right after an existing mapping returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE });
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr: vaddr + PAGE, iova: IOVA + PAGE, size: PAGE });
});

mapCase('MAP_DMA of one vaddr at two IOVAs is allowed', [ok(0), ok(0)], (s) => {
  const { container, vaddr } = setup(s);
  return [
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE }),
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA + 0x100000n, size: PAGE }),
  ];
});

mapCase('MAP_DMA of the last page below 2^39 returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: (1n << 39n) - PAGE, size: PAGE });
});

mapCase('MAP_DMA of the first page after the MSI window returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: 0xfef00000n, size: PAGE });
});

mapCase('MAP_DMA of the last page before the MSI window returns 0', ok(0), (s) => {
  const { container, vaddr } = setup(s);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: 0xfee00000n - PAGE, size: PAGE });
});

// A device's own BAR mmap (VM_PFNMAP) may be mapped: peer to peer.
mapCase('MAP_DMA of the device BAR0 mmap (peer to peer) returns 0 and unmaps',
  { map: ok(0), unmap: { outcome: ok(0), size: 0x100000n } }, (s) => {
    const { container, group } = s.attach();
    const device = s.getDeviceFd(group);
    const size = regionSize(s.sys, device, 0);
    const bar = s.mmap(device, regionOffset(s.sys, device, 0), Number(size));
    const map = mapDma(s.sys, container, { flags: READ_WRITE, vaddr: bar.address, iova: IOVA, size });
    return { map, unmap: unmapDma(s.sys, container, { iova: IOVA, size }) };
  });

// A read-only mapping cannot back a device-writable IOVA: the fault for write access
// fails (follow_fault_pfn / fixup_user_fault), EFAULT; READ alone is fine.
mapCase('MAP_DMA WRITE of a read-only BAR0 mmap is EFAULT', fails('EFAULT'), (s) => {
  const { container, group } = s.attach();
  const device = s.getDeviceFd(group);
  const bar = s.mmap(device, regionOffset(s.sys, device, 0), Number(PAGE), PROT_READ);
  return mapDma(s.sys, container, { flags: READ_WRITE, vaddr: bar.address, iova: IOVA, size: PAGE });
});

mapCase('MAP_DMA READ of a read-only BAR0 mmap returns 0 and unmaps',
  { map: ok(0), unmap: { outcome: ok(0), size: PAGE } }, (s) => {
    const { container, group } = s.attach();
    const device = s.getDeviceFd(group);
    const bar = s.mmap(device, regionOffset(s.sys, device, 0), Number(PAGE), PROT_READ);
    const map = mapDma(s.sys, container, { flags: F.VFIO_DMA_MAP_FLAG_READ, vaddr: bar.address, iova: IOVA, size: PAGE });
    return { map, unmap: unmapDma(s.sys, container, { iova: IOVA, size: PAGE }) };
  });

// --- UNMAP_DMA (vfio_iommu_type1_unmap_dma, vfio_dma_do_unmap) ----------------------

mapCase('UNMAP_DMA with argsz 23 is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { iova: IOVA, size: PAGE, argsz: 23 }).outcome);

mapCase('UNMAP_DMA with an unknown flag is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { flags: 1 << 3, iova: IOVA, size: PAGE }).outcome);

mapCase('UNMAP_DMA of size 0 is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { iova: IOVA, size: 0n }).outcome);

mapCase('UNMAP_DMA with an unaligned iova is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { iova: IOVA + 0x800n, size: PAGE }).outcome);

mapCase('UNMAP_DMA with an unaligned size is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { iova: IOVA, size: 0x800n }).outcome);

mapCase('UNMAP_DMA whose iova + size wraps is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { iova: 0xfffffffffffff000n, size: 2n * PAGE }).outcome);

mapCase('UNMAP_DMA of one whole mapping writes its size back', { outcome: ok(0), size: 2n * PAGE }, (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  return unmapDma(s.sys, container, { iova: IOVA, size: 2n * PAGE });
});

// TYPE1v2 never splits a mapping; on failure nothing is written back or removed.
mapCase('UNMAP_DMA of the first page of a 2-page mapping is EINVAL and removes nothing',
  { outcome: fails('EINVAL'), size: PAGE, mapAgain: fails('EEXIST') }, (s) => {
    const { container, vaddr } = setup(s);
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
    const { outcome, size } = unmapDma(s.sys, container, { iova: IOVA, size: PAGE });
    return { outcome, size, mapAgain: mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE }) };
  });

mapCase('UNMAP_DMA starting inside a mapping is EINVAL', { outcome: fails('EINVAL'), size: 2n * PAGE }, (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  return unmapDma(s.sys, container, { iova: IOVA + PAGE, size: 2n * PAGE });
});

mapCase('UNMAP_DMA removes several whole mappings in one call', { outcome: ok(0), size: 2n * PAGE, avail: ENTRY_LIMIT }, (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE });
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr: vaddr + PAGE, iova: IOVA + 2n * PAGE, size: PAGE });
  const r = unmapDma(s.sys, container, { iova: IOVA, size: 4n * PAGE });
  return { ...r, avail: dmaAvail(s.sys, container) };
});

mapCase('UNMAP_DMA of a range around a mapping removes it', { outcome: ok(0), size: PAGE }, (s) => {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA + PAGE, size: PAGE });
  return unmapDma(s.sys, container, { iova: IOVA, size: 4n * PAGE });
});

mapCase('UNMAP_DMA of a range with nothing mapped returns 0 with size 0', { outcome: ok(0), size: 0n }, (s) =>
  unmapDma(s.sys, setup(s).container, { iova: IOVA, size: 4n * PAGE }));

mapCase('UNMAP_DMA ALL removes everything and writes the total size back',
  { outcome: ok(0), size: 3n * PAGE, avail: ENTRY_LIMIT }, (s) => {
    const { container, vaddr } = setup(s);
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: PAGE });
    mapDma(s.sys, container, { flags: READ_WRITE, vaddr: vaddr + PAGE, iova: 0x8000000n, size: 2n * PAGE });
    const r = unmapDma(s.sys, container, { flags: F.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n });
    return { ...r, avail: dmaAvail(s.sys, container) };
  });

mapCase('UNMAP_DMA ALL with nothing mapped returns 0 with size 0', { outcome: ok(0), size: 0n }, (s) =>
  unmapDma(s.sys, setup(s).container, { flags: F.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }));

mapCase('UNMAP_DMA ALL with a size is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { flags: F.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: PAGE }).outcome);

mapCase('UNMAP_DMA ALL with an iova is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, { flags: F.VFIO_DMA_UNMAP_FLAG_ALL, iova: IOVA, size: 0n }).outcome);

/** UNMAP_DMA with GET_DIRTY_BITMAP carries a vfio_bitmap after the header. */
const bitmapTail = vfio_iommu_type1_dma_unmap.size + vfio_bitmap.size;

mapCase('UNMAP_DMA GET_DIRTY_BITMAP with ALL is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, {
    flags: F.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | F.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n, argsz: bitmapTail, bufSize: bitmapTail,
  }).outcome);

mapCase('UNMAP_DMA GET_DIRTY_BITMAP with VADDR is EINVAL', fails('EINVAL'), (s) =>
  unmapDma(s.sys, setup(s).container, {
    flags: F.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | F.VFIO_DMA_UNMAP_FLAG_VADDR, iova: IOVA, size: PAGE, argsz: bitmapTail, bufSize: bitmapTail,
  }).outcome);

// --- DIRTY_PAGES (vfio_iommu_type1_dirty_pages) -------------------------------------

const START = F.VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
const STOP = F.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;

mapCase('DIRTY_PAGES START is idempotent', [ok(0), ok(0)], (s) => {
  const { container } = setup(s);
  return [dirtyPages(s.sys, container, START), dirtyPages(s.sys, container, START)];
});

mapCase('DIRTY_PAGES STOP is idempotent, also without START', [ok(0), ok(0), ok(0)], (s) => {
  const { container } = setup(s);
  const first = dirtyPages(s.sys, container, STOP);
  dirtyPages(s.sys, container, START);
  return [first, dirtyPages(s.sys, container, STOP), dirtyPages(s.sys, container, STOP)];
});

mapCase('DIRTY_PAGES with START|STOP is EINVAL', fails('EINVAL'), (s) => dirtyPages(s.sys, setup(s).container, START | STOP));

mapCase('DIRTY_PAGES with argsz 7 is EINVAL', fails('EINVAL'), (s) => dirtyPages(s.sys, setup(s).container, START, 7));

mapCase('DIRTY_PAGES with an unknown flag is EINVAL', fails('EINVAL'), (s) => dirtyPages(s.sys, setup(s).container, 1 << 3));

/** Maps two pages at IOVA and gets a page for the bitmap. */
function bitmapSetup(s: Session) {
  const { container, vaddr } = setup(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  const bitmap = s.allocate(Number(PAGE));
  return { container, bitmap };
}

mapCase('DIRTY_PAGES GET_BITMAP while not tracking is EINVAL', fails('EINVAL'), (s) => {
  const { container, bitmap } = bitmapSetup(s);
  return dirtyBitmap(s.sys, container, { iova: IOVA, size: 2n * PAGE, pgsize: PAGE, bitmapSize: 8n, bitmapAddress: bitmap.address });
});

mapCase('DIRTY_PAGES GET_BITMAP without the range struct is EINVAL', fails('EINVAL'), (s) => {
  const { container, bitmap } = bitmapSetup(s);
  dirtyPages(s.sys, container, START);
  return dirtyBitmap(s.sys, container, {
    iova: IOVA, size: 2n * PAGE, pgsize: PAGE, bitmapSize: 8n, bitmapAddress: bitmap.address, argsz: vfio_iommu_type1_dirty_bitmap.size,
  });
});

mapCase('DIRTY_PAGES GET_BITMAP with a page size other than 4 KiB is EINVAL', fails('EINVAL'), (s) => {
  const { container, bitmap } = bitmapSetup(s);
  dirtyPages(s.sys, container, START);
  return dirtyBitmap(s.sys, container, { iova: IOVA, size: 0x200000n, pgsize: 0x200000n, bitmapSize: 8n, bitmapAddress: bitmap.address });
});

mapCase('DIRTY_PAGES GET_BITMAP splitting a mapping is EINVAL', fails('EINVAL'), (s) => {
  const { container, bitmap } = bitmapSetup(s);
  dirtyPages(s.sys, container, START);
  return dirtyBitmap(s.sys, container, { iova: IOVA, size: PAGE, pgsize: PAGE, bitmapSize: 8n, bitmapAddress: bitmap.address });
});

// A vfio-pci group never pins pages through the vendor API, so every mapped page is dirty.
mapCase('DIRTY_PAGES GET_BITMAP reports every mapped page of an unpinned group dirty', { outcome: ok(0), bits: 0x3n }, (s) => {
  const { container, bitmap } = bitmapSetup(s);
  dirtyPages(s.sys, container, START);
  const outcome = dirtyBitmap(s.sys, container, {
    iova: IOVA, size: 2n * PAGE, pgsize: PAGE, bitmapSize: 8n, bitmapAddress: bitmap.address,
  });
  return { outcome, bits: new DataView(bitmap.buffer).getBigUint64(0, true) };
});

// --- TYPE1 (v1) differences ---------------------------------------------------------

/** A container with the v1 TYPE1 IOMMU and memory to map. */
function setupV1(s: Session): { container: number; vaddr: bigint } {
  const container = s.openContainer();
  s.setContainer(s.openGroup(), container);
  s.setIommu(container, X.VFIO_TYPE1_IOMMU);
  return { container, vaddr: s.allocate(Number(PAGE) * 4).address };
}

// vfio_dma_do_unmap keeps v1's behaviour: a request starting inside a mapping unmaps
// nothing (and succeeds); one covering a mapping's first page removes it whole.
mapCase('v1 UNMAP_DMA starting inside a mapping returns 0 with size 0', { outcome: ok(0), size: 0n }, (s) => {
  const { container, vaddr } = setupV1(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  return unmapDma(s.sys, container, { iova: IOVA + PAGE, size: PAGE });
});

mapCase('v1 UNMAP_DMA of the first page removes the whole mapping', { outcome: ok(0), size: 2n * PAGE }, (s) => {
  const { container, vaddr } = setupV1(s);
  mapDma(s.sys, container, { flags: READ_WRITE, vaddr, iova: IOVA, size: 2n * PAGE });
  return unmapDma(s.sys, container, { iova: IOVA, size: PAGE });
});

// Dirty page tracking is a v2 feature (vfio_iommu_type1_dirty_pages).
mapCase('v1 DIRTY_PAGES is EACCES', fails('EACCES'), (s) => dirtyPages(s.sys, setupV1(s).container, START));
