// A container's DMA mappings (struct vfio_dma), sorted by IOVA, found by binary search.
// Mappings never overlap, so "sorted by start" is also "sorted by end"; 65535 entries
// stay fast (an insert or remove is one memmove of the array).
import type { Segment } from './address-space.js';

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
}

export class DmaStore {
  private readonly list: DmaMapping[] = [];

  get count(): number {
    return this.list.length;
  }

  all(): readonly DmaMapping[] {
    return this.list;
  }

  at(index: number): DmaMapping | undefined {
    return this.list[index];
  }

  /** Index of the first mapping that ends above `iova` (the one containing it, or the next). */
  firstEndingAbove(iova: bigint): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.list[mid]!;
      if (m.iova + m.size <= iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * A mapping overlapping [start, start+size), as vfio_find_dma answers; with size 0 the
   * kernel's comparison finds only a mapping that starts strictly below `start`.
   */
  find(start: bigint, size: bigint): DmaMapping | undefined {
    const m = this.list[this.firstEndingAbove(start)];
    if (!m) return undefined;
    return (size === 0n ? m.iova < start : m.iova < start + size) ? m : undefined;
  }

  /** The mapping that contains `iova`. */
  containing(iova: bigint): DmaMapping | undefined {
    return this.find(iova, 1n);
  }

  insert(mapping: DmaMapping): void {
    this.list.splice(this.firstEndingAbove(mapping.iova), 0, mapping);
  }

  remove(mapping: DmaMapping): void {
    const at = this.firstEndingAbove(mapping.iova);
    if (this.list[at] !== mapping) throw new Error('DMA mapping is not in the store');
    this.list.splice(at, 1);
  }
}
