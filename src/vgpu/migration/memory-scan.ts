// Finding what of a vGPU's memory must travel. Only what was ever written: for memory
// with a file (a sparse memfd) the kernel's SEEK_DATA/SEEK_HOLE give the extents that
// hold pages at all, so an 8 GiB framebuffer nobody wrote costs nothing to scan; without
// a file every chunk is read. A chunk reading as zeros travels only if it was sent
// before with other content (as a ZERO record). What was sent is remembered as a hash
// per chunk, so pre-copy and stop-copy send again only the chunks that changed.
import { createHash } from 'node:crypto';
import { addon } from '../../addon/addon.js';
import { isSysError } from '../../addon/errors.js';
import type { MemoryBacking } from '../vendor.js';

/** The unit of comparison and of DATA records. */
export const CHUNK = 64 * 1024;

const zeros = new Uint8Array(CHUNK);

/** Extents [start, end) of the backing that may hold non-zero bytes, chunk aligned. */
export function dataExtents(memory: MemoryBacking): [number, number][] {
  const size = memory.size;
  const file = memory.file;
  if (!file) return size > 0 ? [[0, size]] : [];
  const a = addon();
  const seekData = a.constants['SEEK_DATA'];
  const seekHole = a.constants['SEEK_HOLE'];
  if (seekData === undefined || seekHole === undefined) return [[0, size]];
  const extents: [number, number][] = [];
  const base = file.offset;
  let at = 0;
  while (at < size) {
    let start: number;
    try {
      start = Number(a.lseek(file.fd, BigInt(base + at), seekData)) - base;
    } catch (err) {
      if (isSysError(err, 'ENXIO')) break; // no data past here
      throw err;
    }
    if (start >= size) break;
    const end = Math.min(size, Number(a.lseek(file.fd, BigInt(base + start), seekHole)) - base);
    const from = Math.floor(start / CHUNK) * CHUNK;
    const to = Math.min(size, Math.ceil(end / CHUNK) * CHUNK);
    const last = extents.at(-1);
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else extents.push([from, to]);
    at = end;
  }
  return extents;
}

export interface ChunkChange {
  readonly memory: number;
  readonly offset: number;
  readonly length: number;
}

function hashOf(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('base64');
}

function isZero(bytes: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), Buffer.from(zeros.buffer, 0, bytes.byteLength)) === 0;
}

/** What was sent of each memory, and what has changed since. */
export class SentMemory {
  /** memory index -> chunk offset -> hash of the bytes sent (absent: nothing or zeros sent). */
  private readonly sent: Map<number, string>[];

  constructor(private readonly memories: readonly MemoryBacking[]) {
    this.sent = memories.map(() => new Map());
  }

  /** Chunks whose content differs from what was sent (reads every extent with data). */
  changes(): ChunkChange[] {
    const out: ChunkChange[] = [];
    const buf = new Uint8Array(CHUNK);
    this.memories.forEach((memory, index) => {
      const sent = this.sent[index]!;
      const visited = new Set<number>();
      for (const [from, to] of dataExtents(memory)) {
        for (let offset = from; offset < to; offset += CHUNK) {
          const length = Math.min(CHUNK, memory.size - offset);
          const view = buf.subarray(0, length);
          memory.read(offset, view);
          visited.add(offset);
          const before = sent.get(offset);
          if (isZero(view)) {
            if (before !== undefined) out.push({ memory: index, offset, length });
          } else if (before !== hashOf(view)) {
            out.push({ memory: index, offset, length });
          }
        }
      }
      // Chunks sent before that now lie in a hole read as zeros.
      for (const offset of sent.keys()) {
        if (!visited.has(offset)) out.push({ memory: index, offset, length: Math.min(CHUNK, memory.size - offset) });
      }
    });
    return out;
  }

  /** Reads a chunk now and records it as sent: its bytes, or undefined when it is all zeros. */
  take(change: ChunkChange): { bytes: Uint8Array | undefined; wasSent: boolean } {
    const memory = this.memories[change.memory]!;
    const bytes = new Uint8Array(change.length);
    memory.read(change.offset, bytes);
    const sent = this.sent[change.memory]!;
    const wasSent = sent.has(change.offset);
    if (isZero(bytes)) {
      sent.delete(change.offset);
      return { bytes: undefined, wasSent };
    }
    sent.set(change.offset, hashOf(bytes));
    return { bytes, wasSent };
  }
}

/** The chunks of the backing that hold non-zero bytes now (for a destination to clear). */
export function nonZeroChunks(memory: MemoryBacking): number[] {
  const out: number[] = [];
  const buf = new Uint8Array(CHUNK);
  for (const [from, to] of dataExtents(memory)) {
    for (let offset = from; offset < to; offset += CHUNK) {
      const view = buf.subarray(0, Math.min(CHUNK, memory.size - offset));
      memory.read(offset, view);
      if (!isZero(view)) out.push(offset);
    }
  }
  return out;
}
