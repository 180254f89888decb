// How the mock kernel reads an ioctl's argument the way the kernel's copy_from_user and
// get_user do: a pointer ioctl given an integer (or nothing) points at memory the
// process does not have, and a buffer shorter than what the kernel copies runs off the
// end of the caller's memory. Both are EFAULT, never a crash.
import { sysError } from '../../addon/errors.js';

/** The buffer behind a pointer argument; EFAULT for an integer, undefined or NULL. */
export function userPointer(arg: number | Uint8Array | undefined, operation: string): Uint8Array {
  if (!(arg instanceof Uint8Array)) throw sysError('EFAULT', 'ioctl', operation, 'the argument must be a buffer');
  return arg;
}

/** copy_from_user/copy_to_user of `length` bytes at `offset`: EFAULT past the buffer's end. */
export function requireUserBytes(buf: Uint8Array, offset: number, length: number, operation: string): void {
  if (offset < 0 || length < 0 || offset + length > buf.byteLength) {
    throw sysError('EFAULT', 'ioctl', operation, `needs bytes ${offset}..${offset + length} of a ${buf.byteLength}-byte buffer`);
  }
}

/** A value argument (CHECK_EXTENSION, SET_IOMMU) as the kernel sees an unsigned long. */
export function userValue(arg: number | Uint8Array | undefined): bigint {
  if (arg === undefined) return 0n;
  // A buffer passed where a value is expected arrives as its address: no sane value.
  if (arg instanceof Uint8Array) return 0xffff_ffff_ffff_ffffn;
  if (!Number.isFinite(arg)) return 0xffff_ffff_ffff_ffffn;
  return BigInt.asUintN(64, BigInt(Math.trunc(arg)));
}

export function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
