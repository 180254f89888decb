// A device's DMA space made of regions its user declared, knowing no transport: a
// vfio-user client's DMA_MAP/DMA_UNMAP land here. A region's memory is either a file
// the user handed over, mapped here MAP_SHARED (in windows, see file-windows.ts), or
// remote: reachable only through callbacks the transport provides (DMA_READ and
// DMA_WRITE messages), with no host memory behind it.
//
// Towards the device it is a DmaSpace with the kernel's semantics (backend.ts):
//   read/write may run across adjacent regions; the whole range is checked (mapped,
//   READ for a read, WRITE for a write) before a byte moves, else DmaFault. Writes
//   mark their pages dirty in the region's dirty set (kept for migration and dirty
//   logging, see DmaRegionInfo.dirty).
//   pin/unpin as vfio_pin_pages: npage 1..512 (0 EINVAL, more E2BIG), page-aligned
//   iova, a page not mapped EINVAL, prot beyond the region's EPERM, a remote region
//   EFAULT (nothing to hand out), counted per page, nothing pinned after an error;
//   unpin of a page not pinned refuses the whole call (EINVAL). Pages pinned for WRITE
//   count as dirty. After close() every call is EINVAL (pins) or a DmaFault.
//
// Removing a region that has pins tells the device first (unmapNotice: its
// vfio_device_ops.dma_unmap, which must unpin), then drops any pin left by force
// (counted in forcedUnpins, reported as a warning), then unmaps its memory and closes
// its fd, so no view the device got can outlive the memory.
import { sysError, type ErrnoCode } from '../../addon/errors.js';
import { addon } from '../../addon/addon.js';
import { PROT_READ, PROT_WRITE } from '../../addon/mapping.js';
import { DmaFault, type DmaSpace } from '../backend.js';
import { DmaStore } from './dma-store.js';
import { DEFAULT_WINDOW_SIZE, mapFileWindows, type FileWindows } from './file-windows.js';

export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
/** VFIO_PIN_PAGES_MAX_ENTRIES: the most pages one pin or unpin call may name. */
export const VFIO_PIN_PAGES_MAX_ENTRIES = 512;
/** The spec's default max_dma_maps. */
export const DEFAULT_MAX_DMA_REGIONS = 65535;
const U64_LIMIT = 1n << 64n;

/** Where a region's memory is: a file to map (owned by the region once add() succeeds), or the user's alone. */
export type DmaRegionSource = { readonly kind: 'file'; readonly fd: number; readonly offset: bigint } | { readonly kind: 'remote' };

export interface DmaRegionRequest {
  readonly iova: bigint;
  readonly size: bigint;
  /** IOMMU_READ | IOMMU_WRITE: what the device may do. */
  readonly prot: number;
  readonly source: DmaRegionSource;
}

/** The transport's way to reach remote regions (vfio-user DMA_READ / DMA_WRITE). May throw (a DmaFault or any error). */
export interface RemoteDma {
  read(iova: bigint, dst: Uint8Array): void;
  write(iova: bigint, src: Uint8Array): void;
}

export interface DmaRegionsOptions {
  /** Default: the host's page size. */
  readonly pageSize?: number;
  /** add() past this many regions is ENOSPC. Default 65535 (the spec's max_dma_maps). */
  readonly maxRegions?: number;
  /** Bytes per mapped window, a multiple of the page size. Default 1 GiB. */
  readonly windowSize?: number;
  /** Reaches remote regions; without it, DMA to a remote region faults. */
  readonly remote?: RemoteDma;
  /** The device's DMA-unmap notice (DeviceBackend.dmaUnmap): told before a region with pins goes. */
  readonly unmapNotice?: (iova: bigint, length: bigint) => void;
  /** Where forced unpins and failed notices are reported. Default process.emitWarning. */
  readonly warn?: (message: string) => void;
}

/** A snapshot of one region. */
export interface DmaRegionInfo {
  readonly iova: bigint;
  readonly size: bigint;
  readonly prot: number;
  readonly remote: boolean;
  /** Pages pinned at least once. */
  readonly pinnedPages: number;
  /** Page indexes (from iova, in pageSize units) written since the last clearDirty(). */
  readonly dirty: ReadonlySet<number>;
}

class Region {
  /** Pins per page index. */
  readonly pins = new Map<number, number>();
  readonly dirty = new Set<number>();

  constructor(readonly iova: bigint, readonly size: bigint, readonly prot: number,
    readonly memory: FileWindows | undefined, readonly fd: number | undefined) {}

  info(): DmaRegionInfo {
    return { iova: this.iova, size: this.size, prot: this.prot, remote: this.memory === undefined, pinnedPages: this.pins.size, dirty: this.dirty };
  }
}

/** One part of a transfer: `length` bytes at `offset` of `region`. */
interface Piece {
  readonly region: Region;
  readonly offset: bigint;
  readonly length: number;
}

function fail(code: ErrnoCode, syscall: string, detail: string): never {
  throw sysError(code, syscall, undefined, detail);
}

function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

export class DmaRegions implements DmaSpace {
  readonly pageSize: number;
  readonly maxRegions: number;
  private readonly page: bigint;
  private readonly pageMask: bigint;
  private readonly windowSize: number;
  private readonly store = new DmaStore<Region>();
  private readonly options: DmaRegionsOptions;
  private pinned = 0;
  private forced = 0;
  private closed = false;

  constructor(options: DmaRegionsOptions = {}) {
    this.options = options;
    this.pageSize = options.pageSize ?? addon().pageSize;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 4096 || (this.pageSize & (this.pageSize - 1)) !== 0) {
      throw new RangeError(`DMA page size ${this.pageSize}: a power of two of at least 4096`);
    }
    this.page = BigInt(this.pageSize);
    this.pageMask = this.page - 1n;
    this.maxRegions = options.maxRegions ?? DEFAULT_MAX_DMA_REGIONS;
    this.windowSize = options.windowSize ?? Math.max(this.pageSize, DEFAULT_WINDOW_SIZE - (DEFAULT_WINDOW_SIZE % this.pageSize));
  }

  /** Regions now. */
  get count(): number {
    return this.store.count;
  }

  /** Regions whose memory is mapped in this process now. */
  get mappedCount(): number {
    let n = 0;
    for (const r of this.store.values()) if (r.memory) n++;
    return n;
  }

  /** Pages pinned at least once, over all regions. */
  get pinnedPages(): number {
    return this.pinned;
  }

  /** Pins dropped by force because the device kept them past the unmap notice. */
  get forcedUnpins(): number {
    return this.forced;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Every region, by IOVA. */
  list(): DmaRegionInfo[] {
    return [...this.store.values()].map((r) => r.info());
  }

  /** The region containing `iova`. */
  regionAt(iova: bigint): DmaRegionInfo | undefined {
    return this.store.containing(iova)?.info();
  }

  /** Forgets every region's dirty pages (after they were reported). */
  clearDirty(): void {
    for (const r of this.store.values()) r.dirty.clear();
  }

  /**
   * Adds a region. EINVAL for size 0, an iova, size or file offset not page aligned,
   * a range past 2^64, no access in prot, or a file that cannot back it; EEXIST when
   * it overlaps a region; ENOSPC past maxRegions; the mmap's own error otherwise. On
   * success a file region owns its fd (closed when the region goes); on failure the
   * fd stays the caller's.
   */
  add(request: DmaRegionRequest): void {
    const { iova, size, prot, source } = request;
    // Built only for an error: this is every DMA_MAP's path.
    const what = (): string => `DMA region [${hex(iova)}, +${hex(size)})`;
    if (this.closed) fail('EINVAL', 'dma_map', `${what()}: the DMA space is closed`);
    if (size <= 0n || iova < 0n || ((iova | size) & this.pageMask) !== 0n) fail('EINVAL', 'dma_map', `${what()}: zero or not page aligned`);
    if (iova + size > U64_LIMIT) fail('EINVAL', 'dma_map', `${what()}: wraps past 2^64`);
    if (!Number.isInteger(prot) || (prot & ~(IOMMU_READ | IOMMU_WRITE)) !== 0 || prot === 0) fail('EINVAL', 'dma_map', `${what()}: prot ${prot}`);
    const existing = this.store.find(iova, size);
    if (existing) fail('EEXIST', 'dma_map', `${what()} overlaps [${hex(existing.iova)}, +${hex(existing.size)})`);
    if (this.store.count >= this.maxRegions) fail('ENOSPC', 'dma_map', `${what()}: ${this.maxRegions} regions already`);
    let memory: FileWindows | undefined;
    if (source.kind === 'file') {
      const mmapProt = (prot & IOMMU_READ ? PROT_READ : 0) | (prot & IOMMU_WRITE ? PROT_WRITE : 0);
      memory = mapFileWindows(source.fd, source.offset, size, mmapProt, this.windowSize);
    }
    this.store.insert(new Region(iova, size, prot, memory, source.kind === 'file' ? source.fd : undefined));
  }

  /**
   * Removes every region inside [iova, iova + size) as VFIO_IOMMU_UNMAP_DMA (v2) does:
   * the range may cover several regions, and covering none is no error (0 bytes);
   * a range that starts or ends inside a region is EINVAL, and so is a range that is
   * empty, not page aligned or past 2^64. Returns the bytes unmapped.
   */
  remove(iova: bigint, size: bigint): bigint {
    const what = (): string => `unmap of [${hex(iova)}, +${hex(size)})`;
    if (size <= 0n || iova < 0n || ((iova | size) & this.pageMask) !== 0n) fail('EINVAL', 'dma_unmap', `${what()}: zero or not page aligned`);
    const end = iova + size;
    if (end > U64_LIMIT) fail('EINVAL', 'dma_unmap', `${what()}: wraps past 2^64`);
    const first = this.store.containing(iova);
    if (first && first.iova !== iova) fail('EINVAL', 'dma_unmap', `${what()} starts inside [${hex(first.iova)}, +${hex(first.size)})`);
    const last = this.store.containing(end - 1n);
    if (last && last.iova + last.size !== end) fail('EINVAL', 'dma_unmap', `${what()} ends inside [${hex(last.iova)}, +${hex(last.size)})`);
    const doomed: Region[] = [];
    for (let r = this.store.first(iova, end); r; r = this.store.next(r, end)) doomed.push(r);
    let unmapped = 0n;
    for (const r of doomed) {
      this.release(r);
      unmapped += r.size;
    }
    return unmapped;
  }

  /** Removes every region (VFIO_DMA_UNMAP_FLAG_ALL). Returns the bytes unmapped. */
  removeAll(): bigint {
    let unmapped = 0n;
    for (const r of [...this.store.values()]) {
      this.release(r);
      unmapped += r.size;
    }
    return unmapped;
  }

  /** The user is gone: every region goes (after the notices), and later calls fail. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.removeAll();
    this.closed = true;
  }

  // ---- DmaSpace ----

  read(iova: bigint, dst: Uint8Array): void {
    const pieces = this.translate(iova, dst.byteLength, 'read');
    let done = 0;
    for (const p of pieces) {
      const part = dst.subarray(done, done + p.length);
      if (p.region.memory) p.region.memory.read(Number(p.offset), part);
      else this.remote(iova, dst.byteLength, 'read', () => this.options.remote!.read(p.region.iova + p.offset, part));
      done += p.length;
    }
  }

  write(iova: bigint, src: Uint8Array): void {
    const pieces = this.translate(iova, src.byteLength, 'write');
    let done = 0;
    for (const p of pieces) {
      const part = src.subarray(done, done + p.length);
      if (p.region.memory) p.region.memory.write(Number(p.offset), part);
      else this.remote(iova, src.byteLength, 'write', () => this.options.remote!.write(p.region.iova + p.offset, part));
      this.markDirty(p.region, p.offset, p.length);
      done += p.length;
    }
  }

  pin(iova: bigint, npage: number, prot: number): Uint8Array[] {
    const call = 'vfio_pin_pages';
    this.checkPinArgs(call, iova, npage);
    const views: Uint8Array[] = [];
    const done: [Region, number][] = [];
    try {
      let r: Region | undefined;
      for (let i = 0; i < npage; i++) {
        const at = iova + BigInt(i) * this.page;
        if (!r || at >= r.iova + r.size) r = this.store.containing(at);
        if (!r) fail('EINVAL', call, `iova ${hex(at)} is not mapped`);
        if ((r.prot & prot) !== prot) fail('EPERM', call, `iova ${hex(at)} is mapped with prot ${r.prot}, not ${prot}`);
        if (!r.memory) {
          fail('EFAULT', call, `iova ${hex(at)} is in a region the client mapped without an fd: there is no host memory ` +
            'to pin (reach it with DmaSpace read/write)');
        }
        const index = Number((at - r.iova) / this.page);
        const view = r.memory.view(index * this.pageSize, this.pageSize);
        const refs = r.pins.get(index) ?? 0;
        r.pins.set(index, refs + 1);
        if (refs === 0) this.pinned++;
        done.push([r, index]);
        views.push(view);
      }
    } catch (err) {
      for (const [r, index] of done) this.unpinPage(r, index);
      throw err;
    }
    if (prot & IOMMU_WRITE) for (const [r, index] of done) r.dirty.add(index);
    return views;
  }

  unpin(iova: bigint, npage: number): void {
    const call = 'vfio_unpin_pages';
    this.checkPinArgs(call, iova, npage);
    const pages: [Region, number][] = [];
    let r: Region | undefined;
    for (let i = 0; i < npage; i++) {
      const at = iova + BigInt(i) * this.page;
      if (!r || at >= r.iova + r.size) r = this.store.containing(at);
      const index = r ? Number((at - r.iova) / this.page) : -1;
      if (!r || !r.pins.has(index)) fail('EINVAL', call, `iova ${hex(at)} is not pinned`);
      pages.push([r, index]);
    }
    for (const [region, index] of pages) this.unpinPage(region, index);
  }

  // ---- internals ----

  private checkPinArgs(call: string, iova: bigint, npage: number): void {
    if (this.closed) fail('EINVAL', call, 'the device is not open (its DMA space is closed)');
    if (!Number.isInteger(npage) || npage <= 0) fail('EINVAL', call, `npage ${npage}`);
    if (npage > VFIO_PIN_PAGES_MAX_ENTRIES) fail('E2BIG', call, `npage ${npage} > ${VFIO_PIN_PAGES_MAX_ENTRIES}`);
    if (typeof iova !== 'bigint' || iova < 0n || iova % this.page !== 0n || iova + BigInt(npage) * this.page > U64_LIMIT) {
      fail('EINVAL', call, `iova ${String(iova)} is not a page-aligned address with room for ${npage} pages`);
    }
  }

  private unpinPage(r: Region, index: number): void {
    const left = (r.pins.get(index) ?? 0) - 1;
    if (left > 0) {
      r.pins.set(index, left);
    } else {
      r.pins.delete(index);
      this.pinned--;
    }
  }

  /** Checks the whole transfer before anything moves: every byte mapped, with the access. */
  private translate(iova: bigint, length: number, access: 'read' | 'write'): Piece[] {
    const fault = (reason: string): never => { throw new DmaFault(iova, length, access, reason); };
    if (this.closed) fault('the DMA space is closed (the device is not open)');
    if (typeof iova !== 'bigint' || iova < 0n || iova + BigInt(length) > U64_LIMIT) fault('address out of range');
    const need = access === 'read' ? IOMMU_READ : IOMMU_WRITE;
    const pieces: Piece[] = [];
    let at = iova;
    let left = length;
    while (left > 0) {
      const r = this.store.containing(at);
      if (!r) return fault(`iova ${hex(at)} is not mapped`);
      if ((r.prot & need) === 0) fault(`iova ${hex(at)} is mapped without ${access === 'read' ? 'READ' : 'WRITE'}`);
      if (!r.memory && !this.options.remote) fault(`iova ${hex(at)} is remote and nobody can reach it`);
      const offset = at - r.iova;
      const n = r.size - offset < BigInt(left) ? Number(r.size - offset) : left;
      pieces.push({ region: r, offset, length: n });
      at += BigInt(n);
      left -= n;
    }
    return pieces;
  }

  /** A remote transfer, its failure reported as the device's DMA fault. */
  private remote(iova: bigint, length: number, access: 'read' | 'write', transfer: () => void): void {
    try {
      transfer();
    } catch (err) {
      if (err instanceof DmaFault) throw err;
      throw new DmaFault(iova, length, access, `the client did not complete it: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private markDirty(r: Region, offset: bigint, length: number): void {
    if (length === 0) return;
    const first = Number(offset / this.page);
    const last = Number((offset + BigInt(length) - 1n) / this.page);
    for (let i = first; i <= last; i++) r.dirty.add(i);
  }

  /** Notice, forced unpins, unmap, close: the region is gone afterwards, whatever the device did. */
  private release(r: Region): void {
    const warn = this.options.warn ?? ((message: string) => process.emitWarning(message, { type: 'DmaRegionsWarning' }));
    if (r.pins.size && this.options.unmapNotice) {
      try {
        this.options.unmapNotice(r.iova, r.size);
      } catch (err) {
        warn(`dma_unmap(${hex(r.iova)}, ${hex(r.size)}) threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (r.pins.size) {
      let dropped = 0;
      for (const refs of r.pins.values()) dropped += refs;
      this.pinned -= r.pins.size;
      r.pins.clear();
      this.forced += dropped;
      warn(`the device still held ${dropped} pin(s) in the DMA region at ${hex(r.iova)} (size ${hex(r.size)}) after the unmap notice; they were dropped`);
    }
    this.store.remove(r);
    r.memory?.unmap();
    if (r.fd !== undefined) {
      try {
        addon().close(r.fd);
      } catch {
        // Already closed by someone else: nothing of ours is left open.
      }
    }
  }
}
