// VFIO capability chains: a list of {id, version, next} headers inside an info buffer,
// where `next` is an offset from the start of that buffer and 0 ends the chain.
// Readers follow `next` and never assume a layout (6.1 packs IOMMU caps, 6.12 pads
// each to 8 bytes); writers (the mock kernel, the vGPU core) build chains here.
import { capIds } from './constants.js';
import {
  vfio_info_cap_header, vfio_iommu_type1_info_cap_iova_range, vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail, vfio_iova_range, vfio_region_info_cap_sparse_mmap,
  vfio_region_info_cap_type, vfio_region_sparse_mmap_area,
} from './structs.js';

export interface CapRef {
  id: number;
  version: number;
  /** Offset of the capability's header from the start of the info buffer. */
  offset: number;
}

/** Walks a chain starting at `first`; stops at 0, and refuses loops and overruns. */
export function walkCaps(buf: Uint8Array, first: number): CapRef[] {
  const out: CapRef[] = [];
  const seen = new Set<number>();
  for (let at = first; at !== 0;) {
    if (seen.has(at)) throw new Error(`capability chain loops at offset ${at}`);
    if (at + vfio_info_cap_header.size > buf.byteLength) throw new Error(`capability at ${at} lies past the ${buf.byteLength}-byte buffer`);
    seen.add(at);
    const h = vfio_info_cap_header.decode(buf, at);
    out.push({ id: h.id, version: h.version, offset: at });
    at = h.next;
  }
  return out;
}

export function findCap(buf: Uint8Array, first: number, id: number): CapRef | undefined {
  return walkCaps(buf, first).find((c) => c.id === id);
}

export interface Range { start: bigint; end: bigint }
export interface Area { offset: bigint; size: bigint }

export function decodeSparseMmap(buf: Uint8Array, at: number): Area[] {
  const head = vfio_region_info_cap_sparse_mmap.decode(buf, at);
  const areas: Area[] = [];
  for (let i = 0; i < head.nr_areas; i++) {
    areas.push(vfio_region_sparse_mmap_area.decode(buf, at + vfio_region_info_cap_sparse_mmap.size + i * vfio_region_sparse_mmap_area.size));
  }
  return areas;
}

export function decodeRegionType(buf: Uint8Array, at: number): { type: number; subtype: number } {
  const c = vfio_region_info_cap_type.decode(buf, at);
  return { type: c.type, subtype: c.subtype };
}

export function decodeIovaRanges(buf: Uint8Array, at: number): Range[] {
  const head = vfio_iommu_type1_info_cap_iova_range.decode(buf, at);
  const ranges: Range[] = [];
  for (let i = 0; i < head.nr_iovas; i++) {
    ranges.push(vfio_iova_range.decode(buf, at + vfio_iommu_type1_info_cap_iova_range.size + i * vfio_iova_range.size));
  }
  return ranges;
}

export function decodeMigration(buf: Uint8Array, at: number): { flags: number; pgsizeBitmap: bigint; maxDirtyBitmapSize: bigint } {
  const c = vfio_iommu_type1_info_cap_migration.decode(buf, at);
  return { flags: c.flags, pgsizeBitmap: c.pgsize_bitmap, maxDirtyBitmapSize: c.max_dirty_bitmap_size };
}

export function decodeDmaAvail(buf: Uint8Array, at: number): number {
  return vfio_iommu_type1_info_dma_avail.decode(buf, at).avail;
}

/** One capability's bytes, header included (its `next` is filled in by chainCaps). */
export type Cap = Uint8Array;

export function sparseMmapCap(areas: readonly Area[]): Cap {
  const head = vfio_region_info_cap_sparse_mmap;
  const cap = head.encode({ id: capIds.VFIO_REGION_INFO_CAP_SPARSE_MMAP, version: 1, nr_areas: areas.length },
    head.size + areas.length * vfio_region_sparse_mmap_area.size);
  areas.forEach((a, i) => vfio_region_sparse_mmap_area.write(cap, a, head.size + i * vfio_region_sparse_mmap_area.size));
  return cap;
}

export function regionTypeCap(type: number, subtype: number): Cap {
  return vfio_region_info_cap_type.encode({ id: capIds.VFIO_REGION_INFO_CAP_TYPE, version: 1, type, subtype });
}

export function msixMappableCap(): Cap {
  return vfio_info_cap_header.encode({ id: capIds.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, version: 1 });
}

export function iovaRangeCap(ranges: readonly Range[]): Cap {
  const head = vfio_iommu_type1_info_cap_iova_range;
  const cap = head.encode({ id: capIds.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, nr_iovas: ranges.length },
    head.size + ranges.length * vfio_iova_range.size);
  ranges.forEach((r, i) => vfio_iova_range.write(cap, r, head.size + i * vfio_iova_range.size));
  return cap;
}

export function migrationCap(pgsizeBitmap: bigint, maxDirtyBitmapSize: bigint): Cap {
  return vfio_iommu_type1_info_cap_migration.encode({
    id: capIds.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version: 1, flags: 0,
    pgsize_bitmap: pgsizeBitmap, max_dirty_bitmap_size: maxDirtyBitmapSize,
  });
}

export function dmaAvailCap(avail: number): Cap {
  return vfio_iommu_type1_info_dma_avail.encode({ id: capIds.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, avail });
}

/**
 * Lays capabilities out one after another starting at `base` (the size of the info
 * struct), links their `next` offsets, and returns the bytes to place at `base`.
 * `align` pads each capability (1: packed like 6.1's IOMMU info; 8: like 6.12).
 */
export function chainCaps(caps: readonly Cap[], base: number, align = 1): Uint8Array {
  const offsets: number[] = [];
  let at = base;
  for (const cap of caps) {
    offsets.push(at);
    at += Math.ceil(cap.byteLength / align) * align;
  }
  const out = new Uint8Array(at - base);
  caps.forEach((cap, i) => {
    out.set(cap, offsets[i]! - base);
    const next = i + 1 < caps.length ? offsets[i + 1]! : 0;
    vfio_info_cap_header.write(out, { next }, offsets[i]! - base);
  });
  return out;
}
