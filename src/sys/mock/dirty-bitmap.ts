// Dirty-page bitmaps as TYPE1 reports them to user memory: one bit per page, in u64
// words, each mapping's bits shifted to its place relative to the requested base IOVA.
// The kernel writes whole words: the first word is ORed with what the user had there
// (when the mapping starts mid-word), and bits past the mapping in its last word are
// written as zero.
import { sysError } from '../../addon/errors.js';
import type { AddressSpace } from './address-space.js';

/** DIRTY_BITMAP_BYTES(INT_MAX): the largest bitmap the kernel accepts (256 MiB). */
export const DIRTY_BITMAP_SIZE_MAX = 1n << 28n;
/** TASK_SIZE_MAX of x86-64 with 4-level paging: where user addresses end. */
const TASK_SIZE_MAX = 0x7fff_ffff_f000n;

export function dirtyBitmapBytes(npages: bigint): bigint {
  return ((npages + 63n) / 64n) * 8n;
}

/** access_ok(): the range lies inside the user address space. */
export function accessOk(addr: bigint, size: bigint): boolean {
  return size <= TASK_SIZE_MAX && addr <= TASK_SIZE_MAX - size;
}

/** verify_bitmap_size(): EINVAL unless the bitmap is non-empty, big enough and not too big. */
export function verifyBitmapSize(npages: bigint, bitmapSize: bigint, operation: string): void {
  if (npages === 0n || bitmapSize === 0n || bitmapSize > DIRTY_BITMAP_SIZE_MAX || bitmapSize < dirtyBitmapBytes(npages)) {
    throw sysError('EINVAL', 'ioctl', operation, `bitmap of ${bitmapSize} bytes for ${npages} pages`);
  }
}

/** __ffs(): index of the lowest set bit (0 for 0, where the kernel's answer is undefined). */
export function lowestBit(value: bigint): bigint {
  if (value === 0n) return 0n;
  // value & -value keeps the lowest set bit alone; its binary length gives its index.
  return BigInt(BigInt.asUintN(64, value & -value).toString(2).length - 1);
}

function setBits(out: Uint8Array, from: number, count: number): void {
  let bit = from;
  const end = from + count;
  while (bit < end && bit % 8 !== 0) { out[bit >> 3]! |= 1 << (bit & 7); bit++; }
  const fullEnd = end - (end % 8);
  if (bit < fullEnd) { out.fill(0xff, bit >> 3, fullEnd >> 3); bit = fullEnd; }
  while (bit < end) { out[bit >> 3]! |= 1 << (bit & 7); bit++; }
}

export interface BitmapMapping {
  readonly iova: bigint;
  readonly size: bigint;
}

/**
 * update_user_bitmap(): writes one mapping's bits into the user's bitmap at `bitmapAddr`.
 * `dirty` is 'all' or the dirty page indexes within the mapping.
 */
export function writeUserBitmap(mm: AddressSpace, bitmapAddr: bigint, mapping: BitmapMapping, baseIova: bigint,
  pgshift: bigint, dirty: 'all' | ReadonlySet<number>, operation: string): void {
  const nbits = Number(mapping.size >> pgshift);
  const bitOffset = (mapping.iova - baseIova) >> pgshift;
  const wordOffset = bitOffset / 64n;
  const shift = Number(bitOffset % 64n);
  const out = new Uint8Array(Math.ceil((nbits + shift) / 64) * 8);
  if (dirty === 'all') setBits(out, shift, nbits);
  else for (const page of dirty) if (page < nbits) setBits(out, shift + page, 1);
  const at = bitmapAddr + wordOffset * 8n;
  if (shift !== 0) {
    const leftover = mm.copyFromUser(at, 8, operation);
    for (let i = 0; i < 8; i++) out[i]! |= leftover[i]!;
  }
  mm.copyToUser(at, out, operation);
}
