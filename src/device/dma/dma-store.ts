// DMA ranges sorted by IOVA: the container's mappings in the mock kernel (struct
// vfio_dma), a vfio-user client's DMA regions in the device layer. Entries never
// overlap, so "sorted by start" is also "sorted by end". The store only reads `iova`
// and `size`; what else an entry holds is its owner's.

/** What the store needs of an entry: [iova, iova + size), page aligned, size > 0. */
export interface IovaRange {
  readonly iova: bigint;
  readonly size: bigint;
}

/** Entries per chunk: a chunk is a fixed slot of WIDTH entries in the store's flat arrays. */
const SHIFT = 6;
const WIDTH = 1 << SHIFT;
/**
 * Entries per chunk before it splits. Small enough that shifting a chunk's entries on
 * insert or remove is cheap (at 65,536 live, slots of 64 measured no worse than 32 or
 * 128). Slots are never given back to the allocator: a store keeps the room of its
 * largest size until it goes.
 */
const CHUNK_MAX = WIDTH - 1;
/** Up to here an IOVA converts to a double exactly (2^53 - 1). */
const EXACT_LIMIT = Number.MAX_SAFE_INTEGER;
const U64_LIMIT = 1n << 64n;

// A bigint to a double through a 64-bit typed array: V8 compiles the store and the two
// 32-bit loads inline, where Number(bigint) calls into the runtime (~4 ns against ~34 ns
// here). Exact below 2^53, correctly rounded above, for 0 <= b < 2^64 only: the store
// wraps anything else modulo 2^64, so callers route those to the exact paths first.
const scratch = new BigUint64Array(1);
const halves = new Uint32Array(scratch.buffer);
const LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HIGH = 1 - LOW;

function toDouble(b: bigint): number {
  scratch[0] = b;
  return halves[HIGH]! * 4294967296 + halves[LOW]!;
}

/** What translate() answers: valid until the store's next translate(). */
export interface Translation<M extends IovaRange = IovaRange> {
  mapping: M;
  /** The IOVA's offset in the mapping (exact below 2^53 bytes). */
  offset: number;
}

/**
 * Sorted chunks of sorted mappings (a flat two-level B-tree): an insert or remove moves
 * at most one chunk's entries, so 65535 mappings stay fast in any insertion order, and
 * one huge mapping (all guest RAM) is one entry like any other.
 *
 * Every chunk is a slot of WIDTH entries in three flat arrays (first addresses, past-the
 * -end addresses, mappings), and the chunks' order and last ends are two more: a search
 * reads contiguous numbers, with no object to follow per level.
 *
 * Searches compare doubles, not bigints (no allocation, no pointer chasing per step).
 * Mappings are page aligned, so their first and past-the-end addresses are exact as
 * doubles up to 2^64 (52 significant bits at most). A query IOVA past 2^53 may round,
 * but only towards a neighbouring boundary, so the search lands on the right mapping or
 * the one after it, and an exact bigint comparison settles which.
 *
 * A finger remembers where the last search landed. The ioctl paths ask about one place
 * several times in a row (MAP: overlap, then insert; UNMAP: both ends, the first
 * mapping, the next one, the removals) and DMA tends to stay in one mapping, so most
 * searches are answered by checking the finger's entry and the one after it.
 */
export class DmaStore<M extends IovaRange = IovaRange> {
  // Slots: chunk storage, entry k of slot s at (s << SHIFT) + k.
  private starts: Float64Array = new Float64Array(4 * WIDTH);
  private ends: Float64Array = new Float64Array(4 * WIDTH);
  private items: (M | undefined)[] = new Array<M | undefined>(4 * WIDTH).fill(undefined);
  private lengths = new Int32Array(4);
  private slotsUsed = 0;
  private readonly freeSlots: number[] = [];
  // Chunks in IOVA order: their slots and the past-the-end address of each one's last mapping.
  private order = new Int32Array(16);
  private chunkEnds = new Float64Array(16);
  private n = 0;
  private total = 0;
  /** The finger: a chunk (by order) and an entry in it; none when fc >= n. */
  private fc = 0;
  private fi = 0;
  // translate()'s last hit, checked before anything else (DMA tends to stay in one
  // mapping); emptied by every insert and remove.
  private hitStart = 0;
  private hitEnd = -1;
  private hitMapping: M | undefined;
  private readonly translation: Translation<M> = { mapping: undefined as unknown as M, offset: 0 };

  get count(): number {
    return this.total;
  }

  /** Every mapping, by IOVA. Take a copy ([...values()]) before removing while iterating. */
  *values(): IterableIterator<M> {
    for (let c = 0; c < this.n; c++) {
      const slot = this.order[c]!;
      const base = slot << SHIFT;
      for (let i = 0; i < this.lengths[slot]!; i++) yield this.items[base + i]!;
    }
  }

  /** The first mapping that ends above `iova` (the one containing it, or the next one). */
  first(iova: bigint): M | undefined {
    scratch[0] = iova; // toDouble(iova), written out: this is the hot path
    const q = halves[HIGH]! * 4294967296 + halves[LOW]!;
    if (q > EXACT_LIMIT || iova >= U64_LIMIT) return this.firstExact(iova);
    return this.seek(q) ? this.fingerItem() : undefined;
  }

  /** The mapping after `m` in IOVA order. */
  next(m: M): M | undefined {
    // After first(m.iova) or the previous next(), the finger is on m: step from there.
    if (this.fc >= this.n || this.fingerItem() !== m) return this.first(m.iova + m.size);
    if (this.fi + 1 < this.lengths[this.order[this.fc]!]!) {
      this.fi++;
    } else {
      if (this.fc + 1 === this.n) return undefined;
      this.fc++;
      this.fi = 0;
    }
    return this.fingerItem();
  }

  /**
   * A mapping overlapping [start, start+size), as vfio_find_dma answers; with size 0 the
   * kernel's comparison finds only a mapping that starts strictly below `start`.
   */
  find(start: bigint, size: bigint): M | undefined {
    scratch[0] = start; // toDouble(start), written out: this is the hot path
    const q = halves[HIGH]! * 4294967296 + halves[LOW]!;
    if (q > EXACT_LIMIT || start >= U64_LIMIT) return this.findExact(start, size);
    if (!this.seek(q)) return undefined;
    const at = (this.order[this.fc]! << SHIFT) + this.fi;
    const first = this.starts[at]!;
    if (size === 0n) return first < q ? this.items[at] : undefined;
    const end = q + toDouble(size);
    if (end > EXACT_LIMIT || size >= U64_LIMIT) return this.findExact(start, size);
    return first < end ? this.items[at] : undefined;
  }

  /** The mapping that contains `iova`. */
  containing(iova: bigint): M | undefined {
    return this.translate(iova)?.mapping;
  }

  /** The mapping that contains `iova` and the offset in it (one shared answer object). */
  translate(iova: bigint): Translation<M> | undefined {
    scratch[0] = iova; // toDouble(iova), written out: this is the hot path
    const q = halves[HIGH]! * 4294967296 + halves[LOW]!;
    if (this.hitStart <= q && q < this.hitEnd && q <= EXACT_LIMIT && iova < U64_LIMIT) {
      this.translation.mapping = this.hitMapping!;
      this.translation.offset = q - this.hitStart;
      return this.translation;
    }
    if (q > EXACT_LIMIT || iova >= U64_LIMIT) return this.translateExact(iova);
    if (!this.seek(q)) return undefined;
    const at = (this.order[this.fc]! << SHIFT) + this.fi;
    const start = this.starts[at]!;
    if (start > q) return undefined;
    this.hitStart = start;
    this.hitEnd = this.ends[at]!;
    this.hitMapping = this.items[at]!;
    this.translation.mapping = this.hitMapping;
    this.translation.offset = q - start;
    return this.translation;
  }

  /** Adds a mapping; it must not overlap one in the store (callers check with find()). */
  insert(mapping: M): void {
    let start = toDouble(mapping.iova);
    let end = start + toDouble(mapping.size);
    if (end > EXACT_LIMIT) {
      start = Number(mapping.iova);
      end = Number(mapping.iova + mapping.size);
    }
    let c: number;
    let at: number;
    if (this.seek(start)) {
      c = this.fc;
      at = this.fi;
      if (this.starts[(this.order[c]! << SHIFT) + at]! < end) throw new Error('DMA mapping overlaps one in the store');
    } else if (this.n > 0) {
      c = this.n - 1;
      at = this.lengths[this.order[c]!]!;
    } else {
      this.order[0] = this.allocSlot();
      this.n = 1;
      c = 0;
      at = 0;
    }
    const slot = this.order[c]!;
    const base = slot << SHIFT;
    const { items, starts, ends } = this;
    const length = this.lengths[slot]!;
    // Plain loops: for at most a chunk's entries they beat copyWithin's call overhead.
    for (let k = base + length; k > base + at; k--) {
      items[k] = items[k - 1];
      starts[k] = starts[k - 1]!;
      ends[k] = ends[k - 1]!;
    }
    items[base + at] = mapping;
    starts[base + at] = start;
    ends[base + at] = end;
    this.lengths[slot] = length + 1;
    if (at === length) this.chunkEnds[c] = end;
    this.total++;
    this.forgetHit();
    this.fc = c;
    this.fi = at;
    if (length + 1 > CHUNK_MAX) this.split(c);
  }

  /** Removes a mapping of the store (the same object); anything else throws. */
  remove(mapping: M): void {
    let c = this.fc;
    let at = this.fi;
    // After first(), the finger is on it; after next(), on the one after it.
    const onFinger = c < this.n && this.fingerItem() === mapping;
    if (!onFinger) {
      if (c < this.n && at > 0 && this.items[(this.order[c]! << SHIFT) + at - 1] === mapping) {
        at--;
      } else {
        // Its start is exact (page aligned): the first mapping ending above it is itself.
        const q = toDouble(mapping.iova);
        if (!this.seek(q > EXACT_LIMIT ? Number(mapping.iova) : q) || this.fingerItem() !== mapping) {
          throw new Error('DMA mapping is not in the store');
        }
        c = this.fc;
        at = this.fi;
      }
    }
    const slot = this.order[c]!;
    const base = slot << SHIFT;
    const { items, starts, ends } = this;
    const length = this.lengths[slot]! - 1;
    for (let k = base + at; k < base + length; k++) {
      items[k] = items[k + 1];
      starts[k] = starts[k + 1]!;
      ends[k] = ends[k + 1]!;
    }
    items[base + length] = undefined; // no reference kept to a removed mapping
    this.lengths[slot] = length;
    this.total--;
    this.forgetHit();
    if (length === 0) {
      this.freeSlots.push(slot);
      this.order.copyWithin(c, c + 1, this.n);
      this.chunkEnds.copyWithin(c, c + 1, this.n);
      this.n--;
      this.fc = c;
      this.fi = 0;
      return;
    }
    if (at === length) {
      this.chunkEnds[c] = ends[base + length - 1]!;
      this.fc = c + 1;
      this.fi = 0;
    } else {
      this.fc = c;
      this.fi = at;
    }
  }

  private forgetHit(): void {
    this.hitEnd = -1;
    this.hitMapping = undefined;
  }

  private fingerItem(): M | undefined {
    return this.items[(this.order[this.fc]! << SHIFT) + this.fi];
  }

  /**
   * Moves the finger to the first mapping that ends above `q` (what a binary search over
   * every end would answer); false, finger unmoved, when none does. Checks the finger's
   * entry and the one after it before searching.
   */
  private seek(q: number): boolean {
    const { ends, order } = this;
    const n = this.n;
    let c = this.fc;
    if (c < n) {
      let base = order[c]! << SHIFT;
      let i = this.fi;
      const below = i > 0 ? ends[base + i - 1]! : c > 0 ? this.chunkEnds[c - 1]! : -Infinity;
      if (below <= q) {
        if (q < ends[base + i]!) return true;
        if (++i === this.lengths[order[c]!]) {
          if (++c === n) return false;
          base = order[c]! << SHIFT;
          i = 0;
        }
        if (q < ends[base + i]!) {
          this.fc = c;
          this.fi = i;
          return true;
        }
      }
    }
    c = upperBound(this.chunkEnds, q, 0, n);
    if (c === n) return false;
    const slot = order[c]!;
    const base = slot << SHIFT;
    this.fc = c;
    this.fi = upperBound(ends, q, base, base + this.lengths[slot]!) - base;
    return true;
  }

  /** A free slot for a chunk (growing the slot arrays when every one is taken). */
  private allocSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) {
      this.lengths[reused] = 0;
      return reused;
    }
    if (this.slotsUsed === this.lengths.length) {
      const capacity = this.lengths.length * 2;
      const grow = (old: Float64Array): Float64Array => {
        const bigger = new Float64Array(capacity * WIDTH);
        bigger.set(old);
        return bigger;
      };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
      for (let k = this.items.length; k < capacity * WIDTH; k++) this.items.push(undefined);
      const lengths = new Int32Array(capacity);
      lengths.set(this.lengths);
      this.lengths = lengths;
    }
    if (this.n === this.order.length) {
      const order = new Int32Array(this.order.length * 2);
      order.set(this.order);
      this.order = order;
      const chunkEnds = new Float64Array(this.chunkEnds.length * 2);
      chunkEnds.set(this.chunkEnds);
      this.chunkEnds = chunkEnds;
    }
    this.lengths[this.slotsUsed] = 0;
    return this.slotsUsed++;
  }

  /** Moves the upper half of chunk c into a new chunk after it. */
  private split(c: number): void {
    const upper = this.allocSlot();
    const slot = this.order[c]!;
    const base = slot << SHIFT;
    const upperBase = upper << SHIFT;
    const { items, starts, ends } = this;
    const length = this.lengths[slot]!;
    const half = length >> 1;
    for (let k = 0; k < length - half; k++) {
      items[upperBase + k] = items[base + half + k];
      items[base + half + k] = undefined;
      starts[upperBase + k] = starts[base + half + k]!;
      ends[upperBase + k] = ends[base + half + k]!;
    }
    this.lengths[slot] = half;
    this.lengths[upper] = length - half;
    this.order.copyWithin(c + 2, c + 1, this.n);
    this.chunkEnds.copyWithin(c + 2, c + 1, this.n);
    this.order[c + 1] = upper;
    this.n++;
    this.chunkEnds[c] = ends[base + half - 1]!;
    this.chunkEnds[c + 1] = ends[upperBase + length - half - 1]!;
    if (this.fc === c && this.fi >= half) {
      this.fc = c + 1;
      this.fi -= half;
    } else if (this.fc > c) {
      this.fc++;
    }
  }

  /** The last mapping, if any. */
  private last(): M | undefined {
    if (this.n === 0) return undefined;
    const slot = this.order[this.n - 1]!;
    return this.items[(slot << SHIFT) + this.lengths[slot]! - 1];
  }

  /** first() past 2^53: the double search found the answer or one mapping later. */
  private firstExact(iova: bigint): M | undefined {
    if (!this.seek(Number(iova))) {
      const last = this.last();
      return last && last.iova + last.size > iova ? last : undefined;
    }
    const found = this.fingerItem()!;
    let prev: M | undefined;
    if (this.fi > 0) {
      prev = this.items[(this.order[this.fc]! << SHIFT) + this.fi - 1];
    } else if (this.fc > 0) {
      const slot = this.order[this.fc - 1]!;
      prev = this.items[(slot << SHIFT) + this.lengths[slot]! - 1];
    }
    return prev && prev.iova + prev.size > iova ? prev : found;
  }

  private findExact(start: bigint, size: bigint): M | undefined {
    const m = this.firstExact(start);
    if (!m) return undefined;
    return (size === 0n ? m.iova < start : m.iova < start + size) ? m : undefined;
  }

  private translateExact(iova: bigint): Translation<M> | undefined {
    const m = this.firstExact(iova);
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
