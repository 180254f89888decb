// The one error every decoder throws: the peer sent bytes that do not fit the protocol.
// Length rules of the decoders: a body with a data tail must hold exactly its fixed part
// plus the data its count announces; a fixed body with argsz (the VFIO way of growing a
// struct) must hold at least its fixed part, and bytes past it are ignored.
import { type SysError, sysError } from '../../addon/errors.js';

export function invalid(detail: string): SysError {
  return sysError('EINVAL', 'vfio-user', undefined, detail);
}

/** Throws unless `body` holds exactly (or, with `atLeast`, at least) `size` bytes. */
export function expectLength(body: Uint8Array, size: number, what: string, atLeast = false): void {
  const ok = atLeast ? body.byteLength >= size : body.byteLength === size;
  if (!ok) throw invalid(`${what}: body is ${body.byteLength} bytes, expected ${atLeast ? 'at least ' : ''}${size}`);
}

/** A u64 count as a number: refuses what no body could hold. */
export function safeCount(count: bigint, what: string): number {
  if (count > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${what}: count ${count} is absurd`);
  return Number(count);
}
