// The sorted DMA store (DmaStore: the mock's TYPE1 mappings, vfio-user DMA regions)
// against a plain list, operation by operation: random inserts and removes at any
// position (chunks split and empty out), every lookup at the boundaries, and IOVAs
// past 2^53 where doubles round.
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
  it('agrees with a plain list through random inserts and removes across chunk splits', () => {
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
    assert.ok(store.count > 1000, 'enough to need several chunks');
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
  it('walks and removes as UNMAP does (next, then remove) across chunk boundaries, wherever the last search was', () => {
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
      for (let m = store.first(from); m && m.iova < end;) {
        const next = store.next(m);
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
    assert.equal(store.translate(0x1008n)?.mapping, low);
    store.remove(low);
    assert.equal(store.translate(0x1008n), undefined);
    assert.equal(store.translate((1n << 64n) - 1n)?.offset, 4 * 4096 - 1);
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
});
