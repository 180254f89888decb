// Where each region really is. A kernel device fd holds every region at an offset of the
// driver's choosing (vfio-pci: index << 40), and Region reads, writes and mmaps at
// region.offset + n. Over vfio-user a region is reached by its index (REGION_READ/WRITE)
// and mapped through the fd the server sent with its info, at the offset the server
// chose. So the adapter hands Device offsets of its own (index << 40) and keeps the
// server's fd and offset here, to turn an fd offset back into (region, offset inside).
import { sysError } from '../../addon/errors.js';
import { addon } from '../../addon/addon.js';

const INDEX_SHIFT = 40n;
const INSIDE_MASK = (1n << INDEX_SHIFT) - 1n;
/** Indexes whose offsets still fit a signed 64-bit file offset. */
const MAX_INDEX = 2 ** 23 - 1;

export interface ServerRegion {
  index: number;
  flags: number;
  size: bigint;
  /** The server's offset for mmap of `fd` (the region info's offset field). */
  serverOffset: bigint;
  /** The fd the server sent to mmap the region, if it sent one (ours to close). */
  fd: number | undefined;
}

/** Where an fd offset lands: which region, and how far into it. */
export interface RegionPlace {
  region: ServerRegion;
  inside: bigint;
}

export class RegionTable {
  private readonly byIndex = new Map<number, ServerRegion>();

  /** The offset the adapter reports for region `index` (as vfio-pci does). */
  static offsetOf(index: number): bigint {
    return BigInt(index) << INDEX_SHIFT;
  }

  static validIndex(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index <= MAX_INDEX;
  }

  /** Records a region's info; an fd the table held for it before is closed. */
  set(region: ServerRegion): void {
    const old = this.byIndex.get(region.index);
    if (old?.fd !== undefined && old.fd !== region.fd) addon().close(old.fd);
    this.byIndex.set(region.index, region);
  }

  get(index: number): ServerRegion | undefined {
    return this.byIndex.get(index);
  }

  /**
   * The region an fd offset lies in. EINVAL (as the kernel answers) for an offset in no
   * region the device described, or past its end.
   */
  locate(offset: bigint, syscall: string): RegionPlace {
    const index = Number(offset >> INDEX_SHIFT);
    const inside = offset & INSIDE_MASK;
    const region = this.byIndex.get(index);
    if (!region) throw sysError('EINVAL', syscall, undefined, `offset 0x${offset.toString(16)} is in no region of the device`);
    if (inside > region.size) {
      throw sysError('EINVAL', syscall, undefined, `offset 0x${inside.toString(16)} lies past the ${region.size}-byte region ${index}`);
    }
    return { region, inside };
  }

  /** Closes every fd the server sent. Idempotent. */
  close(): void {
    for (const region of this.byIndex.values()) {
      if (region.fd !== undefined) addon().close(region.fd);
      region.fd = undefined;
    }
    this.byIndex.clear();
  }
}
