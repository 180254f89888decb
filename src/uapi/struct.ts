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

function readField(buf: Uint8Array, type: FieldType, at: number): number | bigint {
  switch (type) {
    case 'u8': return buf[at]!;
    case 'u16': return buf[at]! | (buf[at + 1]! << 8);
    case 'u32': return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
    case 's32': return buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24);
    case 'u64':
      for (let k = 0; k < 8; k++) scratchBytes[HOST_BYTE[k]!] = buf[at + k]!;
      return scratch[0]!;
  }
}

function writeField(buf: Uint8Array, type: FieldType, at: number, value: number | bigint): void {
  if (type === 'u64') {
    scratch[0] = BigInt.asUintN(64, BigInt(value));
    for (let k = 0; k < 8; k++) buf[at + k] = scratchBytes[HOST_BYTE[k]!]!;
    return;
  }
  const n = Number(value);
  buf[at] = n; // a Uint8Array keeps the low 8 bits, as DataView's setters did
  if (type === 'u8') return;
  buf[at + 1] = n >>> 8;
  if (type === 'u16') return;
  buf[at + 2] = n >>> 16;
  buf[at + 3] = n >>> 24;
}

export function defineStruct<F extends FieldSpecs>(name: string, size: number, fields: F): StructCodec<F> {
  for (const [field, [type, offset]] of Object.entries(fields)) {
    if (offset + widths[type] > size) throw new Error(`${name}.${field} lies outside ${size} bytes`);
  }
  // Parallel arrays rather than [field, [type, at]] entries: the loops below run on every
  // ioctl, and plain indexed reads keep them free of iterators and destructuring.
  const names = Object.keys(fields) as (keyof F & string)[];
  const types = names.map((field) => fields[field]![0]);
  const offsets = names.map((field) => fields[field]![1]);
  const codec: StructCodec<F> = {
    name,
    size,
    fields,
    encode(values, totalSize = size) {
      const buf = new Uint8Array(Math.max(totalSize, size));
      codec.write(buf, values);
      return buf;
    },
    write(buf, values, offset = 0) {
      if (offset + size > buf.byteLength) throw new RangeError(`${name} needs ${size} bytes at ${offset}, buffer has ${buf.byteLength}`);
      for (let i = 0; i < names.length; i++) {
        const value = values[names[i]!];
        if (value !== undefined) writeField(buf, types[i]!, offset + offsets[i]!, value);
      }
    },
    decode(buf, offset = 0) {
      if (offset + size > buf.byteLength) throw new RangeError(`${name} needs ${size} bytes at ${offset}, buffer has ${buf.byteLength}`);
      const out: Record<string, number | bigint> = {};
      for (let i = 0; i < names.length; i++) out[names[i]!] = readField(buf, types[i]!, offset + offsets[i]!);
      return out as StructValue<F>;
    },
  };
  return codec;
}
