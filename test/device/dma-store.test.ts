// The DMA store (DmaStore: the mock's TYPE1 mappings, vfio-user DMA regions) against a
// plain list, operation by operation: random inserts and removes at any position (page
// tables fill and empty out), mappings from one page to many GiB at every alignment
// (superpage entries at every level), every lookup at the boundaries, bounded walks, and
// IOVAs up to the top of the 64-bit space.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DmaStore, type IovaRange } from '../../src/device/dma/dma-store.js';

type DmaMapping = IovaRange;

const PAGE = 4096n;

function mapping(iova: bigint, size: bigint): DmaMapping {
  return { iova, size };
}

/** The reference: a sorted list searched one by one. */
class Model {
  list: DmaMapping[] = [];
  insert(m: DmaMapping): void {
    this.list.push(m);
    this.list.sort((a, b) => (a.iova < b.iova ? -1 : 1));
  }
  remove(m: DmaMapping): void {
    this.list.splice(this.list.indexOf(m), 1);
  }
  first(iova: bigint): DmaMapping | undefined {
    return this.list.find((m) => m.iova + m.size > iova);
  }
  containing(iova: bigint): DmaMapping | undefined {
    return this.list.find((m) => m.iova <= iova && iova < m.iova + m.size);
  }
  /** vfio_find_dma: the first mapping overlapping [start, start + size); size 0 as the kernel compares. */
  find(start: bigint, size: bigint): DmaMapping | undefined {
    if (size === 0n) return this.list.find((m) => m.iova < start && start < m.iova + m.size);
    return this.list.find((m) => m.iova < start + size && start < m.iova + m.size);
  }
  /** The mappings a walk over [start, end) meets. */
  within(start: bigint, end: bigint): DmaMapping[] {
    return this.list.filter((m) => m.iova < end && start < m.iova + m.size);
  }
}

/** A deterministic generator (xorshift32). */
function random(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

function check(store: DmaStore, model: Model, probes: readonly bigint[]): void {
  assert.equal(store.count, model.list.length);
  assert.deepEqual([...store.values()], model.list);
  for (const iova of probes) {
    assert.equal(store.first(iova), model.first(iova), `first(0x${iova.toString(16)})`);
    const hit = model.containing(iova);
    assert.equal(store.containing(iova), hit, `containing(0x${iova.toString(16)})`);
    const t = store.translate(iova);
    assert.equal(t?.mapping, hit);
    if (hit) assert.equal(t!.offset, Number(iova - hit.iova));
  }
}

/** Each mapping's edges and the bytes around them. */
function probesOf(list: readonly DmaMapping[]): bigint[] {
  const out: bigint[] = [0n];
  for (const m of list) {
    const end = m.iova + m.size;
    out.push(m.iova, m.iova + 1n, end - 1n, end);
    if (m.iova > 0n) out.push(m.iova - 1n);
  }
  return out.filter((v) => v >= 0n && v < 1n << 64n);
}

describe('DmaStore', () => {
  it('agrees with a plain list through random inserts and removes filling and emptying page tables', () => {
    const store = new DmaStore();
    const model = new Model();
    const rand = random(2024);
    const slots = 3000;
    const live = new Map<number, DmaMapping>();
    for (let step = 0; step < 6000; step++) {
      const slot = rand(slots);
      const m = live.get(slot);
      if (m && rand(3) === 0) {
        store.remove(m);
        model.remove(m);
        live.delete(slot);
      } else if (!m) {
        const size = BigInt(1 + rand(2)) * PAGE; // one or two pages in a three-page slot
        const created = mapping(BigInt(slot) * 3n * PAGE + BigInt(rand(2)) * PAGE * (size === PAGE ? 1n : 0n), size);
        store.insert(created);
        model.insert(created);
        live.set(slot, created);
      }
      if (step % 1000 === 999) check(store, model, probesOf(model.list));
    }
    assert.ok(store.count > 1000, 'enough to need several leaf tables');
    for (const m of [...model.list]) {
      store.remove(m);
      model.remove(m);
    }
    check(store, model, [0n, PAGE]);
    assert.throws(() => store.remove(mapping(0n, PAGE)), /not in the store/);
  });

  it('finds mappings past 2^53, up to the top of the 64-bit space, exactly', () => {
    const store = new DmaStore();
    const model = new Model();
    const top = 1n << 64n;
    const bases = [0n, 1n << 53n, (1n << 53n) + PAGE, (1n << 60n) - PAGE, 1n << 63n, top - 4n * PAGE, top - PAGE];
    for (const iova of bases) {
      const m = mapping(iova, PAGE);
      store.insert(m);
      model.insert(m);
    }
    const probes = probesOf(model.list);
    // Right at rounding boundaries: a query one byte below a mapping rounds up onto it.
    probes.push((1n << 63n) - 1n, (1n << 63n) + 1023n, (1n << 63n) + 1025n, top - 1n, top - PAGE - 1n);
    check(store, model, probes);
    assert.equal(store.find(top - PAGE, PAGE), model.list[model.list.length - 1]);
    assert.equal(store.find(1n << 63n, 0n), undefined, 'size 0 finds only a mapping starting below');
    assert.equal(store.find((1n << 63n) + 1n, 0n)?.iova, 1n << 63n);
  });

  it('translate keeps its last hit and forgets it when the store changes', () => {
    const store = new DmaStore();
    const a = mapping(0x10000n, 4n * PAGE);
    store.insert(a);
    assert.equal(store.translate(0x10010n)?.offset, 0x10);
    assert.equal(store.translate(0x13fffn)?.offset, 0x3fff);
    assert.equal(store.translate(0x14000n), undefined);
    store.remove(a);
    assert.equal(store.translate(0x10010n), undefined);
    const b = mapping(0x12000n, PAGE);
    store.insert(b);
    assert.equal(store.translate(0x10010n), undefined);
    assert.equal(store.translate(0x12001n)?.mapping, b);
  });
  it('walks and removes as UNMAP does (next, then remove) across table boundaries, wherever the last search was', () => {
    const store = new DmaStore();
    const model = new Model();
    const rand = random(77);
    for (let i = 0; i < 1000; i++) {
      const m = mapping(BigInt(i) * 2n * PAGE, PAGE);
      store.insert(m);
      model.insert(m);
    }
    for (let round = 0; round < 40; round++) {
      const from = BigInt(rand(2000)) * PAGE;
      const end = from + BigInt(1 + rand(300)) * PAGE;
      // A search elsewhere first, so the walk cannot lean on where the last one landed.
      store.first(BigInt(rand(2000)) * PAGE);
      const bounded = round % 2 === 0; // both forms of a walk: bounded by the store, or by the caller
      for (let m = bounded ? store.first(from, end) : store.first(from); m && (bounded || m.iova < end);) {
        const next = bounded ? store.next(m, end) : store.next(m);
        if (rand(2) === 0) store.first(BigInt(rand(2000)) * PAGE);
        store.remove(m);
        model.remove(m);
        m = next;
      }
      // Put some back, in random order, looking up in between.
      for (let k = 0; k < 50; k++) {
        const iova = BigInt(rand(1000)) * 2n * PAGE;
        if (model.containing(iova)) continue;
        const m = mapping(iova, PAGE);
        store.translate(BigInt(rand(2000)) * PAGE);
        store.insert(m);
        model.insert(m);
      }
      check(store, model, probesOf(model.list).filter((_, k) => k % 7 === round % 7));
    }
    check(store, model, probesOf(model.list));
  });

  it('translate answers from its last hit only while the store is unchanged, and never past 2^64', () => {
    const store = new DmaStore();
    const top = mapping((1n << 64n) - 4n * PAGE, 4n * PAGE);
    const low = mapping(0x1000n, PAGE);
    store.insert(top);
    store.insert(low);
    assert.equal(store.translate(0x1008n)?.offset, 8);
    // 2^64 + 0x1008 wraps onto the last hit modulo 2^64: it must not be taken for it.
    assert.equal(store.translate((1n << 64n) + 0x1008n), undefined);
    assert.equal(store.translate(-1n), undefined);
    const held = store.translate(0x1008n)!;
    assert.equal(held.mapping, low);
    store.remove(low);
    assert.equal(held.mapping, undefined, 'the shared answer keeps no removed mapping alive');
    assert.equal(store.translate(0x1008n), undefined);
    assert.equal(store.translate((1n << 64n) - 1n)?.offset, 4 * 4096 - 1);
  });

  it('translate answers from its last hit anywhere in a mapping that spans several 4 GiB (an IOVA high half), and next to it', () => {
    const store = new DmaStore();
    const GiB4 = 1n << 32n;
    // From 12 KiB below a window's end through two whole windows, 8 KiB into the fourth.
    const big = mapping(GiB4 - 3n * PAGE, 2n * GiB4 + 5n * PAGE);
    const next = mapping(3n * GiB4 + 2n * PAGE, PAGE);
    store.insert(big);
    store.insert(next);
    const probes = [
      GiB4 - 3n * PAGE, GiB4 - 1n, GiB4, GiB4 + 5n, 2n * GiB4 - 1n, 2n * GiB4, GiB4 + 7n, 3n * GiB4 + 2n * PAGE - 1n,
      3n * GiB4, 3n * GiB4 + 2n * PAGE, 3n * GiB4 + 1n, 3n * GiB4 + 3n * PAGE, 3n * GiB4 + 2n * PAGE + 9n, GiB4 - 3n * PAGE - 1n,
      2n * GiB4 + 123n, 0n, 3n * GiB4 + 2n * PAGE - 2n,
    ];
    for (const iova of probes) {
      const owner = [big, next].find((m) => iova >= m.iova && iova < m.iova + m.size);
      const t = store.translate(iova);
      assert.equal(t?.mapping, owner, `translate(0x${iova.toString(16)})`);
      if (owner) assert.equal(t!.offset, Number(iova - owner.iova), `offset of 0x${iova.toString(16)}`);
    }
  });

  it('refuses an insert that overlaps a mapping in the store, and keeps what it has', () => {
    const store = new DmaStore();
    const a = mapping(0x10000n, 4n * PAGE);
    store.insert(a);
    assert.throws(() => store.insert(mapping(0x12000n, 4n * PAGE)), /overlaps/);
    assert.throws(() => store.insert(mapping(0xf000n, 2n * PAGE)), /overlaps/);
    assert.deepEqual([...store.values()], [a]);
    store.insert(mapping(0xf000n, PAGE));
    assert.equal(store.count, 2);
  });

  it('keeps mappings of one page to many GiB at any alignment, each over the levels it spans, exactly', () => {
    const store = new DmaStore();
    const model = new Model();
    const rand = random(4242);
    const GiB = 1n << 30n;
    // Sizes from a page to 3 x 512 GiB, at offsets that cross 2 MiB, 1 GiB and 512 GiB table
    // boundaries, placed in slots far enough apart that they never overlap.
    const sizes = [PAGE, 2n * PAGE, 511n * PAGE, 512n * PAGE, 513n * PAGE, 1023n * PAGE, GiB, GiB + PAGE, 3n * GiB - PAGE, 3n * 512n * GiB];
    const slot = 4n * 512n * GiB;
    const live: DmaMapping[] = [];
    for (let step = 0; step < 400; step++) {
      if (live.length > 0 && rand(3) === 0) {
        const m = live.splice(rand(live.length), 1)[0]!;
        store.remove(m);
        model.remove(m);
      } else {
        const at = BigInt(rand(64)) * slot + BigInt(rand(1 << 20)) * PAGE * BigInt(1 + rand(512));
        const m = mapping(at, sizes[rand(sizes.length)]!);
        if (model.find(m.iova, m.size)) {
          assert.throws(() => store.insert(m), /overlaps/);
          continue;
        }
        store.insert(m);
        model.insert(m);
        live.push(m);
      }
      if (step % 40 === 39) {
        check(store, model, probesOf(model.list));
        for (const m of model.list) {
          assert.equal(store.find(m.iova, 0n), undefined);
          assert.equal(store.find(m.iova + 1n, 0n), m);
          assert.equal(store.find(m.iova - PAGE, PAGE), model.find(m.iova - PAGE, PAGE));
          assert.equal(store.find(m.iova + m.size, 1n), model.find(m.iova + m.size, 1n));
        }
      }
    }
    for (const m of [...live]) store.remove(m);
    assert.equal(store.count, 0);
    assert.equal(store.tables, 1, 'every table but the root went back');
  });

  it('bounds a walk by its end: no mapping starting at or past it, whatever the end\'s alignment', () => {
    const store = new DmaStore();
    const model = new Model();
    for (let i = 0n; i < 40n; i++) {
      const m = mapping(i * 3n * PAGE, (1n + (i % 2n)) * PAGE);
      store.insert(m);
      model.insert(m);
    }
    const ends = [0n, 1n, PAGE - 1n, PAGE, PAGE + 1n, 3n * PAGE, 3n * PAGE + 1n, 50n * PAGE - 1n, 200n * PAGE, (1n << 64n) - 1n, 1n << 64n];
    for (const start of [0n, PAGE, PAGE + 7n, 3n * PAGE, 10n * PAGE + 5n]) {
      for (const end of ends) {
        const walked: DmaMapping[] = [];
        for (let m = store.first(start, end); m; m = store.next(m, end)) walked.push(m);
        assert.deepEqual(walked, model.within(start, end), `walk [0x${start.toString(16)}, 0x${end.toString(16)})`);
      }
    }
  });

  it('refuses a mapping that is empty, not 4 KiB aligned or past 2^64, and changes nothing', () => {
    const store = new DmaStore();
    const a = mapping(0x10000n, PAGE);
    store.insert(a);
    for (const bad of [mapping(0x20000n, 0n), mapping(0x20800n, PAGE), mapping(0x20000n, PAGE + 1n), mapping(-PAGE, PAGE),
      mapping((1n << 64n) - PAGE, 2n * PAGE), mapping(1n << 64n, PAGE)]) {
      assert.throws(() => store.insert(bad), /empty, not 4 KiB aligned or past 2\^64/);
    }
    assert.deepEqual([...store.values()], [a]);
    assert.equal(store.tables, 1);
  });

  it('gives tables back: map and unmap cycles over scattered addresses end with only the path to what is left', () => {
    const store = new DmaStore();
    const rand = random(9);
    const keep = mapping(0n, PAGE);
    store.insert(keep);
    let most = 0;
    for (let cycle = 0; cycle < 20; cycle++) {
      // 50 single pages spread over 2^48 bytes: each wants tables of its own.
      const batch = Array.from({ length: 50 }, (_, k) => mapping((BigInt(rand(1 << 30)) * 64n + BigInt(k + 1)) * PAGE, PAGE));
      for (const m of batch) store.insert(m);
      most = Math.max(most, store.tables);
      for (const m of batch) store.remove(m);
      // Left: page 0 and the tables on its path, one per level (the tree stays as tall as it grew).
      assert.equal(store.tables, 4, `cycle ${cycle}`);
    }
    assert.ok(most > 100, `scattered pages held tables of their own (${most} at most)`);
    assert.deepEqual([...store.values()], [keep]);
    store.remove(keep);
    assert.equal(store.tables, 1, 'an empty store holds its root only');
  });
});
