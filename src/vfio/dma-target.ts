// What a device driver maps its DMA memory through, whatever carries the device: a
// Container (VFIO_IOMMU_MAP_DMA to the kernel's IOMMU) or a vfio-user connection
// (VFIO_USER_DMA_MAP to the server). Both check a request the same way here.
import type { Mapping } from '../sys/types.js';
import { sysError } from '../addon/errors.js';
import type { DmaMapping, DmaMappingOwner } from './dma-mapping.js';

export interface DmaMapOptions {
  iova: bigint | number;
  /** Memory from sys.allocate(), or a region mmap (peer to peer). */
  memory: Mapping;
  /** Where in `memory` the range starts; default 0. */
  offset?: number;
  /** Default: the rest of `memory` from `offset`. */
  size?: number;
  /** Device may read (VFIO_DMA_MAP_FLAG_READ); default true. */
  read?: boolean;
  /** Device may write (VFIO_DMA_MAP_FLAG_WRITE); default true. */
  write?: boolean;
}

export interface DmaTarget extends DmaMappingOwner {
  /** Set once closed: mapping is refused, unmapping has nothing left to do. */
  readonly closed: boolean;
  /** Makes `memory` visible to the device at `iova`. */
  map(options: DmaMapOptions): DmaMapping;
  /** Removes the mappings that start in [iova, iova+size); returns the bytes unmapped (0: none). */
  unmap(iova: bigint | number, size: bigint | number): bigint;
  /** The live mappings, by IOVA. */
  readonly mappings: readonly DmaMapping[];
}

/** A map request with its defaults filled in and its range checked. */
export interface ResolvedDmaMap {
  memory: Mapping;
  offset: number;
  size: number;
  read: boolean;
  write: boolean;
  iova: bigint;
  /** The process address of the range's first byte (memory.address + offset). */
  vaddr: bigint;
}

function nonNegativeInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
  return value;
}

/** Fills in the defaults and checks the range lies in live memory; `operation` names the failing call. */
export function resolveDmaMap(options: DmaMapOptions, operation: string): ResolvedDmaMap {
  const { memory } = options;
  const offset = nonNegativeInteger(options.offset ?? 0, 'offset');
  const size = nonNegativeInteger(options.size ?? memory.length - offset, 'size');
  if (offset + size > memory.length) {
    throw new RangeError(`offset ${offset} + size ${size} lies past the ${memory.length}-byte memory`);
  }
  // A detached buffer's address may already hold someone else's memory: never map it.
  if (memory.buffer.byteLength === 0) throw sysError('EFAULT', 'ioctl', operation, 'the memory was unmapped');
  return {
    memory, offset, size,
    read: options.read ?? true,
    write: options.write ?? true,
    iova: BigInt(options.iova),
    vaddr: memory.address + BigInt(offset),
  };
}
