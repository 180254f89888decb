// A small first-fit allocator of page-aligned IOVA ranges in the physical edu's
// container. edu's DMA mask is 28 bits, so every range lies below `limit` (256 MiB);
// a mediated transfer needs at most two pages, so a sorted list is plenty.
import { sysError } from '../../addon/errors.js';

export interface IovaRange {
  readonly iova: bigint;
  readonly size: bigint;
}

export class IovaAllocator {
  /** Live ranges, sorted by IOVA. */
  private readonly live: IovaRange[] = [];

  constructor(readonly base: bigint, readonly limit: bigint, readonly pageSize: bigint) {
    if (base % pageSize !== 0n || limit % pageSize !== 0n || base >= limit) {
      throw new RangeError(`IOVA window 0x${base.toString(16)}..0x${limit.toString(16)} is not page-aligned and non-empty`);
    }
  }

  /** `pages` contiguous pages; ENOSPC when the window has no such gap. */
  allocate(pages: number): IovaRange {
    if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`pages must be a positive integer, got ${pages}`);
    const size = BigInt(pages) * this.pageSize;
    let at = this.base;
    let index = 0;
    for (; index < this.live.length; index++) {
      const next = this.live[index]!;
      if (next.iova - at >= size) break;
      at = next.iova + next.size;
    }
    if (at + size > this.limit) throw sysError('ENOSPC', 'iova_alloc', undefined, `no ${pages}-page IOVA gap below 0x${this.limit.toString(16)}`);
    const range = { iova: at, size };
    this.live.splice(index, 0, range);
    return range;
  }

  /** Gives a range back. Idempotent. */
  free(range: IovaRange): void {
    const index = this.live.indexOf(range);
    if (index >= 0) this.live.splice(index, 1);
  }

  get allocated(): number {
    return this.live.length;
  }
}
