// Guest memory the engine works on: a byte range of IOVA space pinned through the
// vGPU's DMA space (vfio_pin_pages: at most 512 pages a call), seen through the page
// views the pins return, and unpinned exactly once. The framebuffer is seen the same
// way, through a window mapped for one command (the framebuffer may be larger than
// any one view of it) and unmapped exactly once, so one copy loop serves guest->guest
// and guest->framebuffer transfers.
import { isSysError, sysError } from '../../addon/errors.js';
import type { DmaSpace } from '../../device/backend.js';
import { PROT_READ, PROT_WRITE, type Mapping } from '../../sys/types.js';
import type { MemoryBacking } from '../../vgpu/vendor.js';

/** vfio_pin_pages() refuses more than this many pages in one call (E2BIG). */
export const PIN_PAGES_MAX = 512;

/** Bytes that can be reached in contiguous pieces. */
export interface ByteWindow {
  readonly length: number;
  /** The longest contiguous piece starting at `at`, at most `max` bytes (at < length). */
  piece(at: number, max: number): Uint8Array;
}

/** A plain buffer as a window. */
export function bufferWindow(bytes: Uint8Array): ByteWindow {
  return { length: bytes.byteLength, piece: (at, max) => bytes.subarray(at, at + Math.min(max, bytes.byteLength - at)) };
}

/** [offset, offset + length) of a MemoryBacking, mapped read-write until unmap(). */
export class MappedWindow implements ByteWindow {
  private mapping: Mapping | undefined;
  private readonly bytes: Uint8Array;

  private constructor(private readonly memory: MemoryBacking, mapping: Mapping, within: number, readonly length: number) {
    this.mapping = mapping;
    this.bytes = new Uint8Array(mapping.buffer, within, length);
  }

  /** Maps the pages holding [offset, offset + length) (length > 0). */
  static map(memory: MemoryBacking, pageSize: number, offset: number, length: number): MappedWindow {
    const start = offset - (offset % pageSize);
    const end = Math.ceil((offset + length) / pageSize) * pageSize;
    return new MappedWindow(memory, memory.map(start, end - start, PROT_READ | PROT_WRITE), offset - start, length);
  }

  get isMapped(): boolean {
    return this.mapping !== undefined;
  }

  piece(at: number, max: number): Uint8Array {
    if (!this.mapping) throw new Error('simgpu: access to a framebuffer window after it was unmapped');
    return this.bytes.subarray(at, at + Math.min(max, this.length - at));
  }

  /** Unmaps the window; idempotent. */
  unmap(): void {
    const mapping = this.mapping;
    if (!mapping) return;
    this.mapping = undefined;
    this.memory.unmap(mapping);
  }
}

interface PinChunk {
  readonly iova: bigint;
  readonly npage: number;
}

export class PinnedRange implements ByteWindow {
  private pinned = true;

  private constructor(
    private readonly dma: DmaSpace,
    private readonly pageSize: number,
    /** The first byte's IOVA. */
    readonly iova: bigint,
    readonly length: number,
    private readonly pages: readonly Uint8Array[],
    private readonly chunks: readonly PinChunk[],
  ) {}

  /**
   * Pins every page of [iova, iova + length) for `prot` (IOMMU_READ 1 | IOMMU_WRITE 2).
   * Throws the pin's SysError (EINVAL not mapped, EPERM protection, ENOMEM memlock...)
   * with nothing left pinned. A range of length 0 pins nothing.
   */
  static pin(dma: DmaSpace, pageSize: number, iova: bigint, length: number, prot: number): PinnedRange {
    if (length === 0) return new PinnedRange(dma, pageSize, iova, 0, [], []);
    const ps = BigInt(pageSize);
    if (iova < 0n || iova + BigInt(length) > 1n << 64n) throw sysError('EINVAL', 'vfio_pin_pages', undefined, `iova 0x${iova.toString(16)} + ${length} wraps`);
    const first = iova - (iova % ps);
    const npageTotal = Number((iova + BigInt(length) + ps - 1n) / ps - first / ps);
    const pages: Uint8Array[] = [];
    const chunks: PinChunk[] = [];
    try {
      for (let done = 0; done < npageTotal; done += PIN_PAGES_MAX) {
        const npage = Math.min(PIN_PAGES_MAX, npageTotal - done);
        const at = first + BigInt(done) * ps;
        const views = dma.pin(at, npage, prot);
        chunks.push({ iova: at, npage });
        if (views.length !== npage) throw sysError('EIO', 'vfio_pin_pages', undefined, `${views.length} views for ${npage} pages`);
        pages.push(...views);
      }
    } catch (err) {
      for (const c of chunks) unpinQuietly(dma, c);
      throw err;
    }
    return new PinnedRange(dma, pageSize, iova, length, pages, chunks);
  }

  get isPinned(): boolean {
    return this.pinned;
  }

  piece(at: number, max: number): Uint8Array {
    if (!this.pinned) throw new Error('simgpu: access to guest memory after it was unpinned');
    const pos = Number(this.iova % BigInt(this.pageSize)) + at;
    const page = this.pages[Math.floor(pos / this.pageSize)]!;
    const within = pos % this.pageSize;
    return page.subarray(within, within + Math.min(max, this.pageSize - within, this.length - at));
  }

  /** Whether any pinned page lies in [iova, iova + length). */
  overlaps(iova: bigint, length: bigint): boolean {
    if (!this.pinned) return false;
    const ps = BigInt(this.pageSize);
    return this.chunks.some((c) => c.iova < iova + length && iova < c.iova + BigInt(c.npage) * ps);
  }

  /** Drops this range's pins; idempotent. */
  unpin(): void {
    if (!this.pinned) return;
    this.pinned = false;
    for (const c of this.chunks) unpinQuietly(this.dma, c);
  }
}

function unpinQuietly(dma: DmaSpace, c: PinChunk): void {
  try {
    dma.unpin(c.iova, c.npage);
  } catch (err) {
    // The core drops a session's pins when it ends; an unpin after that is EINVAL.
    if (!isSysError(err)) throw err;
  }
}

/** Copies n bytes from src[srcAt..] to dst[dstAt..], piece by piece. */
export function copyBetween(src: ByteWindow, srcAt: number, dst: ByteWindow, dstAt: number, n: number): void {
  let done = 0;
  while (done < n) {
    const from = src.piece(srcAt + done, n - done);
    const to = dst.piece(dstAt + done, from.byteLength);
    to.set(from.subarray(0, to.byteLength));
    done += to.byteLength;
  }
}

/** Writes `bytes` at dst[dstAt..]. */
export function writeInto(dst: ByteWindow, dstAt: number, bytes: Uint8Array): void {
  copyBetween(bufferWindow(bytes), 0, dst, dstAt, bytes.byteLength);
}

/** Reads n bytes from src[srcAt..]. */
export function readFrom(src: ByteWindow, srcAt: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  copyBetween(src, srcAt, bufferWindow(out), 0, n);
  return out;
}

/**
 * Fills dst[dstAt, dstAt + n) with a repeating 32-bit little-endian pattern whose
 * byte 0 falls on every offset of the whole fill that is a multiple of 4 (`fillStart`
 * is where the whole fill began, so a fill done in steps stays in phase).
 */
export function fillPattern(dst: ByteWindow, dstAt: number, n: number, pattern: number, fillStart: number): void {
  const block = patternBlock(pattern);
  let done = 0;
  while (done < n) {
    const to = dst.piece(dstAt + done, Math.min(n - done, PATTERN_BLOCK));
    const phase = (dstAt + done - fillStart) % 4;
    to.set(block.subarray(phase, phase + to.byteLength));
    done += to.byteLength;
  }
}

const PATTERN_BLOCK = 4096;
let lastBlock: { pattern: number; bytes: Uint8Array } | undefined;

function patternBlock(pattern: number): Uint8Array {
  if (lastBlock?.pattern === pattern) return lastBlock.bytes;
  const bytes = new Uint8Array(PATTERN_BLOCK + 4);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < bytes.byteLength; i += 4) dv.setUint32(i, pattern >>> 0, true);
  lastBlock = { pattern, bytes };
  return bytes;
}
