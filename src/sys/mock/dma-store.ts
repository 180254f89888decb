// A container's DMA mappings (struct vfio_dma), sorted by IOVA, found by binary search.
// Mappings never overlap, so "sorted by start" is also "sorted by end".
import type { MemoryRegion, Segment } from './address-space.js';

export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;

export interface DmaMapping {
  readonly iova: bigint;
  readonly size: bigint;
  vaddr: bigint;
  /** IOMMU_READ | IOMMU_WRITE, from the device's point of view. */
  readonly prot: number;
  /** The user memory it pins (empty when no IOMMU-backed group pins it). */
  pinned: Segment[];
  /** Pages charged to locked memory for it. */
  lockedPages: number;
  /** Pinned and mapped in an IOMMU domain (dma->iommu_mapped). */
  iommuMapped: boolean;
  /** VFIO_DMA_UNMAP_FLAG_VADDR was used and no new vaddr was given yet. */
  vaddrInvalid: boolean;
  /**
   * While dirty tracking is on: the pages (indexes from iova, in the smallest page size)
   * dirtied since the last report, or 'all'. Null while tracking is off.
   */
  dirty: Set<number> | 'all' | null;
  /**
   * Pages a device pinned through vfio_pin_pages (the kernel's pfn_list), by page index
   * from iova (PAGE_SIZE units); null until the first pin.
   */
  pins: Map<number, PinnedPage> | null;
}

/** Who holds pins: an open device of a group in the container (the mock's DeviceNode). */
export interface PinOwner {
  readonly device: { readonly name: string; dmaUnmap?(iova: bigint, length: bigint): void };
  readonly group: { readonly id: number; readonly iommuBacked: boolean };
}

/** One externally pinned page (struct vfio_pfn): reference counted per IOVA. */
export interface PinnedPage {
  refs: number;
  /** The user memory behind it, kept alive (AddressSpace.pin) while pinned. */
  readonly region: MemoryRegion;
  /** The page itself: a view of the backing Mapping's buffer. */
  readonly view: Uint8Array;
  /**
   * Pins per device. The kernel keeps no owner; the mock does, to name a device that
   * leaves pins behind and to drop a departing group's pins.
   */
  readonly holders: Map<PinOwner, number>;
}

/** Entries per chunk before it splits: keeps inserts and removes cheap at any position. */
const CHUNK_MAX = 512;

/**
 * Sorted chunks of sorted mappings (a flat two-level B-tree): lookups are two binary
 * searches, and an insert or remove moves at most one chunk's entries, so 65535
 * mappings stay fast in any insertion order.
 */
export class DmaStore {
  private readonly chunks: DmaMapping[][] = [];
  private total = 0;

  get count(): number {
    return this.total;
  }

  /** Every mapping, by IOVA. Take a copy ([...values()]) before removing while iterating. */
  *values(): IterableIterator<DmaMapping> {
    for (const chunk of this.chunks) yield* chunk;
  }

  /** The first mapping that ends above `iova` (the one containing it, or the next one). */
  first(iova: bigint): DmaMapping | undefined {
    const c = this.chunkEndingAbove(iova);
    const chunk = this.chunks[c];
    return chunk?.[indexEndingAbove(chunk, iova)];
  }

  /** The mapping after `m` in IOVA order. */
  next(m: DmaMapping): DmaMapping | undefined {
    return this.first(m.iova + m.size);
  }

  /**
   * A mapping overlapping [start, start+size), as vfio_find_dma answers; with size 0 the
   * kernel's comparison finds only a mapping that starts strictly below `start`.
   */
  find(start: bigint, size: bigint): DmaMapping | undefined {
    const m = this.first(start);
    if (!m) return undefined;
    return (size === 0n ? m.iova < start : m.iova < start + size) ? m : undefined;
  }

  /** The mapping that contains `iova`. */
  containing(iova: bigint): DmaMapping | undefined {
    return this.find(iova, 1n);
  }

  insert(mapping: DmaMapping): void {
    let c = this.chunkEndingAbove(mapping.iova);
    if (c === this.chunks.length) c--;
    if (c < 0) {
      this.chunks.push([mapping]);
    } else {
      const chunk = this.chunks[c]!;
      chunk.splice(indexEndingAbove(chunk, mapping.iova), 0, mapping);
      if (chunk.length > CHUNK_MAX) this.chunks.splice(c + 1, 0, chunk.splice(chunk.length >> 1));
    }
    this.total++;
  }

  remove(mapping: DmaMapping): void {
    const c = this.chunkEndingAbove(mapping.iova);
    const chunk = this.chunks[c];
    const at = chunk ? indexEndingAbove(chunk, mapping.iova) : -1;
    if (!chunk || chunk[at] !== mapping) throw new Error('DMA mapping is not in the store');
    chunk.splice(at, 1);
    if (chunk.length === 0) this.chunks.splice(c, 1);
    this.total--;
  }

  /** Index of the first chunk whose last mapping ends above `iova` (chunks.length if none). */
  private chunkEndingAbove(iova: bigint): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = this.chunks[mid]!;
      const last = chunk[chunk.length - 1]!;
      if (last.iova + last.size <= iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function indexEndingAbove(list: readonly DmaMapping[], iova: bigint): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = list[mid]!;
    if (m.iova + m.size <= iova) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
