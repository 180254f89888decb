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

// The last buffer's DataView: callers reuse one argument buffer call after call (an
// ioctl's struct is decoded, then written back), and a new DataView per call was the
// largest cost of the MAP_DMA/UNMAP_DMA path (bench/dma-tracker). One entry only, so
// at most one buffer is kept alive by it.
let lastBuf: Uint8Array | undefined;
let lastView: DataView | undefined;

function view(buf: Uint8Array): DataView {
  if (buf !== lastBuf) {
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    lastBuf = buf;
  }
  return lastView!;
}

export function readField(dv: DataView, type: FieldType, at: number): number | bigint {
  switch (type) {
    case 'u8': return dv.getUint8(at);
    case 'u16': return dv.getUint16(at, true);
    case 'u32': return dv.getUint32(at, true);
    case 's32': return dv.getInt32(at, true);
    case 'u64': return dv.getBigUint64(at, true);
  }
}

export function writeField(dv: DataView, type: FieldType, at: number, value: number | bigint): void {
  switch (type) {
    case 'u8': dv.setUint8(at, Number(value)); return;
    case 'u16': dv.setUint16(at, Number(value), true); return;
    case 'u32': dv.setUint32(at, Number(value) >>> 0, true); return;
    case 's32': dv.setInt32(at, Number(value), true); return;
    case 'u64': dv.setBigUint64(at, BigInt.asUintN(64, BigInt(value)), true); return;
  }
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
      const dv = view(buf);
      for (let i = 0; i < names.length; i++) {
        const value = values[names[i]!];
        if (value !== undefined) writeField(dv, types[i]!, offset + offsets[i]!, value);
      }
    },
    decode(buf, offset = 0) {
      if (offset + size > buf.byteLength) throw new RangeError(`${name} needs ${size} bytes at ${offset}, buffer has ${buf.byteLength}`);
      const dv = view(buf);
      const out: Record<string, number | bigint> = {};
      for (let i = 0; i < names.length; i++) out[names[i]!] = readField(dv, types[i]!, offset + offsets[i]!);
      return out as StructValue<F>;
    },
  };
  return codec;
}
