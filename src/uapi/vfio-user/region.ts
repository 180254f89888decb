// Region access: REGION_READ, REGION_WRITE, REGION_WRITE_MULTI (client to server).
import { defineStruct, type StructValue } from '../struct.js';
import { qemuVfioUserLimits } from './constants.js';
import type { VfioUserBody } from './header.js';
import { expectLength, invalid, safeCount } from './invalid.js';

/**
 * REGION_READ and REGION_WRITE, both ways, 16 bytes then `count` bytes of data in a
 * REGION_WRITE request and a REGION_READ reply (none in the other two).
 *   0 u64 offset   into the region
 *   8 u32 region   index
 *  12 u32 count    bytes asked for (request) or moved (reply)
 *  16 data
 */
export const vfio_user_region_access = defineStruct('vfio_user_region_access', 16, {
  offset: ['u64', 0], region: ['u32', 8], count: ['u32', 12],
});

/**
 * REGION_WRITE_MULTI request: a u64 wr_cnt, then wr_cnt writes of 24 bytes; the reply
 * is the u64 count of writes done. QEMU 10.1 only sends it (always with No_reply, at
 * most 200 writes) to a server that announced write_multiple.
 *   0 u64 wr_cnt
 *   8 wrs[wr_cnt], each:
 *        0 u64 offset
 *        8 u32 region
 *       12 u32 count    1 to 8
 *       16 u8[8] data   the first `count` bytes are written
 */
export const vfio_user_write_multi = defineStruct('vfio_user_write_multi', 8, { wr_cnt: ['u64', 0] });
export const vfio_user_write_one = defineStruct('vfio_user_write_one', 24, {
  offset: ['u64', 0], region: ['u32', 8], count: ['u32', 12],
});

const WRITE_ONE_DATA_AT = 16;
const WRITE_ONE_DATA_MAX = 8;

export type RegionAccessHead = StructValue<typeof vfio_user_region_access.fields>;

export interface RegionAccess extends RegionAccessHead {
  /** A subarray of the body: no copy. */
  data: Uint8Array;
}

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${what} ${value} is not a u32`);
  return value;
}

function head(offset: bigint, region: number, count: number): Uint8Array {
  return vfio_user_region_access.encode({ offset, region: u32(region, 'region'), count: u32(count, 'count') });
}

/** REGION_READ request: 16 bytes, no data. */
export function encodeRegionRead(offset: bigint, region: number, count: number): Uint8Array {
  return head(offset, region, count);
}

/** REGION_READ reply: the head, then the bytes read (not copied here). */
export function encodeRegionReadReply(offset: bigint, region: number, data: Uint8Array): VfioUserBody {
  return [head(offset, region, data.byteLength), data];
}

/** REGION_WRITE request: the head, then the bytes to write (not copied here). */
export function encodeRegionWrite(offset: bigint, region: number, data: Uint8Array): VfioUserBody {
  return [head(offset, region, data.byteLength), data];
}

/** REGION_WRITE reply: 16 bytes, no data. */
export function encodeRegionWriteReply(offset: bigint, region: number, count: number): Uint8Array {
  return head(offset, region, count);
}

/** REGION_READ request and REGION_WRITE reply: exactly 16 bytes. */
export function decodeRegionAccessHead(body: Uint8Array): RegionAccessHead {
  expectLength(body, vfio_user_region_access.size, 'VFIO_USER_REGION_READ/WRITE');
  return vfio_user_region_access.decode(body);
}

/** REGION_WRITE request and REGION_READ reply: exactly 16 + count bytes. */
export function decodeRegionAccess(body: Uint8Array): RegionAccess {
  expectLength(body, vfio_user_region_access.size, 'VFIO_USER_REGION_READ/WRITE', true);
  const head = vfio_user_region_access.decode(body);
  expectLength(body, vfio_user_region_access.size + head.count, 'VFIO_USER_REGION_READ/WRITE with data');
  return { ...head, data: body.subarray(vfio_user_region_access.size) };
}

export function encodeWriteMulti(writes: readonly RegionAccess[]): Uint8Array {
  const out = new Uint8Array(vfio_user_write_multi.size + writes.length * vfio_user_write_one.size);
  vfio_user_write_multi.write(out, { wr_cnt: BigInt(writes.length) });
  writes.forEach((w, i) => {
    if (w.data.byteLength < 1 || w.data.byteLength > WRITE_ONE_DATA_MAX) throw new RangeError(`WRITE_MULTI: write ${i} has ${w.data.byteLength} bytes, not 1 to 8`);
    const at = vfio_user_write_multi.size + i * vfio_user_write_one.size;
    vfio_user_write_one.write(out, { offset: w.offset, region: u32(w.region, 'region'), count: w.data.byteLength }, at);
    out.set(w.data, at + WRITE_ONE_DATA_AT);
  });
  return out;
}

/** Each write's data is a subarray of the body, `count` bytes long. */
export function decodeWriteMulti(body: Uint8Array): RegionAccess[] {
  const what = 'VFIO_USER_REGION_WRITE_MULTI';
  expectLength(body, vfio_user_write_multi.size, what, true);
  const count = safeCount(vfio_user_write_multi.decode(body).wr_cnt, what);
  expectLength(body, vfio_user_write_multi.size + count * vfio_user_write_one.size, `${what} of ${count} writes`);
  const writes: RegionAccess[] = [];
  for (let i = 0; i < count; i++) {
    const at = vfio_user_write_multi.size + i * vfio_user_write_one.size;
    const head = vfio_user_write_one.decode(body, at);
    if (head.count < 1 || head.count > WRITE_ONE_DATA_MAX) throw invalid(`${what}: write ${i} has count ${head.count}, not 1 to 8`);
    writes.push({ ...head, data: body.subarray(at + WRITE_ONE_DATA_AT, at + WRITE_ONE_DATA_AT + head.count) });
  }
  return writes;
}

export function encodeWriteMultiReply(done: number): Uint8Array {
  return vfio_user_write_multi.encode({ wr_cnt: BigInt(done) });
}

export function decodeWriteMultiReply(body: Uint8Array): number {
  expectLength(body, vfio_user_write_multi.size, 'VFIO_USER_REGION_WRITE_MULTI reply');
  return safeCount(vfio_user_write_multi.decode(body).wr_cnt, 'VFIO_USER_REGION_WRITE_MULTI reply');
}

/** The most writes QEMU packs in one message (so its body is at most 4808 bytes). */
export const WRITE_MULTI_MAX_BODY = vfio_user_write_multi.size + qemuVfioUserLimits.writeMultiMax * vfio_user_write_one.size;
