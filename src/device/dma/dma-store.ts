// DMA ranges by IOVA: the container's mappings in the mock kernel (struct vfio_dma), a
// vfio-user client's DMA regions in the device layer. Entries never overlap. The store
// only reads `iova` and `size`; what else an entry holds is its owner's.

/** What the store needs of an entry: [iova, iova + size), 4 KiB aligned, size > 0, below 2^64. */
export interface IovaRange {
  readonly iova: bigint;
  readonly size: bigint;
}

/** What translate() answers: valid until the store's next translate(). */
export interface Translation<M extends IovaRange = IovaRange> {
  readonly mapping: M;
  /** The IOVA's offset in the mapping (exact below 2^53 bytes). */
  readonly offset: number;
}

/** The store's unit: 4 KiB, the smallest page an IOMMU maps. Any larger page size is a multiple. */
const PAGE_SHIFT = 12;
const PAGE_MASK = (1 << PAGE_SHIFT) - 1;
/** Index bits per level: 512 entries per table, as an x86 or Arm IOMMU page table. */
const BITS = 9;
const FANOUT = 1 << BITS;
const INDEX_MASK = FANOUT - 1;
const WORDS = FANOUT / 32;
/** 6 levels of 9 bits cover the 52 bits of a 4 KiB page number below 2^64. */
const MAX_LEVELS = 6;
/** Pages one entry covers at each level (SPAN[MAX_LEVELS]: what a full-height root covers). */
const SPAN = Array.from({ length: MAX_LEVELS + 1 }, (_, level) => 2 ** (BITS * level));
/** 1 / SPAN, exact powers of two: a page number times INVERSE[level], truncated, is its index above that level. */
const INVERSE = new Float64Array(SPAN.map((span) => 1 / span));

// A bigint's two 32-bit halves through a 64-bit typed array: V8 compiles the store and
// the loads inline, where Number(bigint) or bigint shifts call into the runtime and
// allocate. Callers first check 0 <= b < 2^64 (the array would wrap anything else).
const scratch = new BigUint64Array(1);
const halves = new Uint32Array(scratch.buffer);
const LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HIGH = 1 - LOW;

function inU64(b: bigint): boolean {
  return BigInt.asUintN(64, b) === b;
}

/** The page number of 0 <= b < 2^64 (exact: at most 52 bits). */
function pageOf(b: bigint): number {
  scratch[0] = b;
  return halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (halves[LOW]! >>> PAGE_SHIFT);
}

/**
 * The mappings in a page table, as the IOMMU itself keeps them: a radix tree of 512-entry
 * tables indexed by the bits of the page number, 9 at a time. An entry is empty, a table
 * of the level below, or a mapping that covers the entry's whole span, so a 1 GiB mapping
 * at a 1 GiB boundary is one entry two levels up (a superpage), a single page one leaf
 * entry, and any range at most 2 x 511 entries per level. A lookup reads one entry per
 * level (two for the first 1 GiB of IOVA space, three for the first 512 GiB) with no
 * comparisons; walks in IOVA order skip empty entries through each table's bitmap.
 *
 * The tree is as tall as the highest mapping needs. Tables live in one flat Int32Array
 * (table t's entries at t * 512), with their bitmaps and fill counts beside it; a table
 * that empties goes back to a free list. Memory follows the mappings' layout, as the
 * IOMMU's does: dense mappings share tables (~8 bytes of table a mapping at 65,536 single
 * pages every other page, ~41 with the per-mapping arrays), an isolated single page costs
 * a table per level it does not share (~4.2 KB over 2^48 bytes: bench dma-tracker).
 *
 * Entry values: 0 empty, > 0 a table's index, < 0 the mapping numbered ~value. Mapping
 * numbers index `items` and the first/end page arrays, and are reused after removal.
 */
export class DmaStore<M extends IovaRange = IovaRange> {
  private entries = new Int32Array(4 * FANOUT);
  private bitmaps = new Int32Array(4 * WORDS);
  private fills = new Int32Array(4);
  /** Table 0 is never used: an entry of 0 means empty. */
  private tablesUsed = 2; // and table 1 is the first root
  private readonly freeTables: number[] = [];
  private root = 1;
  /** Levels from the root table down to the leaves. */
  private height = 1;

  private items: (M | undefined)[] = [];
  private firstPages = new Float64Array(64);
  private endPages = new Float64Array(64);
  private readonly freeNumbers: number[] = [];
  private total = 0;

  // translate()'s last hit, checked before anything else (DMA tends to stay in one
  // mapping); emptied by every insert and remove.
  private hitFirst = 0;
  private hitEnd = 0;
  private readonly translation: { mapping: M; offset: number } = { mapping: undefined as unknown as M, offset: 0 };

  get count(): number {
    return this.total;
  }

  /** Bytes the store holds (its arrays at their capacity; the mappings themselves are their owner's). */
  get byteLength(): number {
    const arrays = [this.entries, this.bitmaps, this.fills, this.firstPages, this.endPages];
    // items: one pointer (8 bytes) per number ever handed out.
    return arrays.reduce((sum, array) => sum + array.byteLength, 0) + 8 * this.items.length;
  }

  /** Page tables held now, the root included (2 KiB of entries and 64 bytes of bitmap each). */
  get tables(): number {
    return this.tablesUsed - 1 - this.freeTables.length;
  }

  /** Every mapping, by IOVA. Take a copy ([...values()]) before removing while iterating. */
  *values(): IterableIterator<M> {
    let last = -1;
    for (let n = this.firstAtOrAfter(0); n >= 0; n = this.firstAtOrAfter(this.endPages[n]!)) {
      if (n === last) break;
      last = n;
      yield this.items[n]!;
    }
  }

  /**
   * The first mapping that ends above `iova` (the one containing it, or the next one);
   * with `end`, only if it starts below `end`. A walk over [iova, end) is first(iova,
   * end), then next(m, end) until undefined: bounded so, it never reads the mapping
   * past the range (a cache miss per walk on a large store).
   */
  first(iova: bigint, end?: bigint): M | undefined {
    if (!inU64(iova)) return undefined;
    return this.bounded(this.firstAtOrAfter(pageOf(iova)), end);
  }

  /** The mapping after `m` in IOVA order; with `end`, only if it starts below `end`. */
  next(m: M, end?: bigint): M | undefined {
    return this.bounded(this.firstAtOrAfter(pageOf(m.iova) + pageOf(m.size)), end);
  }

  /**
   * A mapping overlapping [start, start+size), as vfio_find_dma answers; with size 0 the
   * kernel's comparison finds only a mapping that starts strictly below `start`.
   */
  find(start: bigint, size: bigint): M | undefined {
    if (!inU64(start)) return undefined;
    scratch[0] = start;
    const low = halves[LOW]!;
    const page = halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (low >>> PAGE_SHIFT);
    if (size === 0n) {
      const n = this.numberAt(page);
      if (n < 0 || (this.firstPages[n] === page && (low & PAGE_MASK) === 0)) return undefined;
      return this.items[n];
    }
    const n = this.firstAtOrAfter(page);
    if (n < 0) return undefined;
    if (!inU64(size)) return this.items[n]; // reaches past 2^64: whatever comes next overlaps
    scratch[0] = size;
    const sizeLow = halves[LOW]!;
    const sizePages = halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (sizeLow >>> PAGE_SHIFT);
    // The page of the range's last byte, start + size - 1, without a bigint.
    const lastPage = page + sizePages + Math.floor(((low & PAGE_MASK) + (sizeLow & PAGE_MASK) - 1) / (PAGE_MASK + 1));
    return this.firstPages[n]! <= lastPage ? this.items[n] : undefined;
  }

  /** The mapping that contains `iova`. */
  containing(iova: bigint): M | undefined {
    return this.translate(iova)?.mapping;
  }

  /** The mapping that contains `iova` and the offset in it (one shared answer object). */
  translate(iova: bigint): Translation<M> | undefined {
    if (!inU64(iova)) return undefined;
    scratch[0] = iova;
    const low = halves[LOW]!;
    const page = halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (low >>> PAGE_SHIFT);
    if (!(page >= this.hitFirst && page < this.hitEnd)) {
      const n = this.numberAt(page);
      if (n < 0) return undefined;
      this.hitFirst = this.firstPages[n]!;
      this.hitEnd = this.endPages[n]!;
      // Set on a miss only: a hit's mapping is already there (stores are what cost here).
      this.translation.mapping = this.items[n]!;
    }
    this.translation.offset = (page - this.hitFirst) * (PAGE_MASK + 1) + (low & PAGE_MASK);
    return this.translation;
  }

  /** Adds a mapping; it must not overlap one in the store (callers check with find() first). */
  insert(mapping: M): void {
    const { iova, size } = mapping;
    if (!inU64(iova) || !inU64(size)) throw misfit(mapping);
    scratch[0] = iova;
    const iovaLow = halves[LOW]!;
    const first = halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (iovaLow >>> PAGE_SHIFT);
    scratch[0] = size;
    const sizeLow = halves[LOW]!;
    const end = first + halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (sizeLow >>> PAGE_SHIFT);
    if (((iovaLow | sizeLow) & PAGE_MASK) !== 0 || end === first || end > 2 ** (64 - PAGE_SHIFT)) throw misfit(mapping);
    while (end > SPAN[this.height]!) this.grow();
    if (this.occupied(this.root, this.height - 1, 0, first, end)) throw new Error('DMA mapping overlaps one in the store');
    const n = this.allocNumber();
    this.items[n] = mapping;
    this.firstPages[n] = first;
    this.endPages[n] = end;
    this.fill(this.root, this.height - 1, 0, first, end, ~n);
    this.total++;
    this.hitEnd = 0;
  }

  /** Removes a mapping of the store (the same object); anything else throws. */
  remove(mapping: M): void {
    const n = inU64(mapping.iova) ? this.numberAt(pageOf(mapping.iova)) : -1;
    if (n < 0 || this.items[n] !== mapping) throw new Error('DMA mapping is not in the store');
    this.clear(this.root, this.height - 1, 0, this.firstPages[n]!, this.endPages[n]!);
    this.items[n] = undefined; // no reference kept to a removed mapping
    if (this.translation.mapping === mapping) this.translation.mapping = undefined as unknown as M;
    this.freeNumbers.push(n);
    this.total--;
    this.hitEnd = 0;
    if (this.total === 0) this.height = 1; // the root is empty now: start low again
  }

  /** Mapping `n` unless there is none or it starts at or past `end`. */
  private bounded(n: number, end: bigint | undefined): M | undefined {
    if (n < 0) return undefined;
    if (end === undefined || !inU64(end)) return this.items[n]; // nothing ends past 2^64
    scratch[0] = end;
    const low = halves[LOW]!;
    // The page after the range's last byte (end - 1), without a bigint.
    const endPage = halves[HIGH]! * 2 ** (32 - PAGE_SHIFT) + (low >>> PAGE_SHIFT) + ((low & PAGE_MASK) === 0 ? 0 : 1);
    return this.firstPages[n]! < endPage ? this.items[n] : undefined;
  }

  /** The number of the mapping containing `page`, or -1. */
  private numberAt(page: number): number {
    if (!(page < SPAN[this.height]!)) return -1;
    const entries = this.entries;
    let table = this.root;
    for (let level = this.height - 1; ; level--) {
      const entry = entries[(table << BITS) | ((page * INVERSE[level]!) & INDEX_MASK)]!;
      if (entry <= 0) return entry === 0 ? -1 : ~entry;
      table = entry;
    }
  }

  /** The number of the first mapping with a page at or after `page`, or -1. */
  private firstAtOrAfter(page: number): number {
    if (!(page < SPAN[this.height]!)) return -1;
    // Down the page's own path first: the answer is nearly always on it or next to it in
    // the same table. Only when that table has nothing after the page, search from the top.
    const entries = this.entries;
    let table = this.root;
    for (let level = this.height - 1; ; level--) {
      const i = (page * INVERSE[level]!) & INDEX_MASK;
      const entry = entries[(table << BITS) | i]!;
      if (entry < 0) return ~entry;
      if (entry === 0) {
        const j = this.nextUsed(table, i + 1);
        if (j < 0) break;
        const after = entries[(table << BITS) | j]!;
        return after < 0 ? ~after : this.leftmost(after);
      }
      table = entry;
    }
    return this.firstIn(this.root, this.height - 1, 0, page);
  }

  /** The number of the first mapping under `table` (tables below the root are never empty). */
  private leftmost(table: number): number {
    for (;;) {
      const entry = this.entries[(table << BITS) | this.nextUsed(table, 0)]!;
      if (entry < 0) return ~entry;
      table = entry;
    }
  }

  /** firstAtOrAfter() inside one table, which covers pages from `base`. */
  private firstIn(table: number, level: number, base: number, page: number): number {
    const span = SPAN[level]!;
    const from = page > base ? ((page - base) * INVERSE[level]!) & INDEX_MASK : 0;
    for (let i = this.nextUsed(table, from); i >= 0; i = this.nextUsed(table, i + 1)) {
      const entry = this.entries[(table << BITS) | i]!;
      if (entry < 0) return ~entry;
      const n = this.firstIn(entry, level - 1, base + i * span, page);
      if (n >= 0) return n;
    }
    return -1;
  }

  /** The first non-empty entry of `table` at index `from` or later, or -1. */
  private nextUsed(table: number, from: number): number {
    if (from >= FANOUT) return -1;
    const at = table * WORDS;
    let w = from >> 5;
    let word = this.bitmaps[at + w]! & (-1 << (from & 31));
    while (word === 0) {
      if (++w === WORDS) return -1;
      word = this.bitmaps[at + w]!;
    }
    return (w << 5) + 31 - Math.clz32(word & -word);
  }

  /** Whether any page of [first, end) under `table` (covering pages from `base`) is mapped. */
  private occupied(table: number, level: number, base: number, first: number, end: number): boolean {
    const span = SPAN[level]!;
    for (let i = firstIndex(level, base, first), to = endIndex(level, base, end); i < to; i++) {
      const entry = this.entries[(table << BITS) | i]!;
      if (entry < 0) return true;
      if (entry === 0) continue;
      const start = base + i * span;
      // A table under an entry the range covers whole holds some mapping.
      if ((first <= start && start + span <= end) || this.occupied(entry, level - 1, start, first, end)) return true;
    }
    return false;
  }

  /** Sets the entries of [first, end) under `table` (covering pages from `base`) to `value`. */
  private fill(table: number, level: number, base: number, first: number, end: number, value: number): void {
    const span = SPAN[level]!;
    for (let i = firstIndex(level, base, first), to = endIndex(level, base, end); i < to; i++) {
      const start = base + i * span;
      if (first <= start && start + span <= end) {
        this.setEntry(table, i, value);
        continue;
      }
      let child = this.entries[(table << BITS) | i]!;
      if (child === 0) {
        child = this.allocTable();
        this.setEntry(table, i, child);
      }
      this.fill(child, level - 1, start, first, end, value);
    }
  }

  /** Empties the entries of [first, end) under `table`, giving back tables left empty. */
  private clear(table: number, level: number, base: number, first: number, end: number): void {
    const span = SPAN[level]!;
    for (let i = firstIndex(level, base, first), to = endIndex(level, base, end); i < to; i++) {
      const start = base + i * span;
      if (first <= start && start + span <= end) {
        this.setEntry(table, i, 0);
        continue;
      }
      const child = this.entries[(table << BITS) | i]!;
      this.clear(child, level - 1, start, first, end);
      if (this.fills[child] === 0) {
        this.setEntry(table, i, 0);
        this.freeTables.push(child);
      }
    }
  }

  private setEntry(table: number, i: number, value: number): void {
    const at = (table << BITS) | i;
    const was = this.entries[at]!;
    this.entries[at] = value;
    if ((was === 0) !== (value === 0)) {
      const word = table * WORDS + (i >> 5);
      this.bitmaps[word] = this.bitmaps[word]! ^ (1 << (i & 31));
      this.fills[table] = this.fills[table]! + (value === 0 ? -1 : 1);
    }
  }

  /** One level more on top: the old root becomes the new root's first entry (an empty root just rises). */
  private grow(): void {
    if (this.fills[this.root] !== 0) {
      const top = this.allocTable();
      this.setEntry(top, 0, this.root);
      this.root = top;
    }
    this.height++;
  }

  private allocTable(): number {
    const reused = this.freeTables.pop();
    if (reused !== undefined) return reused; // empty: its entries, bitmap and fill are all 0
    if (this.tablesUsed === this.fills.length) {
      const capacity = this.fills.length * 2;
      this.entries = grown(this.entries, capacity * FANOUT);
      this.bitmaps = grown(this.bitmaps, capacity * WORDS);
      this.fills = grown(this.fills, capacity);
    }
    return this.tablesUsed++;
  }

  private allocNumber(): number {
    const reused = this.freeNumbers.pop();
    if (reused !== undefined) return reused;
    const n = this.items.length;
    this.items.push(undefined);
    if (n === this.firstPages.length) {
      const firstPages = new Float64Array(n * 2);
      firstPages.set(this.firstPages);
      this.firstPages = firstPages;
      const endPages = new Float64Array(n * 2);
      endPages.set(this.endPages);
      this.endPages = endPages;
    }
    return n;
  }
}

/** The index of the entry holding page `first` in a table at `level` covering pages from `base` (0 if before it). */
function firstIndex(level: number, base: number, first: number): number {
  return first > base ? Math.floor((first - base) * INVERSE[level]!) : 0;
}

/** One past the index of the entry holding the page before `end`, at most a table's last. */
function endIndex(level: number, base: number, end: number): number {
  return Math.min(FANOUT, Math.ceil((end - base) * INVERSE[level]!));
}

function misfit(m: IovaRange): Error {
  return new Error(`DMA mapping [0x${m.iova.toString(16)}, +0x${m.size.toString(16)}) is empty, not 4 KiB aligned or past 2^64`);
}

function grown(old: Int32Array, length: number): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(length);
  bigger.set(old);
  return bigger;
}
