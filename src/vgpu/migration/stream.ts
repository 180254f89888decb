// The vGPU migration stream: what a saving data channel produces and a resuming one
// accepts. Opaque to the transports; versioned so a stream is only ever loaded into a
// vGPU of the same vendor, type and model version.
//
//   header   0  magic "vfiovgpu"       8 bytes
//            8  format version u32    (STREAM_FORMAT)
//           12  header length u32     (all of the header, its CRC included)
//           16  model version u32     (the vendor's VgpuMigration.version)
//           20  vendor length u16, 22 type length u16, 24 memory count u16, 26 reserved u16
//           28  vendor name, type name (UTF-8), then a u64 size per memory
//            …  CRC-32 of the header's bytes before it, u32
//   records (24-byte head, then payload), in order, numbered from 0:
//            0 kind u8   1 SECTION (payload: name, data), 2 DATA (payload: bytes of memory),
//                        3 ZERO (memory range that reads as zeros now), 4 END
//            1 reserved u8, 2 u16: memory index (DATA, ZERO) or name length (SECTION)
//            4 sequence u32, 8 u64: offset in the memory (DATA, ZERO) or, for END, the
//              stream's length before the END record
//           16 u32: payload length (DATA, SECTION) or range length (ZERO)
//           20 u32: CRC-32 of the payload, or for END the CRC-32 of the whole stream before it
// Every number is little-endian.
import { crc32 } from 'node:zlib';

export const STREAM_MAGIC = 'vfiovgpu';
export const STREAM_FORMAT = 1;
export const RECORD_HEAD = 24;
/** The most one SECTION may carry (registers, rings, interrupt state: small). */
export const SECTION_MAX = 1 << 20;
/** The most one DATA record carries. */
export const DATA_CHUNK = 1 << 20;

export const RecordKind = { SECTION: 1, DATA: 2, ZERO: 3, END: 4 } as const;

export interface StreamIdentity {
  readonly vendor: string;
  readonly type: string;
  readonly version: number;
  /** Byte sizes of the memories streamed (framebuffers), in order. */
  readonly memorySizes: readonly number[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeHeader(id: StreamIdentity): Uint8Array {
  const vendor = encoder.encode(id.vendor);
  const type = encoder.encode(id.type);
  const length = 28 + vendor.byteLength + type.byteLength + 8 * id.memorySizes.length + 4;
  const out = new Uint8Array(length);
  const dv = new DataView(out.buffer);
  out.set(encoder.encode(STREAM_MAGIC), 0);
  dv.setUint32(8, STREAM_FORMAT, true);
  dv.setUint32(12, length, true);
  dv.setUint32(16, id.version, true);
  dv.setUint16(20, vendor.byteLength, true);
  dv.setUint16(22, type.byteLength, true);
  dv.setUint16(24, id.memorySizes.length, true);
  out.set(vendor, 28);
  out.set(type, 28 + vendor.byteLength);
  let at = 28 + vendor.byteLength + type.byteLength;
  for (const size of id.memorySizes) {
    dv.setBigUint64(at, BigInt(size), true);
    at += 8;
  }
  dv.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

/** The header length a stream's first 16 bytes announce, checked for sanity. */
export function headerLength(first16: Uint8Array): number {
  if (decoder.decode(first16.subarray(0, 8)) !== STREAM_MAGIC) throw new StreamError('not a vGPU migration stream (bad magic)');
  const dv = new DataView(first16.buffer, first16.byteOffset, 16);
  const format = dv.getUint32(8, true);
  if (format !== STREAM_FORMAT) throw new StreamError(`stream format ${format}, this host reads format ${STREAM_FORMAT}`);
  const length = dv.getUint32(12, true);
  if (length < 32 || length > 4096) throw new StreamError(`header length ${length}`);
  return length;
}

export function decodeHeader(bytes: Uint8Array): StreamIdentity {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength - 4;
  if (crc32(bytes.subarray(0, end)) !== dv.getUint32(end, true)) throw new StreamError('header checksum mismatch (corrupted stream)');
  const vendorLength = dv.getUint16(20, true);
  const typeLength = dv.getUint16(22, true);
  const count = dv.getUint16(24, true);
  if (28 + vendorLength + typeLength + 8 * count !== end) throw new StreamError('header lengths do not add up');
  let vendor: string;
  let type: string;
  try {
    vendor = decoder.decode(bytes.subarray(28, 28 + vendorLength));
    type = decoder.decode(bytes.subarray(28 + vendorLength, 28 + vendorLength + typeLength));
  } catch {
    throw new StreamError('header names are not UTF-8');
  }
  const memorySizes: number[] = [];
  let at = 28 + vendorLength + typeLength;
  for (let i = 0; i < count; i++, at += 8) {
    const size = dv.getBigUint64(at, true);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new StreamError(`memory ${i} size ${size}`);
    memorySizes.push(Number(size));
  }
  return { vendor, type, version: dv.getUint32(16, true), memorySizes };
}

/** A record's head. */
export interface RecordHead {
  readonly kind: number;
  /** Memory index (DATA, ZERO) or name length (SECTION). */
  readonly index: number;
  readonly sequence: number;
  readonly offset: bigint;
  readonly length: number;
  readonly crc: number;
}

export function encodeRecord(head: RecordHead, payload?: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEAD + (payload?.byteLength ?? 0));
  const dv = new DataView(out.buffer);
  dv.setUint8(0, head.kind);
  dv.setUint16(2, head.index, true);
  dv.setUint32(4, head.sequence, true);
  dv.setBigUint64(8, head.offset, true);
  dv.setUint32(16, head.length, true);
  dv.setUint32(20, head.crc, true);
  if (payload) out.set(payload, RECORD_HEAD);
  return out;
}

export function decodeRecordHead(bytes: Uint8Array): RecordHead {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, RECORD_HEAD);
  if (dv.getUint8(1) !== 0) throw new StreamError('record reserved byte is not zero (corrupted stream)');
  return {
    kind: dv.getUint8(0), index: dv.getUint16(2, true), sequence: dv.getUint32(4, true),
    offset: dv.getBigUint64(8, true), length: dv.getUint32(16, true), crc: dv.getUint32(20, true),
  };
}

export function sectionPayload(name: string, data: Uint8Array): { payload: Uint8Array; nameLength: number } {
  const n = encoder.encode(name);
  const payload = new Uint8Array(n.byteLength + data.byteLength);
  payload.set(n, 0);
  payload.set(data, n.byteLength);
  return { payload, nameLength: n.byteLength };
}

export function decodeSectionName(payload: Uint8Array, nameLength: number): string {
  try {
    return decoder.decode(payload.subarray(0, nameLength));
  } catch {
    throw new StreamError('section name is not UTF-8');
  }
}

/** What is wrong with a stream: the resuming side refuses it with this text (EINVAL). */
export class StreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StreamError';
  }
}

/** A running CRC-32 over everything streamed (zlib's crc32 takes the previous value). */
export class StreamCrc {
  value = 0;
  length = 0;

  add(bytes: Uint8Array): void {
    this.value = crc32(bytes, this.value);
    this.length += bytes.byteLength;
  }
}

export { crc32 };
