// DMA messages: DMA_MAP and DMA_UNMAP (client to server), DMA_READ and DMA_WRITE (server
// to client, over the twin socket when one was negotiated).
import { defineStruct, type StructValue } from '../struct.js';
import { vfioUserDmaFlags } from './constants.js';
import type { VfioUserBody } from './header.js';
import { expectLength, invalid, safeCount } from './invalid.js';

/**
 * DMA_MAP request, 32 bytes; the reply has no body. The layout is that of the kernel's
 * vfio_iommu_type1_dma_map, but `offset` is a file offset into the fd sent with the
 * message (0 without one) where the kernel has a virtual address: hence its own codec.
 *   0 u32 argsz    32 (there is no reply payload)
 *   4 u32 flags    VFIO_USER_F_DMA_REGION_READ | _WRITE
 *   8 u64 offset   into the fd in the ancillary data
 *  16 u64 address  base DMA address
 *  24 u64 size
 */
export const vfio_user_dma_map = defineStruct('vfio_user_dma_map', 32, {
  argsz: ['u32', 0], flags: ['u32', 4], offset: ['u64', 8], address: ['u64', 16], size: ['u64', 24],
});

/**
 * DMA_UNMAP request and reply, 24 bytes (the layout of vfio_iommu_type1_dma_unmap,
 * named as the spec names it). With VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP a
 * vfio_user_bitmap follows, and in the reply `size` bytes of bitmap after it.
 *   0 u32 argsz    the largest reply the client accepts
 *   4 u32 flags
 *   8 u64 address
 *  16 u64 size
 */
export const vfio_user_dma_unmap = defineStruct('vfio_user_dma_unmap', 24, {
  argsz: ['u32', 0], flags: ['u32', 4], address: ['u64', 8], size: ['u64', 16],
});

/** Not the kernel's vfio_bitmap (24 bytes, with a pointer): the bits follow inline. */
export const vfio_user_bitmap = defineStruct('vfio_user_bitmap', 16, { pgsize: ['u64', 0], size: ['u64', 8] });

/**
 * DMA_READ and DMA_WRITE as the spec lays them out:
 *   0 u64 address
 *   8 u64 count
 *  16 data (DMA_READ reply, DMA_WRITE request)
 */
export const vfio_user_dma_region_access = defineStruct('vfio_user_dma_region_access', 16, {
  address: ['u64', 0], count: ['u64', 8],
});

/**
 * DMA_READ and DMA_WRITE as QEMU 10.1 lays them out (its VFIOUserDMARW): a u32 count and
 * the data at 12, then 4 bytes of struct padding at the end, so the body is still 16 +
 * count bytes. QEMU reads a DMA_WRITE's data from offset 12 and sends a DMA_READ's reply
 * data at 12: a server talking to QEMU must use this layout for both.
 *   0 u64 address
 *   8 u32 count
 *  12 data, then 4 bytes of padding
 */
export const qemu_vfio_user_dma_rw = defineStruct('qemu_vfio_user_dma_rw', 12, { address: ['u64', 0], count: ['u32', 8] });

export type DmaMap = StructValue<typeof vfio_user_dma_map.fields>;
export type DmaAccessLayout = 'spec' | 'qemu';

export interface DmaBitmap { pgsize: bigint; size: bigint }

export interface DmaUnmap {
  argsz: number;
  flags: number;
  address: bigint;
  size: bigint;
  /** Present when flags has VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP. */
  bitmap?: DmaBitmap;
}

export interface DmaUnmapReply extends DmaUnmap {
  /** The dirty bits (a subarray of the body), when the request asked for them. */
  bitmapData?: Uint8Array;
}

export interface DmaAccess {
  address: bigint;
  count: number;
  /** A subarray of the body: no copy. */
  data: Uint8Array;
}

const GET_DIRTY_BITMAP = vfioUserDmaFlags.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
const QEMU_PADDING = 4;

export function encodeDmaMap(map: Omit<DmaMap, 'argsz'>): Uint8Array {
  return vfio_user_dma_map.encode({ ...map, argsz: vfio_user_dma_map.size });
}

export function decodeDmaMap(body: Uint8Array): DmaMap {
  expectLength(body, vfio_user_dma_map.size, 'VFIO_USER_DMA_MAP', true);
  return vfio_user_dma_map.decode(body);
}

function unmapBytes(unmap: Omit<DmaUnmap, 'argsz'>, argsz: number, bitmapData?: Uint8Array): Uint8Array {
  const asksBitmap = (unmap.flags & GET_DIRTY_BITMAP) !== 0;
  if (asksBitmap !== (unmap.bitmap !== undefined)) throw new RangeError('DMA_UNMAP: a bitmap goes with GET_DIRTY_BITMAP, and only with it');
  const head = vfio_user_dma_unmap.size + (unmap.bitmap === undefined ? 0 : vfio_user_bitmap.size);
  const out = new Uint8Array(head + (bitmapData?.byteLength ?? 0));
  vfio_user_dma_unmap.write(out, { argsz, flags: unmap.flags, address: unmap.address, size: unmap.size });
  if (unmap.bitmap !== undefined) vfio_user_bitmap.write(out, unmap.bitmap, vfio_user_dma_unmap.size);
  if (bitmapData !== undefined) out.set(bitmapData, head);
  return out;
}

/** The request; argsz defaults to the reply it implies (24, plus 16 and the bitmap). */
export function encodeDmaUnmap(unmap: Omit<DmaUnmap, 'argsz'>, argsz?: number): Uint8Array {
  const bitmapBytes = unmap.bitmap === undefined ? 0 : vfio_user_bitmap.size + Number(unmap.bitmap.size);
  const replySize = argsz ?? vfio_user_dma_unmap.size + bitmapBytes;
  if (!Number.isInteger(replySize) || replySize < 0 || replySize > 0xffffffff) throw new RangeError(`DMA_UNMAP argsz ${replySize} is not a u32`);
  return unmapBytes(unmap, replySize);
}

function decodeUnmapHead(body: Uint8Array, what: string): DmaUnmap {
  expectLength(body, vfio_user_dma_unmap.size, what, true);
  const out: DmaUnmap = vfio_user_dma_unmap.decode(body);
  if ((out.flags & GET_DIRTY_BITMAP) !== 0) {
    expectLength(body, vfio_user_dma_unmap.size + vfio_user_bitmap.size, `${what} with a dirty bitmap`, true);
    out.bitmap = vfio_user_bitmap.decode(body, vfio_user_dma_unmap.size);
  }
  return out;
}

export function decodeDmaUnmap(body: Uint8Array): DmaUnmap {
  return decodeUnmapHead(body, 'VFIO_USER_DMA_UNMAP');
}

/** The reply echoes the request; with a dirty bitmap, `bitmapData` must be its size. */
export function encodeDmaUnmapReply(request: DmaUnmap, bitmapData?: Uint8Array): Uint8Array {
  if (request.bitmap !== undefined && BigInt(bitmapData?.byteLength ?? -1) !== request.bitmap.size) {
    throw new RangeError(`DMA_UNMAP reply: the bitmap must be ${request.bitmap.size} bytes`);
  }
  if (request.bitmap === undefined && bitmapData !== undefined) throw new RangeError('DMA_UNMAP reply: no bitmap was asked for');
  return unmapBytes(request, request.argsz, bitmapData);
}

export function decodeDmaUnmapReply(body: Uint8Array): DmaUnmapReply {
  const out: DmaUnmapReply = decodeUnmapHead(body, 'VFIO_USER_DMA_UNMAP reply');
  if (out.bitmap !== undefined) {
    const head = vfio_user_dma_unmap.size + vfio_user_bitmap.size;
    if (BigInt(body.byteLength - head) !== out.bitmap.size) {
      throw invalid(`VFIO_USER_DMA_UNMAP reply: bitmap of ${out.bitmap.size} bytes, ${body.byteLength - head} present`);
    }
    out.bitmapData = body.subarray(head);
  }
  return out;
}

function encodeWithData(address: bigint, data: Uint8Array, layout: DmaAccessLayout): VfioUserBody {
  if (layout === 'spec') return [vfio_user_dma_region_access.encode({ address, count: BigInt(data.byteLength) }), data];
  return [qemu_vfio_user_dma_rw.encode({ address, count: data.byteLength }), data, new Uint8Array(QEMU_PADDING)];
}

function decodeWithData(body: Uint8Array, layout: DmaAccessLayout, what: string): DmaAccess {
  if (layout === 'spec') {
    expectLength(body, vfio_user_dma_region_access.size, what, true);
    const head = vfio_user_dma_region_access.decode(body);
    const count = safeCount(head.count, what);
    expectLength(body, vfio_user_dma_region_access.size + count, what);
    return { address: head.address, count, data: body.subarray(vfio_user_dma_region_access.size) };
  }
  expectLength(body, qemu_vfio_user_dma_rw.size + QEMU_PADDING, what, true);
  const head = qemu_vfio_user_dma_rw.decode(body);
  expectLength(body, qemu_vfio_user_dma_rw.size + head.count + QEMU_PADDING, what);
  const at = qemu_vfio_user_dma_rw.size;
  return { address: head.address, count: head.count, data: body.subarray(at, at + head.count) };
}

/**
 * DMA_READ request, 16 bytes in both layouts: QEMU reads the low half of the spec's u64
 * count as its u32 count, the same bytes for any count below 4 GiB.
 */
export function encodeDmaReadRequest(address: bigint, count: number): Uint8Array {
  if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) throw new RangeError(`DMA_READ count ${count} is not a u32`);
  return vfio_user_dma_region_access.encode({ address, count: BigInt(count) });
}

export function decodeDmaReadRequest(body: Uint8Array): { address: bigint; count: number } {
  expectLength(body, vfio_user_dma_region_access.size, 'VFIO_USER_DMA_READ');
  const head = vfio_user_dma_region_access.decode(body);
  return { address: head.address, count: safeCount(head.count, 'VFIO_USER_DMA_READ') };
}

export function encodeDmaReadReply(address: bigint, data: Uint8Array, layout: DmaAccessLayout = 'spec'): VfioUserBody {
  return encodeWithData(address, data, layout);
}

export function decodeDmaReadReply(body: Uint8Array, layout: DmaAccessLayout = 'spec'): DmaAccess {
  return decodeWithData(body, layout, 'VFIO_USER_DMA_READ reply');
}

export function encodeDmaWriteRequest(address: bigint, data: Uint8Array, layout: DmaAccessLayout = 'spec'): VfioUserBody {
  return encodeWithData(address, data, layout);
}

export function decodeDmaWriteRequest(body: Uint8Array, layout: DmaAccessLayout = 'spec'): DmaAccess {
  return decodeWithData(body, layout, 'VFIO_USER_DMA_WRITE');
}

/** The spec's reply is address and count; QEMU 10.1 replies with the header alone. */
export function encodeDmaWriteReply(address: bigint, count: number, layout: DmaAccessLayout = 'spec'): Uint8Array {
  return layout === 'qemu' ? new Uint8Array(0) : vfio_user_dma_region_access.encode({ address, count: BigInt(count) });
}

/**
 * undefined for QEMU's empty reply. The spec's table gives the reply's count 4 bytes
 * where the request's has 8: both 12- and 16-byte bodies are read.
 */
export function decodeDmaWriteReply(body: Uint8Array): { address: bigint; count: number } | undefined {
  if (body.byteLength === 0) return undefined;
  if (body.byteLength === qemu_vfio_user_dma_rw.size) return qemu_vfio_user_dma_rw.decode(body);
  expectLength(body, vfio_user_dma_region_access.size, 'VFIO_USER_DMA_WRITE reply');
  const head = vfio_user_dma_region_access.decode(body);
  return { address: head.address, count: safeCount(head.count, 'VFIO_USER_DMA_WRITE reply') };
}
