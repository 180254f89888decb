// Region dispatch for one BAR of a vGPU: each access (pread/pwrite of any length at any
// offset) is clipped at the BAR's end, then walked area by area: a trapped area gets
// naturally aligned 4/2/1-byte pieces (never 8, as vfio-pci on x86), a mapped area is
// copied from or to its memory through the backing's read/write (the memory may be
// larger than any one view of it), and bytes no area covers read all ones and drop
// writes. This is the hot path: the area list is flattened into arrays once, the last
// area hit is remembered, and a register-sized access allocates nothing (it goes
// through a small scratch buffer of its own size).
import { sysError } from '../../addon/errors.js';
import type { Mapping } from '../../sys/types.js';
import type { MappedArea, MemoryBacking, RegisterHandler, VgpuBar, VgpuBarArea } from '../vendor.js';

const KIND_TRAPPED = 0;
const KIND_MAPPED = 1;

export class BarDispatch {
  readonly index: number;
  readonly size: number;
  readonly isIo: boolean;
  /** Areas sorted by offset, flattened for lookup. */
  private readonly starts: number[];
  private readonly ends: number[];
  private readonly kinds: number[];
  private readonly handlers: (RegisterHandler | undefined)[];
  private readonly backings: (MemoryBacking | undefined)[];
  private last = 0;
  /** By length 0..8: buffers for register-sized accesses to memory. */
  private readonly scratch = Array.from({ length: 9 }, (_, n) => new Uint8Array(n));
  /** The mapped areas, for the sparse mmap capability. */
  readonly mappedAreas: readonly MappedArea[];

  /** `areas`: the vendor's plus the core's own (the MSI-X table and PBA); validated by the caller. */
  constructor(bar: VgpuBar, areas: readonly VgpuBarArea[]) {
    this.index = bar.index;
    this.size = bar.size;
    this.isIo = bar.kind === 'io';
    const sorted = [...areas].sort((a, b) => a.offset - b.offset);
    this.starts = sorted.map((a) => a.offset);
    this.ends = sorted.map((a) => a.offset + a.size);
    this.kinds = sorted.map((a) => (a.kind === 'trapped' ? KIND_TRAPPED : KIND_MAPPED));
    this.handlers = sorted.map((a) => (a.kind === 'trapped' ? a.handler : undefined));
    this.backings = sorted.map((a) => (a.kind === 'mapped' ? a.memory : undefined));
    this.mappedAreas = sorted.filter((a): a is MappedArea => a.kind === 'mapped');
  }

  /** The area holding `pos`, or -1 - (index of the next area) when none does. */
  private find(pos: number): number {
    const last = this.last;
    if (last < this.starts.length && pos >= this.starts[last]! && pos < this.ends[last]!) return last;
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! <= pos) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.starts.length && pos >= this.starts[lo]!) {
      this.last = lo;
      return lo;
    }
    return -1 - lo;
  }

  /** vfio_pci_bar_rw's shape: bytes done; EINVAL at or past the end. */
  rw(buf: Uint8Array, pos: number, iswrite: boolean): number {
    const size = this.size;
    if (pos >= size) {
      throw sysError('EINVAL', iswrite ? 'pwrite' : 'pread', undefined, `offset 0x${pos.toString(16)} is past BAR${this.index}'s ${size} bytes`);
    }
    const count = Math.min(buf.byteLength, size - pos);
    let done = 0;
    while (done < count) {
      const off = pos + done;
      const i = this.find(off);
      if (i < 0) {
        const next = -1 - i;
        const stop = next < this.starts.length ? this.starts[next]! : size;
        const n = Math.min(count - done, stop - off);
        if (!iswrite) buf.fill(0xff, done, done + n);
        done += n;
        continue;
      }
      const n = Math.min(count - done, this.ends[i]! - off);
      const rel = off - this.starts[i]!;
      if (this.kinds[i] === KIND_MAPPED) this.copyMemory(this.backings[i]!, rel, buf, done, n, iswrite);
      else if (iswrite) writePieces(this.handlers[i]!, rel, buf, done, n);
      else readPieces(this.handlers[i]!, rel, buf, done, n);
      done += n;
    }
    return done;
  }

  /** mmap of [pos, pos + length): only inside one mapped area. */
  mmap(pos: number, length: number, prot: number, pageSize: number): Mapping {
    const i = pos < this.size ? this.find(pos) : -1;
    if (i < 0 || this.kinds[i] !== KIND_MAPPED) {
      throw sysError('EINVAL', 'mmap', undefined, `BAR${this.index}+0x${pos.toString(16)} is not in a mappable area`);
    }
    const rel = pos - this.starts[i]!;
    const areaPages = Math.ceil((this.ends[i]! - this.starts[i]!) / pageSize) * pageSize;
    if (rel + length > areaPages) {
      throw sysError('EINVAL', 'mmap', undefined, `BAR${this.index}: ${length} bytes at 0x${pos.toString(16)} run past the mappable area`);
    }
    return this.backings[i]!.map(rel, length, prot);
  }

  /** Copies n bytes between buf[at..] and the memory at rel. */
  private copyMemory(mem: MemoryBacking, rel: number, buf: Uint8Array, at: number, n: number, iswrite: boolean): void {
    if (n <= 8) {
      const s = this.scratch[n]!;
      if (iswrite) {
        for (let k = 0; k < n; k++) s[k] = buf[at + k]!;
        mem.write(rel, s);
      } else {
        mem.read(rel, s);
        for (let k = 0; k < n; k++) buf[at + k] = s[k]!;
      }
      return;
    }
    const part = at === 0 && n === buf.byteLength ? buf : buf.subarray(at, at + n);
    if (iswrite) mem.write(rel, part);
    else mem.read(rel, part);
  }
}

export function readPieces(handler: RegisterHandler, rel: number, buf: Uint8Array, at: number, n: number): void {
  const end = rel + n;
  while (rel < end) {
    const left = end - rel;
    if (left >= 4 && (rel & 3) === 0) {
      const v = handler.read(rel, 4);
      buf[at] = v;
      buf[at + 1] = v >>> 8;
      buf[at + 2] = v >>> 16;
      buf[at + 3] = v >>> 24;
      rel += 4;
      at += 4;
    } else if (left >= 2 && (rel & 1) === 0) {
      const v = handler.read(rel, 2);
      buf[at] = v;
      buf[at + 1] = v >>> 8;
      rel += 2;
      at += 2;
    } else {
      buf[at] = handler.read(rel, 1);
      rel += 1;
      at += 1;
    }
  }
}

export function writePieces(handler: RegisterHandler, rel: number, buf: Uint8Array, at: number, n: number): void {
  const end = rel + n;
  while (rel < end) {
    const left = end - rel;
    if (left >= 4 && (rel & 3) === 0) {
      handler.write(rel, 4, (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0);
      rel += 4;
      at += 4;
    } else if (left >= 2 && (rel & 1) === 0) {
      handler.write(rel, 2, buf[at]! | (buf[at + 1]! << 8));
      rel += 2;
      at += 2;
    } else {
      handler.write(rel, 1, buf[at]!);
      rel += 1;
      at += 1;
    }
  }
}
