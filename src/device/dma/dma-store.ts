// DMA ranges sorted by IOVA, found by binary search: the container's mappings in the
// mock kernel (struct vfio_dma), a vfio-user client's DMA regions in the device layer.
// Entries never overlap, so "sorted by start" is also "sorted by end". The store only
// reads `iova` and `size`; what else an entry holds is its owner's.

/** What the store needs of an entry: [iova, iova + size), page aligned, size > 0. */
export interface IovaRange {
  readonly iova: bigint;
  readonly size: bigint;
}

/** Entries per chunk before it splits: keeps inserts and removes cheap at any position. */
const CHUNK_MAX = 256;
/** Up to here an IOVA converts to a double exactly (2^53 - 1). */
const EXACT_LIMIT = Number.MAX_SAFE_INTEGER;

/** A run of mappings in IOVA order, with their first and past-the-end addresses as doubles. */
interface Chunk<M> {
  readonly items: M[];
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  length: number;
}

/** What translate() answers: valid until the store's next translate(). */
export interface Translation<M extends IovaRange = IovaRange> {
  mapping: M;
  /** The IOVA's offset in the mapping (exact below 2^53 bytes). */
  offset: number;
}

function newChunk<M>(): Chunk<M> {
  return { items: [], starts: new Float64Array(CHUNK_MAX + 1), ends: new Float64Array(CHUNK_MAX + 1), length: 0 };
}

/**
 * Sorted chunks of sorted mappings (a flat two-level B-tree): an insert or remove moves
 * at most one chunk's entries, so 65535 mappings stay fast in any insertion order.
 *
 * Searches compare doubles, not bigints (no allocation, no pointer chasing per step).
 * Mappings are page aligned, so their first and past-the-end addresses are exact as
 * doubles up to 2^64 (52 significant bits at most). A query IOVA past 2^53 may round,
 * but only towards a neighbouring boundary, so the search lands on the right mapping or
 * the one after it, and an exact bigint comparison settles which.
 */
export class DmaStore<M extends IovaRange = IovaRange> {
  private readonly chunks: Chunk<M>[] = [];
  /** The past-the-end address of each chunk's last mapping. */
  private chunkEnds = new Float64Array(16);
  private total = 0;
  /** The chunk and index of the last translate() hit: DMA tends to stay in one mapping. */
  private lastChunk: Chunk<M> | undefined;
  private lastIndex = 0;
  private readonly translation: Translation<M> = { mapping: undefined as unknown as M, offset: 0 };

  get count(): number {
    return this.total;
  }

  /** Every mapping, by IOVA. Take a copy ([...values()]) before removing while iterating. */
  *values(): IterableIterator<M> {
    for (const chunk of this.chunks) yield* chunk.items;
  }

  /** The first mapping that ends above `iova` (the one containing it, or the next one). */
  first(iova: bigint): M | undefined {
    const q = Number(iova);
    const c = upperBound(this.chunkEnds, q, 0, this.chunks.length);
    if (c === this.chunks.length) return q > EXACT_LIMIT ? this.lastIfEndsAbove(iova) : undefined;
    const chunk = this.chunks[c]!;
    const i = upperBound(chunk.ends, q, 0, chunk.length);
    return q > EXACT_LIMIT ? this.settle(c, i, iova) : chunk.items[i];
  }

  /** The mapping after `m` in IOVA order. */
  next(m: M): M | undefined {
    return this.first(m.iova + m.size);
  }

  /**
   * A mapping overlapping [start, start+size), as vfio_find_dma answers; with size 0 the
   * kernel's comparison finds only a mapping that starts strictly below `start`.
   */
  find(start: bigint, size: bigint): M | undefined {
    const m = this.first(start);
    if (!m) return undefined;
    return (size === 0n ? m.iova < start : m.iova < start + size) ? m : undefined;
  }

  /** The mapping that contains `iova`. */
  containing(iova: bigint): M | undefined {
    return this.translate(iova)?.mapping;
  }

  /** The mapping that contains `iova` and the offset in it (one shared answer object). */
  translate(iova: bigint): Translation<M> | undefined {
    const q = Number(iova);
    if (q > EXACT_LIMIT) return this.translateExact(iova);
    let chunk = this.lastChunk;
    let i = this.lastIndex;
    if (!chunk || !(chunk.starts[i]! <= q && q < chunk.ends[i]!)) {
      const c = upperBound(this.chunkEnds, q, 0, this.chunks.length);
      if (c === this.chunks.length) return undefined;
      chunk = this.chunks[c]!;
      i = upperBound(chunk.ends, q, 0, chunk.length);
      if (chunk.starts[i]! > q) return undefined;
      this.lastChunk = chunk;
      this.lastIndex = i;
    }
    this.translation.mapping = chunk.items[i]!;
    this.translation.offset = q - chunk.starts[i]!;
    return this.translation;
  }

  insert(mapping: M): void {
    const start = Number(mapping.iova);
    const end = Number(mapping.iova + mapping.size);
    let c = upperBound(this.chunkEnds, end, 0, this.chunks.length);
    if (c === this.chunks.length) c--;
    if (c < 0) {
      this.chunks.push(newChunk<M>());
      this.growChunkEnds();
      c = 0;
    }
    const chunk = this.chunks[c]!;
    const at = upperBound(chunk.ends, end, 0, chunk.length);
    chunk.items.splice(at, 0, mapping);
    chunk.starts.copyWithin(at + 1, at, chunk.length);
    chunk.ends.copyWithin(at + 1, at, chunk.length);
    chunk.starts[at] = start;
    chunk.ends[at] = end;
    chunk.length++;
    this.chunkEnds[c] = chunk.ends[chunk.length - 1]!;
    if (chunk.length > CHUNK_MAX) this.split(c);
    this.total++;
    this.lastChunk = undefined;
  }

  remove(mapping: M): void {
    const end = Number(mapping.iova + mapping.size);
    // Its own past-the-end address is in the store: the first one not below it is its own.
    const c = lowerBound(this.chunkEnds, end, 0, this.chunks.length);
    const chunk = this.chunks[c];
    const at = chunk ? lowerBound(chunk.ends, end, 0, chunk.length) : -1;
    if (!chunk || chunk.items[at] !== mapping) throw new Error('DMA mapping is not in the store');
    chunk.items.splice(at, 1);
    chunk.starts.copyWithin(at, at + 1, chunk.length);
    chunk.ends.copyWithin(at, at + 1, chunk.length);
    chunk.length--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.chunkEnds.copyWithin(c, c + 1, this.chunks.length + 1);
    } else {
      this.chunkEnds[c] = chunk.ends[chunk.length - 1]!;
    }
    this.total--;
    this.lastChunk = undefined;
  }

  private split(c: number): void {
    const chunk = this.chunks[c]!;
    const half = chunk.length >> 1;
    const upper = newChunk<M>();
    upper.items.push(...chunk.items.splice(half));
    upper.length = chunk.length - half;
    upper.starts.set(chunk.starts.subarray(half, chunk.length));
    upper.ends.set(chunk.ends.subarray(half, chunk.length));
    chunk.length = half;
    this.chunks.splice(c + 1, 0, upper);
    this.growChunkEnds();
    this.chunkEnds.copyWithin(c + 2, c + 1, this.chunks.length - 1);
    this.chunkEnds[c] = chunk.ends[half - 1]!;
    this.chunkEnds[c + 1] = upper.ends[upper.length - 1]!;
  }

  private growChunkEnds(): void {
    if (this.chunks.length <= this.chunkEnds.length) return;
    const bigger = new Float64Array(this.chunkEnds.length * 2);
    bigger.set(this.chunkEnds);
    this.chunkEnds = bigger;
  }

  /** Past 2^53 the double search found (c, i) or one mapping later: the one before may be it. */
  private settle(c: number, i: number, iova: bigint): M | undefined {
    const chunk = this.chunks[c]!;
    const before = i > 0 ? chunk : this.chunks[c - 1];
    const prev = before?.items[(i > 0 ? i : before.length) - 1];
    return prev && prev.iova + prev.size > iova ? prev : chunk.items[i];
  }

  private lastIfEndsAbove(iova: bigint): M | undefined {
    const chunk = this.chunks[this.chunks.length - 1];
    const last = chunk?.items[chunk.length - 1];
    return last && last.iova + last.size > iova ? last : undefined;
  }

  private translateExact(iova: bigint): Translation<M> | undefined {
    const m = this.first(iova);
    if (!m || m.iova > iova) return undefined;
    this.translation.mapping = m;
    this.translation.offset = Number(iova - m.iova);
    return this.translation;
  }
}

/** Index of the first element in [lo, hi) greater than `value`. */
function upperBound(list: Float64Array, value: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element in [lo, hi) not less than `value`. */
function lowerBound(list: Float64Array, value: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
