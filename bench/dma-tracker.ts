// The DMA tracker (DmaStore: the mock TYPE1's mappings, the vfio-user server's DMA
// regions) against a C tracker doing exactly the same work on the same addresses in
// the same order (bench/dma-tracker-baseline.c, built here with cc -O3):
//   map+unmap pairs at 65,536 live single-page mappings: MAP_DMA's steps on the store
//     (overlap check, a new mapping object / malloc, insert) and UNMAP_DMA v2's (both
//     ends checked, every mapping inside found, removed / freed), at random gaps;
//   cold lookups: translate (mapping + offset) at random live IOVAs;
//   warm lookups: 16 consecutive in each of those mappings, and one mapping every time;
//   huge mappings: 8 of 16 GiB (guest RAM), a 1 GiB map+unmap in a gap, lookups in them;
//   bytes per live mapping (the store's arrays and the mapping objects here, malloc'd
//   bytes in C).
// DmaStore is a page table (a radix tree of 512-entry tables, as the IOMMU keeps). The C
// tracker is a B-tree (a flat two-level tree of sorted leaves, 64-bit keys), run twice:
// in libvfio-user's shape (a search from the top per call, but translate checks its last
// hit first, as libvfio-user's dma_addr_to_sgl checks its last region and as DmaStore
// does), and with a finger besides (the last search's place checked first by every
// call: the stronger C baseline for maps and unmaps); and DmaStore's own algorithm in C
// (how far the language is from it, not a competitor). Beside the warm lookups of one
// mapping, the JS floor: a translate with nothing behind it, what any tracker in JS pays
// to take a bigint IOVA and answer. Then the real paths beside the raw structure:
// MAP_DMA + UNMAP_DMA through the mock kernel's ioctls (an in-process call stands in for
// the syscall) and the vfio-user server's DMA_MAP + DMA_UNMAP handlers (message decode,
// checks, DmaRegions; no socket).
//
// Rounds alternate the three C runs, ours, the floor and the real paths; each figure is
// min / median / max over the rounds, and a ratio is of the medians.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DmaStore } from '../src/device/dma/dma-store.js';
import { dmaRealPaths } from './dma-real-paths.js';
import { alternate, note, nsPerCall, reportSpread, spread, title, type Spread } from './report.js';

const LIVE = 65536;
const PAGE = 4096n;
/** Live mappings sit at every other page: a map+unmap pair goes into a gap. */
const STRIDE = 2n * PAGE;
const GiB = 1n << 30n;
const VADDR = 0x7000_0000_0000n;
const PAIRS = 200_000;
const LOOKUPS = 2_000_000;
const ROUNDS = 9;
const source = fileURLToPath(new URL('../../bench/dma-tracker-baseline.c', import.meta.url));

/** What the C tracker's struct mapping holds; a class, as the mock's TYPE1 allocates its mappings. */
class Mapping {
  constructor(readonly iova: bigint, readonly size: bigint, readonly vaddr: bigint, readonly prot: number) {}
}

/** Deterministic pseudo-random numbers below `modulo` (xorshift32): the C program makes the same. */
function randomSlots(count: number, seed: number, modulo: number): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x % modulo;
  }
  return out;
}

/** VFIO_IOMMU_MAP_DMA's steps on the store (type1.ts mapDma). */
function mapDma(store: DmaStore<Mapping>, iova: bigint, size: bigint): void {
  if (store.find(iova, size)) throw new Error('overlap');
  store.insert(new Mapping(iova, size, VADDR + iova, 3));
}

/** VFIO_IOMMU_UNMAP_DMA (v2)'s steps on the store (type1.ts doUnmap). */
function unmapDma(store: DmaStore<Mapping>, iova: bigint, size: bigint): bigint {
  const end = iova + size;
  const first = store.find(iova, 1n);
  if (first && first.iova !== iova) throw new Error('starts inside a mapping');
  const last = store.find(end - 1n, 0n);
  if (last && last.iova + last.size !== end) throw new Error('ends inside a mapping');
  let unmapped = 0n;
  for (let m = store.first(iova, end); m;) {
    const next = store.next(m, end);
    unmapped += m.size;
    store.remove(m);
    m = next;
  }
  return unmapped;
}

function timePairs(store: DmaStore<Mapping>, iovas: readonly bigint[], size: bigint, n: number): number {
  const mask = iovas.length - 1;
  return nsPerCall(n, (count) => {
    for (let i = 0; i < count; i++) {
      const iova = iovas[i & mask]!;
      mapDma(store, iova, size);
      if (unmapDma(store, iova, size) !== size) throw new Error('unmap lost its mapping');
    }
  });
}

let sink = 0;

/** A translate per address: the mapping (a reference) and the offset in it. */
function timeLookups(store: DmaStore<Mapping>, iovas: readonly bigint[], n: number): number {
  const mask = iovas.length - 1;
  return nsPerCall(n, (count) => {
    let acc = 0;
    for (let i = 0; i < count; i++) {
      const t = store.translate(iovas[i & mask]!);
      if (!t) throw new Error('not mapped');
      acc += t.offset;
    }
    sink += acc;
  });
}

/**
 * The least any tracker in JS does per lookup, with no structure behind it: check that the
 * bigint IOVA is a u64, take it apart, answer through a shared object. Its own loop below,
 * so that DmaStore's call sites stay monomorphic.
 */
class FloorTranslate {
  private readonly answer = { mapping: new Mapping(0n, PAGE, VADDR, 3), offset: 0 };

  translate(iova: bigint): { mapping: Mapping; offset: number } | undefined {
    if (BigInt.asUintN(64, iova) !== iova) return undefined; // DmaStore's check
    floorScratch[0] = iova;
    this.answer.offset = floorHalves[FLOOR_LOW]! & 4095;
    return this.answer;
  }
}
// Module-level, as DmaStore's: V8 embeds them in the code (class fields cost a load each).
const floorScratch = new BigUint64Array(1);
const floorHalves = new Uint32Array(floorScratch.buffer);
const FLOOR_LOW = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;

function timeFloor(floor: FloorTranslate, iovas: readonly bigint[], n: number): number {
  const mask = iovas.length - 1;
  return nsPerCall(n, (count) => {
    let acc = 0;
    for (let i = 0; i < count; i++) {
      const t = floor.translate(iovas[i & mask]!);
      if (!t) throw new Error('not mapped');
      acc += t.offset;
    }
    sink += acc;
  });
}

/** The workload, built the way the C program builds it. */
function workload(): { gaps: bigint[]; cold: bigint[]; warm16: bigint[]; warm1: bigint[]; hugeGaps: bigint[]; hugeLookups: bigint[] } {
  const slots = randomSlots(LIVE, 12345, LIVE);
  const lslots = randomSlots(LIVE, 999, LIVE);
  return {
    gaps: Array.from(slots, (s) => BigInt(s) * STRIDE + PAGE),
    cold: Array.from(lslots, (s, i) => BigInt(s) * STRIDE + BigInt((i * 8) % 4096)),
    warm16: Array.from({ length: 1 << 20 }, (_, i) => BigInt(lslots[(i >> 4) & (LIVE - 1)]!) * STRIDE + BigInt((i & 15) * 256)),
    warm1: Array.from({ length: 4096 }, (_, i) => BigInt(lslots[0]!) * STRIDE + BigInt((i * 8) % 4096)),
    hugeGaps: Array.from({ length: 8 }, (_, i) => BigInt(i) * 32n * GiB + 16n * GiB + BigInt(i & 3) * GiB),
    hugeLookups: Array.from(lslots, (s) => BigInt(s & 7) * 32n * GiB + ((BigInt(s) * 262147n * 64n) % (16n * GiB))),
  };
}

function liveStore(): DmaStore<Mapping> {
  const store = new DmaStore<Mapping>();
  for (let i = 0n; i < BigInt(LIVE); i++) mapDma(store, i * STRIDE, PAGE);
  return store;
}

function hugeStore(): DmaStore<Mapping> {
  const store = new DmaStore<Mapping>();
  for (let i = 0n; i < 8n; i++) mapDma(store, i * 32n * GiB, 16n * GiB);
  return store;
}

/** Bytes per live mapping at 65,536 single pages laid out by `iovaOf`: the store's arrays and the mapping objects. */
function bytesPerMapping(iovaOf: (i: number) => bigint): { total: number; store: number } {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const mappings = Array.from({ length: LIVE }, (_, i): Mapping => {
    const iova = iovaOf(i);
    return new Mapping(iova, PAGE, VADDR + iova, 3);
  });
  gc();
  // The array holding the objects is the measurement's, not the store's.
  const objects = (process.memoryUsage().heapUsed - before - 8 * LIVE) / LIVE;
  const store = new DmaStore<Mapping>();
  for (const m of mappings) store.insert(m);
  if (store.count !== LIVE) throw new Error('lost mappings');
  // The store's tables are typed arrays (outside the JS heap): it counts them itself.
  return { total: objects + store.byteLength / LIVE, store: store.byteLength / LIVE };
}

type Figures = [pairs: number, cold: number, warm16: number, warm1: number, hugePairs: number, hugeLookups: number, bytes: number];

/** Builds the C tracker in one form (the B-tree, or the page table with -DPAGE_TABLE); returns a run of it. */
function buildC(dir: string, form: 'btree' | 'pagetable'): (finger: 0 | 1) => Figures {
  const binary = join(dir, `dma-tracker-${form}`);
  const defines = form === 'pagetable' ? ['-DPAGE_TABLE'] : [];
  execFileSync('cc', ['-O3', ...defines, '-o', binary, source], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (finger) => {
    const out = execFileSync(binary, [String(PAIRS), String(LOOKUPS), String(finger)], { encoding: 'utf8' }).trim().split(' ').map(Number);
    if (out.length !== 7 || out.some((v) => !Number.isFinite(v))) throw new Error(`dma-tracker-baseline printed ${out.join(' ')}`);
    return out as Figures;
  };
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-vgpu-dma-bench-'));
  try {
    const btree = buildC(dir, 'btree');
    const pageTable = buildC(dir, 'pagetable');
    const w = workload();
    const store = liveStore();
    const huge = hugeStore();
    const ours = (): Figures => [
      timePairs(store, w.gaps, PAGE, PAIRS), timeLookups(store, w.cold, LOOKUPS), timeLookups(store, w.warm16, LOOKUPS),
      timeLookups(store, w.warm1, LOOKUPS), timePairs(huge, w.hugeGaps, GiB, PAIRS), timeLookups(huge, w.hugeLookups, LOOKUPS), 0,
    ];
    const real = dmaRealPaths(LIVE, w.gaps);
    const floor = new FloorTranslate();
    const rows = alternate(ROUNDS, {
      plain: () => btree(0), finger: () => btree(1), pageTable: () => pageTable(0), ours, ioctl: real.ioctlPair, vfioUser: real.vfioUserPair,
      floor: () => timeFloor(floor, w.warm1, LOOKUPS),
    });
    real.close();
    if (store.count !== LIVE || huge.count !== 8) throw new Error('the stores lost mappings');
    const perSecond = (list: Figures[], k: number): Spread => spread(list.map((f) => 1e9 / f[k]!));
    const figures: [string, string][] = [
      ['map+unmap pairs at 65,536 live single-page mappings', 'pairs/s'],
      ['cold translate lookups (random live IOVAs)', 'lookups/s'],
      ['warm lookups, 16 in each mapping', 'lookups/s'],
      ['warm lookups, one mapping every time', 'lookups/s'],
      ['1 GiB map+unmap pairs among 8 x 16 GiB', 'pairs/s'],
      ['lookups among 8 x 16 GiB mappings', 'lookups/s'],
    ];
    title(`dma-tracker: DmaStore against a C tracker, ${ROUNDS} alternating rounds (median, ratio of medians, min..max)`);
    figures.forEach(([name, unit], k) => {
      const plain = perSecond(rows.plain, k);
      const finger = perSecond(rows.finger, k);
      const table = perSecond(rows.pageTable, k);
      const mine = perSecond(rows.ours, k);
      console.log(`  ${name}`);
      reportSpread('  C B-tree, libvfio-user\'s shape (search per call, last hit first)', plain, unit);
      reportSpread('  C B-tree + finger', finger, unit);
      reportSpread('  C page table (DmaStore\'s algorithm, in C)', table, unit);
      reportSpread('  DmaStore', mine, unit, 'C B-tree', plain);
      reportSpread('    the same, against C + finger', mine, unit, 'C + finger', finger);
      reportSpread('    the same, against the C page table', mine, unit, 'C table', table);
      if (k === 3) reportSpread('  JS floor: a lookup that only checks and splits its bigint', spread(rows.floor.map((ns) => 1e9 / ns)), unit, 'C B-tree', plain);
    });
    const dense = bytesPerMapping((i) => BigInt(i) * STRIDE);
    const spreadOut = randomSlots(LIVE, 4242, 1 << 30);
    const scattered = bytesPerMapping((i) => BigInt(spreadOut[i]!) * (1n << 18n) + BigInt(i % 64) * PAGE);
    console.log(`  bytes per live mapping: C B-tree ${rows.plain[0]![6].toFixed(0)} (malloc'd: leaves + 32-byte structs, any layout), C page table ${rows.pageTable[0]![6].toFixed(0)};`
      + ` DmaStore ${dense.total.toFixed(0)} every other page (the store ${dense.store.toFixed(0)}, its arrays at capacity, + the mapping object with its bigints),`
      + ` ${scattered.total.toFixed(0)} scattered one per 256 KiB over 2^48 bytes (the store ${scattered.store.toFixed(0)}: a page table's worst case)`);
    const raw = perSecond(rows.ours, 0);
    title('dma-tracker: the real paths beside the raw structure (65,536 live, the same gaps)');
    reportSpread('DmaStore map+unmap pairs (raw structure)', raw, 'pairs/s');
    reportSpread('MAP_DMA+UNMAP_DMA ioctls, mock kernel', spread(rows.ioctl.map((ns) => 1e9 / ns)), 'pairs/s', 'raw', raw);
    reportSpread('vfio-user DMA_MAP+DMA_UNMAP handlers', spread(rows.vfioUser.map((ns) => 1e9 / ns)), 'pairs/s', 'raw', raw);
    note('mock kernel: an ioctl here is an in-process call standing in for the syscall (bench ioctl measures a real one);'
      + ' the vfio-user figure has no socket (bench vfio-user measures the round trip)');
    if (sink === -1) console.log('unreachable'); // keeps the lookups' results alive
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run on its own: node dist/bench/dma-tracker.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
