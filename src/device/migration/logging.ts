// The VFIO core's rules for device DMA logging (vfio_ioctl_device_feature_logging_start
// and _report in drivers/vfio/vfio_main.c), and a small dirty-page log a device can keep.
import { sysError, type ErrnoCode } from '../../addon/errors.js';
import type { IovaBitmap, IovaRange } from './ops.js';

const U64 = (1n << 64n) - 1n;

function fail(code: ErrnoCode, detail: string): never {
  throw sysError(code, 'ioctl', 'VFIO_DEVICE_FEATURE', detail);
}

/** IS_ALIGNED(x, a) on u64s, as the kernel computes it for any `a` (0 included). */
function isAligned(x: bigint, a: bigint): boolean {
  return (x & ((a - 1n) & U64)) === 0n;
}

/** One START range: iova and length aligned to the control's page_size (EINVAL), no wrap past 2^64 (EOVERFLOW). */
export function validateLoggingRange(range: IovaRange, pageSize: bigint): void {
  if (!isAligned(range.iova, pageSize) || !isAligned(range.length, pageSize)) {
    fail('EINVAL', `range 0x${range.iova.toString(16)}+0x${range.length.toString(16)} is not aligned to page_size ${pageSize}`);
  }
  if (range.iova + range.length > U64) fail('EOVERFLOW', `range 0x${range.iova.toString(16)}+0x${range.length.toString(16)} wraps`);
}

/** REPORT: page_size a power of two of at least 4 KiB (EINVAL), iova + length without wrap (EOVERFLOW). */
export function validateReport(report: { iova: bigint; length: bigint; page_size: bigint }): void {
  const p = report.page_size;
  if (p < 4096n || (p & (p - 1n)) !== 0n) fail('EINVAL', `page_size ${p}`);
  if (report.iova + report.length > U64) fail('EOVERFLOW', 'iova + length wraps');
}

/**
 * The START ranges as the core's interval tree holds them: a range whose first..last
 * bytes meet one already inserted is refused. A zero-length range covers [iova, iova - 1]
 * (last wraps below first), which the kernel's tree never finds overlapping.
 */
export class RangeSet {
  private readonly ranges: IovaRange[] = [];

  insert(range: IovaRange): boolean {
    const first = range.iova;
    const last = (range.iova + range.length - 1n) & U64;
    for (const r of this.ranges) {
      const rFirst = r.iova;
      const rLast = (r.iova + r.length - 1n) & U64;
      if (rFirst <= last && first <= rLast) return false;
    }
    this.ranges.push(range);
    return true;
  }

  sorted(): IovaRange[] {
    return [...this.ranges].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  }
}

/**
 * A device's DMA write log over the START ranges, at the page size it chose: records
 * writes, reports and clears them (what a device with log_ops keeps).
 */
export class DirtyPageLog {
  private readonly dirty = new Set<bigint>();

  constructor(readonly ranges: readonly IovaRange[], readonly pageSize: bigint) {}

  /** A DMA write of [iova, iova + length): the pages it touches inside the ranges become dirty. */
  record(iova: bigint, length: bigint): void {
    if (length <= 0n) return;
    const end = iova + length;
    for (const r of this.ranges) {
      const from = iova > r.iova ? iova : r.iova;
      const to = end < r.iova + r.length ? end : r.iova + r.length;
      if (from >= to) continue;
      for (let page = from / this.pageSize; page * this.pageSize < to; page++) this.dirty.add(page);
    }
  }

  /** Marks the dirty pages of [iova, iova + length) in `bitmap` and forgets them. */
  readAndClear(iova: bigint, length: bigint, bitmap: IovaBitmap): void {
    const end = iova + length;
    for (const page of [...this.dirty]) {
      const at = page * this.pageSize;
      const pageEnd = at + this.pageSize;
      if (pageEnd <= iova || at >= end) continue;
      const from = at > iova ? at : iova;
      const to = pageEnd < end ? pageEnd : end;
      bitmap.set(from, to - from);
      this.dirty.delete(page);
    }
  }

  get dirtyPages(): number {
    return this.dirty.size;
  }
}
