// One IOVA range a DmaTarget mapped (a Container with VFIO_IOMMU_MAP_DMA, a vfio-user
// connection with VFIO_USER_DMA_MAP): what the device sees at
// iova..iova+size-1 is memory[offset..offset+size-1].
import { inspect } from 'node:util';
import type { Mapping } from '../sys/types.js';
import { formatSize, hex } from './names.js';

export interface DmaMappingOwner {
  unmap(iova: bigint | number, size: bigint | number): bigint;
}

export class DmaMapping {
  constructor(
    private readonly owner: DmaMappingOwner,
    readonly iova: bigint,
    readonly size: bigint,
    /** The process address of the range (memory.address + offset): what the kernel pins. */
    readonly vaddr: bigint,
    readonly memory: Mapping,
    readonly offset: number,
    readonly read: boolean,
    readonly write: boolean,
  ) {}

  /** The last IOVA of the range (inclusive), like the kernel's iova ranges. */
  get end(): bigint {
    return this.iova + this.size - 1n;
  }

  /** The mapped memory as bytes (empty once the memory itself is unmapped). */
  get bytes(): Uint8Array {
    if (this.memory.buffer.byteLength === 0) return new Uint8Array(0);
    return new Uint8Array(this.memory.buffer, this.offset, Number(this.size));
  }

  /** Unmaps exactly this range from its owner; returns the bytes unmapped. */
  unmap(): bigint {
    return this.owner.unmap(this.iova, this.size);
  }

  [inspect.custom](): string {
    const prot = `${this.read ? 'r' : '-'}${this.write ? 'w' : '-'}`;
    return `DmaMapping iova ${hex(this.iova)}-${hex(this.end)} (${formatSize(this.size)}) ${prot} -> vaddr ${hex(this.vaddr)}`;
  }
}
