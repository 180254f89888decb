// The DmaSpace a vendor gets in its VgpuSession: the container's, with every pin this
// vGPU holds counted per page, so the core can drop what the vendor leaves behind (at
// release, and after a DMA-unmap notice the vendor did not fully honour) and a vendor
// can never unpin pages another vGPU pinned. After the session ends every call is
// EINVAL, as vfio_pin_pages is on a device that is not open.
import { sysError } from '../../addon/errors.js';
import type { DmaSpace } from '../../device/backend.js';
import type { DirtyPageLog } from '../../device/migration/logging.js';

const IOMMU_WRITE = 2;

export class PinTracker implements DmaSpace {
  /** Pins held, by page IOVA. */
  private readonly pins = new Map<bigint, number>();
  /** Pins taken for writing, by page IOVA: such pages count as dirty while pinned. */
  private readonly writable = new Map<bigint, number>();
  private readonly pageSize: bigint;
  private closed = false;
  /** While DMA logging is on: every write through this space is recorded in it. */
  dirtyLog: DirtyPageLog | undefined;

  constructor(private readonly inner: DmaSpace, pageSize: number) {
    this.pageSize = BigInt(pageSize);
  }

  /** Pages pinned at least once. */
  get pinnedPages(): number {
    return this.pins.size;
  }

  read(iova: bigint, dst: Uint8Array): void {
    this.check('read');
    this.inner.read(iova, dst);
  }

  write(iova: bigint, src: Uint8Array): void {
    this.check('write');
    this.inner.write(iova, src);
    this.dirtyLog?.record(iova, BigInt(src.byteLength));
  }

  /** Pages pinned for writing now (the device may write them at any time: always dirty). */
  writablePages(): bigint[] {
    return [...this.writable.keys()];
  }

  pin(iova: bigint, npage: number, prot: number): Uint8Array[] {
    this.check('vfio_pin_pages');
    const views = this.inner.pin(iova, npage, prot);
    for (let i = 0; i < npage; i++) {
      const page = iova + BigInt(i) * this.pageSize;
      this.pins.set(page, (this.pins.get(page) ?? 0) + 1);
      if (prot & IOMMU_WRITE) this.writable.set(page, (this.writable.get(page) ?? 0) + 1);
    }
    // The device may write a page pinned for writing at any moment (through the view): dirty now.
    if (prot & IOMMU_WRITE) this.dirtyLog?.record(iova, BigInt(npage) * this.pageSize);
    return views;
  }

  unpin(iova: bigint, npage: number): void {
    this.check('vfio_unpin_pages');
    if (!Number.isSafeInteger(npage) || npage <= 0) throw sysError('EINVAL', 'vfio_unpin_pages', undefined, `npage ${npage}`);
    // Only what this vGPU pinned: another vGPU's pins in the same container are not ours to drop.
    for (let i = 0; i < npage; i++) {
      if (!this.pins.has(iova + BigInt(i) * this.pageSize)) {
        throw sysError('EINVAL', 'vfio_unpin_pages', undefined, `iova 0x${(iova + BigInt(i) * this.pageSize).toString(16)} is not pinned by this vGPU`);
      }
    }
    this.inner.unpin(iova, npage);
    for (let i = 0; i < npage; i++) this.drop(iova + BigInt(i) * this.pageSize, 1);
  }

  /** Drops every pin this vGPU holds in [iova, iova + length); returns the pins dropped. */
  dropRange(iova: bigint, length: bigint): number {
    let dropped = 0;
    for (const [page, count] of [...this.pins]) {
      if (page + this.pageSize > iova && page < iova + length) dropped += this.forceUnpin(page, count);
    }
    return dropped;
  }

  /** Drops every pin and ends the session: later calls are EINVAL. Returns the pins dropped. */
  close(): number {
    let dropped = 0;
    for (const [page, count] of [...this.pins]) dropped += this.forceUnpin(page, count);
    this.closed = true;
    return dropped;
  }

  private forceUnpin(page: bigint, count: number): number {
    for (let k = 0; k < count; k++) {
      try {
        this.inner.unpin(page, 1);
      } catch {
        // The container already let go of it (its mapping or IOMMU is gone): nothing held.
      }
    }
    this.pins.delete(page);
    this.writable.delete(page);
    return count;
  }

  private drop(page: bigint, n: number): void {
    const left = (this.pins.get(page) ?? 0) - n;
    if (left > 0) this.pins.set(page, left);
    else this.pins.delete(page);
    // Which pin an unpin drops is not known: keep the writable count as high as the pins
    // left allow (reporting a page dirty too often is safe, too rarely is not).
    const w = this.writable.get(page);
    if (w !== undefined) {
      const keep = Math.min(w, Math.max(left, 0));
      if (keep > 0) this.writable.set(page, keep);
      else this.writable.delete(page);
    }
  }

  private check(op: string): void {
    if (this.closed) throw sysError('EINVAL', op, undefined, 'the vGPU is not open');
  }
}
