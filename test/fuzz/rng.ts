// A small seeded generator (splitmix32) and the mutations the fuzzer applies: every
// input is a pure function of (target, seed, index), so a run is reproduced from its
// command line and one failing input from its index alone.

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The generator of input `index` of a run: independent of the inputs before it. */
  static forInput(target: string, seed: number, index: number): Rng {
    let h = 0x811c9dc5 ^ seed;
    for (const c of `${target}#${index}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
    return new Rng(h ^ Math.imul(index, 0x9e3779b9));
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A value from the edges integers break at, or a random one. */
  interesting(width: 1 | 2 | 4 | 8): bigint {
    const max = (1n << BigInt(width * 8)) - 1n;
    const edges = [0n, 1n, 2n, 3n, 4n, 7n, 8n, 0xfn, 0x10n, 0x7fn, 0x80n, 0xffn, 0x100n, 0xfffn, 0x1000n, 0x7fffn, 0x8000n,
      0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n, 0xfffff000n, 0xffffffffn, 0x1_0000_0000n, 1n << 40n, 1n << 48n,
      (1n << 63n) - 1n, 1n << 63n, 0xffff_ffff_ffff_f000n, 0xffff_ffff_ffff_ffffn];
    const pickEdge = this.chance(0.8);
    const v = pickEdge ? this.pick(edges) : this.u64();
    const signed = this.chance(0.2) ? max + 1n - (v & max) : v; // the negated edge (-1, -4096...)
    return signed & max;
  }
}

/** Byte-level mutations of a valid message (AFL's havoc, in small): 1 to 4 of them stacked. */
export function mutate(rng: Rng, input: Uint8Array, maxLength = 4096): Uint8Array {
  let out: Uint8Array = input.slice();
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const op = rng.below(8);
    if (out.byteLength === 0 && op < 6) {
      out = rng.bytes(1 + rng.below(16));
      continue;
    }
    const at = rng.below(out.byteLength);
    switch (op) {
      case 0: out[at] = out[at]! ^ (1 << rng.below(8)); break;
      case 1: out[at] = rng.u32() & 0xff; break;
      case 2: case 3: {
        // An interesting integer over a little-endian field at an aligned offset.
        const width = rng.pick([1, 2, 4, 8] as const);
        const start = Math.max(0, Math.min(out.byteLength - width, at - (at % width)));
        const v = rng.interesting(width);
        for (let i = 0; i < width && start + i < out.byteLength; i++) out[start + i] = Number((v >> BigInt(8 * i)) & 0xffn);
        break;
      }
      case 4: out = out.slice(0, at); break;
      case 5: {
        const extra = rng.bytes(1 + rng.below(64));
        const grown = new Uint8Array(Math.min(maxLength, out.byteLength + extra.byteLength));
        grown.set(out.subarray(0, grown.byteLength));
        grown.set(extra.subarray(0, grown.byteLength - Math.min(out.byteLength, grown.byteLength)), Math.min(out.byteLength, grown.byteLength));
        out = grown;
        break;
      }
      case 6: {
        // Duplicate a slice into another place (repeated fields, capability chains).
        const from = rng.below(out.byteLength);
        const len = 1 + rng.below(Math.min(32, out.byteLength - from));
        out.copyWithin(rng.below(out.byteLength), from, from + len);
        break;
      }
      default: out = rng.bytes(rng.below(Math.min(maxLength, 256) + 1));
    }
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Values JSON fields break at: wrong types, edges, long and odd strings. */
function oddValue(rng: Rng): unknown {
  switch (rng.below(12)) {
    case 0: return null;
    case 1: return rng.pick([0, -1, 1.5, 1e308, -0, 2 ** 53, 4294967296]);
    case 2: return '';
    case 3: return 'x'.repeat(rng.pick([1, 255, 256, 4097, 70000]));
    case 4: return [];
    case 5: return {};
    case 6: return rng.chance(0.5);
    case 7: return rng.pick(['..', '.', '/', 'a/b', '\u0000', '\ud800', 'é', ' ', '\n', 'scripts.d', '__proto__', 'constructor']);
    case 8: return Buffer.from(rng.bytes(rng.below(24))).toString('latin1');
    case 9: { let v: unknown = 1; for (let i = rng.below(200); i > 0; i--) v = [v]; return v; }
    case 10: return { __proto__: null, name: 'a', value: 'b' };
    default: return rng.u32();
  }
}

/** A structured mutation of a JSON value: a field replaced, removed or added, somewhere in the tree. */
export function mutateJson(rng: Rng, value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as unknown;
  const holders: (Record<string, unknown> | unknown[])[] = [];
  const walk = (v: unknown): void => {
    if (v !== null && typeof v === 'object') {
      holders.push(v as Record<string, unknown>);
      for (const child of Object.values(v)) walk(child);
    }
  };
  walk(copy);
  if (holders.length === 0) return oddValue(rng);
  for (let n = 1 + rng.below(2); n > 0; n--) {
    const h = rng.pick(holders);
    const keys = Object.keys(h);
    const op = rng.below(4);
    if (op === 0 && keys.length) delete (h as Record<string, unknown>)[rng.pick(keys)];
    else if (op === 1) (h as Record<string, unknown>)[rng.pick(['extra', 'id', 'uuid', 'index', 'name', '0'])] = oddValue(rng);
    else if (keys.length) (h as Record<string, unknown>)[rng.pick(keys)] = oddValue(rng);
  }
  return copy;
}
