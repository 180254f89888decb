// A tiny codec for fixed-layout little-endian C structs. Each struct is declared once
// with the kernel's field names, offsets and size; test/uapi/layout.test.ts checks
// every declaration against offsetof()/sizeof() compiled by the addon.

export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64';
export type FieldSpec = readonly [type: FieldType, offset: number];
export type FieldSpecs = Readonly<Record<string, FieldSpec>>;

type ValueOf<T extends FieldType> = T extends 'u64' ? bigint : number;
export type StructValue<F extends FieldSpecs> = { [K in keyof F]: ValueOf<F[K][0]> };

export interface StructCodec<F extends FieldSpecs> {
  readonly name: string;
  readonly size: number;
  readonly fields: F;
  /** A new zeroed buffer of `size` (or `totalSize`) bytes holding `values`. */
  encode(values: Partial<StructValue<F>>, totalSize?: number): Uint8Array;
  /** Writes `values` into `buf` at `offset`; fields not named are left as they are. */
  write(buf: Uint8Array, values: Partial<StructValue<F>>, offset?: number): void;
  /** Reads every field of the struct at `offset` of `buf`. */
  decode(buf: Uint8Array, offset?: number): StructValue<F>;
}

const widths: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

// Fields are read and written byte by byte: a DataView per call was the largest cost of
// the MAP_DMA/UNMAP_DMA path (bench/dma-tracker), and one cached per buffer thrashes as
// soon as a caller alternates two buffers. A u64 goes through one 8-byte scratch array.
const scratch = new BigUint64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);
/** The scratch array's byte holding the value's byte k (the structs are little-endian). */
const HOST_BYTE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? [0, 1, 2, 3, 4, 5, 6, 7] : [7, 6, 5, 4, 3, 2, 1, 0];

const readers = {
  u8: (buf: Uint8Array, at: number): number => buf[at]!,
  u16: (buf: Uint8Array, at: number): number => buf[at]! | (buf[at + 1]! << 8),
  u32: (buf: Uint8Array, at: number): number => (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0,
  s32: (buf: Uint8Array, at: number): number => buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24),
  u64: (buf: Uint8Array, at: number): bigint => {
    for (let k = 0; k < 8; k++) scratchBytes[HOST_BYTE[k]!] = buf[at + k]!;
    return scratch[0]!;
  },
};

const writers = {
  u8: (buf: Uint8Array, at: number, value: number | bigint): void => {
    buf[at] = Number(value); // a Uint8Array keeps the low 8 bits, as DataView's setters did
  },
  u16: (buf: Uint8Array, at: number, value: number | bigint): void => {
    const n = Number(value);
    buf[at] = n;
    buf[at + 1] = n >>> 8;
  },
  u32: (buf: Uint8Array, at: number, value: number | bigint): void => {
    const n = Number(value);
    buf[at] = n;
    buf[at + 1] = n >>> 8;
    buf[at + 2] = n >>> 16;
    buf[at + 3] = n >>> 24;
  },
  s32: (buf: Uint8Array, at: number, value: number | bigint): void => writers.u32(buf, at, value),
  u64: (buf: Uint8Array, at: number, value: number | bigint): void => {
    scratch[0] = BigInt.asUintN(64, typeof value === 'bigint' ? value : BigInt(value));
    for (let k = 0; k < 8; k++) buf[at + k] = scratchBytes[HOST_BYTE[k]!]!;
  },
};

/**
 * A struct's own decode and write, compiled from its field list. One shared loop would
 * meet every struct's field names at the same keyed loads and stores, which V8 can only
 * treat as dictionary lookups, and would build each decoded object a property at a time;
 * compiled per struct, the object is one literal of a fixed shape, each field a direct
 * call, and V8 keeps what it learns about each struct apart (bench dma-tracker: the
 * MAP_DMA+UNMAP_DMA ioctls and the vfio-user DMA handlers went ~1.4x faster). Only the
 * declarations in src/uapi reach here, never input, and defineStruct() lets through
 * only identifiers and whole numbers. (So node's --disallow-code-generation-from-strings
 * cannot run this project.)
 */
function compile<F extends FieldSpecs>(name: string, size: number, fields: F): Pick<StructCodec<F>, 'decode' | 'write'> {
  const entries = Object.entries(fields);
  const check = `if (offset + ${size} > buf.byteLength) throw new RangeError(\`${name} needs ${size} bytes at \${offset}, buffer has \${buf.byteLength}\`);`;
  const decode = entries.map(([field, [type, offset]]) => `${field}: r.${type}(buf, offset + ${offset})`).join(', ');
  const write = entries.map(([field, [type, offset]]) => `if (values.${field} !== undefined) w.${type}(buf, offset + ${offset}, values.${field});`);
  // Named decode_<struct> and write_<struct>, for stack traces and profiles.
  const make = (kind: string, params: string, body: string[]): unknown => new Function('r', 'w', `return function ${kind}_${name}(${params}) {\n${body.join('\n')}\n};`)(readers, writers);
  return {
    decode: make('decode', 'buf, offset = 0', [check, `return { ${decode} };`]) as StructCodec<F>['decode'],
    write: make('write', 'buf, values, offset = 0', [check, ...write]) as StructCodec<F>['write'],
  };
}

export function defineStruct<F extends FieldSpecs>(name: string, size: number, fields: F): StructCodec<F> {
  // What compile() puts into code: identifiers and integers only.
  const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;
  if (!identifier.test(name) || !Number.isInteger(size) || size < 0) throw new Error(`struct ${JSON.stringify(name)} of size ${size}: a name must be an identifier, a size a whole number`);
  for (const [field, [type, offset]] of Object.entries(fields)) {
    if (!identifier.test(field) || field === '__proto__' || !Object.hasOwn(widths, type) || !Number.isInteger(offset) || offset < 0) {
      throw new Error(`${name}.${JSON.stringify(field)}: a field needs an identifier, a known type and a whole-number offset`);
    }
    if (offset + widths[type] > size) throw new Error(`${name}.${field} lies outside ${size} bytes`);
  }
  // Compiled on first use, each method then replaced by its compiled form: most of the
  // structs declared go unused in any one process, and each costs ~50 µs to compile.
  let done: StructCodec<F> | undefined;
  const compiled = (): StructCodec<F> => (done ??= Object.assign(codec, compile(name, size, fields)));
  const codec: StructCodec<F> = {
    name,
    size,
    fields,
    encode(values, totalSize = size) {
      const buf = new Uint8Array(Math.max(totalSize, size));
      codec.write(buf, values);
      return buf;
    },
    write: (buf, values, offset) => compiled().write(buf, values, offset),
    decode: (buf, offset) => compiled().decode(buf, offset),
  };
  return codec;
}
