// Memory as the addon hands it out: an ArrayBuffer over an mmap, with its address.
/** Memory the caller can hand to VFIO_IOMMU_MAP_DMA, or a mapping of a device region. */
export interface Mapping {
  /** The memory itself; detached (byteLength 0) once unmapped. */
  readonly buffer: ArrayBuffer;
  /** The process virtual address of buffer[0] (a vaddr for MAP_DMA). */
  readonly address: bigint;
  readonly length: number;
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
