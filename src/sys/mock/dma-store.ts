// A container's DMA mappings (struct vfio_dma) and the pins devices hold in them. The
// store itself (a page table) is the device layer's (src/device/dma/dma-store.ts), shared with
// the vfio-user server's DMA regions.
import type { MemoryRegion, Segment } from './address-space.js';

export { DmaStore, type IovaRange, type Translation } from '../../device/dma/dma-store.js';

export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;

export interface DmaMapping {
  readonly iova: bigint;
  readonly size: bigint;
  vaddr: bigint;
  /** IOMMU_READ | IOMMU_WRITE, from the device's point of view. */
  readonly prot: number;
  /** The user memory it pins (empty when no IOMMU-backed group pins it). */
  pinned: readonly Segment[];
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
