// Splits the byte stream of a SOCK_STREAM unix socket into vfio-user messages, and pairs
// them with the fds that came with them (SCM_RIGHTS).
//
// Which message owns the fds of a chunk (one recvmsg's bytes and fds):
//   - the message whose first byte is in the chunk;
//   - if several start in it, the last of them;
//   - if none starts in it, the message in progress.
// Why this is right for a well-behaved sender, one that sends each message with a single
// sendmsg carrying its fds: Linux attaches the fds to the first skb of that sendmsg, which
// holds the message's first byte, and a recvmsg stops right after the data of an skb that
// carried fds, so it never returns fds of two sendmsg calls, and earlier messages in the
// same chunk came from skbs without fds. (QEMU 10.1 reads each header with its own
// recvmsg and takes the fds that came with it, which agrees.) An empty chunk with fds,
// which a stream socket does not produce, has its fds kept for close().
//
// A header whose size is below 16 leaves the stream unparseable: the reader turns
// `broken` (saying why), takes no more messages, and keeps every fd it was given so that
// close() hands them back. The caller then closes the connection.
//
// A message larger than maxMessageSize is never buffered: its body is dropped as it
// arrives and it is yielded as { header, oversized: true, fds } once skipped, so the
// caller can send an error reply (E2BIG, say) while the stream stays in step. At most
// one message, of at most maxMessageSize, is buffered at any time.
//
// Messages that lie whole in a chunk are yielded as views of that chunk, without a copy
// (the hot path: a 4-byte REGION_READ and its reply). So the reader takes the chunks it
// is given: do not reuse or overwrite their memory afterwards.
import { sysError } from '../../addon/errors.js';
import { VFIO_USER_HEADER_SIZE, vfioUserCommandName } from './constants.js';
import type { VfioUserHeader } from './header.js';
import { WRITE_MULTI_MAX_BODY } from './region.js';

export type VfioUserFrame =
  | { oversized: false; header: VfioUserHeader; body: Uint8Array; fds: number[] }
  | { oversized: true; header: VfioUserHeader; fds: number[] };

export interface VfioUserMessageReaderOptions {
  /** Whole messages (header included) above this are skipped, not buffered. */
  maxMessageSize: number;
}

/** The fixed part before the data of REGION_READ/WRITE and DMA_READ/WRITE. */
const DATA_MESSAGE_FIXED_PART = 16;
/** Room for every message whose size max_data_xfer_size does not bound (VERSION, caps...). */
const SMALL_MESSAGE_ROOM = 64 * 1024;

/**
 * A maxMessageSize fit for a peer that may send `maxDataXferSize` bytes of data in one
 * message: the header, the 16-byte fixed part of a data message and the data, and never
 * less than 64 KiB of body (REGION_WRITE_MULTI, VERSION, region info with capabilities).
 */
export function vfioUserMessageLimit(maxDataXferSize: number): number {
  const body = Math.max(DATA_MESSAGE_FIXED_PART + maxDataXferSize, SMALL_MESSAGE_ROOM, WRITE_MULTI_MAX_BODY);
  return Math.min(VFIO_USER_HEADER_SIZE + body, 0xffffffff);
}

type InProgress =
  | { phase: 'header'; bytes: Uint8Array; filled: number; fds: number[] }
  | { phase: 'body'; header: VfioUserHeader; body: Uint8Array; filled: number; fds: number[] }
  | { phase: 'skip'; header: VfioUserHeader; remaining: number; fds: number[] };

function readHeader(dv: DataView, at: number): VfioUserHeader {
  return {
    msg_id: dv.getUint16(at, true),
    command: dv.getUint16(at + 2, true),
    size: dv.getUint32(at + 4, true),
    flags: dv.getUint32(at + 8, true),
    error_no: dv.getUint32(at + 12, true),
  };
}

export class VfioUserMessageReader {
  readonly maxMessageSize: number;
  private inProgress: InProgress | undefined;
  /** Fds no message will take: those of a broken stream, of empty chunks. */
  private held: number[] = [];
  private brokenReason: string | undefined;
  private closed = false;
  /** Where the fds of the chunk being read go: the last message to start in it. */
  private fdOwner: number[] | undefined;

  constructor(options: VfioUserMessageReaderOptions) {
    const max = options.maxMessageSize;
    if (!Number.isInteger(max) || max < VFIO_USER_HEADER_SIZE || max > 0xffffffff) {
      throw new RangeError(`maxMessageSize ${max} is not from ${VFIO_USER_HEADER_SIZE} to 2^32-1`);
    }
    this.maxMessageSize = max;
  }

  /** Why the stream cannot be read any more, or undefined while it can. */
  get broken(): string | undefined {
    return this.brokenReason;
  }

  /** Bytes buffered for the message in progress (0 while skipping one). */
  get bufferedBytes(): number {
    const p = this.inProgress;
    if (p === undefined || p.phase === 'skip') return 0;
    return p.phase === 'header' ? p.bytes.byteLength : p.body.byteLength;
  }

  /**
   * Feeds one recvmsg's bytes and fds; returns the messages it completes, in order.
   * Once broken, returns nothing and keeps the fds for close().
   */
  push(bytes: Uint8Array, fds: readonly number[] = []): VfioUserFrame[] {
    if (this.closed) throw sysError('EBADF', 'vfio-user', undefined, 'the message reader is closed');
    if (this.brokenReason !== undefined) {
      this.held.push(...fds);
      return [];
    }
    const frames: VfioUserFrame[] = [];
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.fdOwner = undefined;
    let pos = this.inProgress === undefined ? 0 : this.continueMessage(bytes, frames);
    while (pos < bytes.byteLength && this.brokenReason === undefined) pos = this.startMessage(bytes, dv, pos, frames);
    (this.fdOwner ?? this.held).push(...fds);
    this.fdOwner = undefined;
    return frames;
  }

  /**
   * Ends the reader; returns every fd it holds that no yielded message took. A push
   * afterwards throws EBADF (and takes none of its fds).
   */
  close(): number[] {
    const fds = [...this.held, ...(this.inProgress?.fds ?? [])];
    this.held = [];
    this.inProgress = undefined;
    this.closed = true;
    return fds;
  }

  private startMessage(bytes: Uint8Array, dv: DataView, pos: number, frames: VfioUserFrame[]): number {
    const fds: number[] = [];
    this.fdOwner = fds;
    const avail = bytes.byteLength - pos;
    if (avail < VFIO_USER_HEADER_SIZE) {
      const header = new Uint8Array(VFIO_USER_HEADER_SIZE);
      header.set(bytes.subarray(pos));
      this.inProgress = { phase: 'header', bytes: header, filled: avail, fds };
      return bytes.byteLength;
    }
    return this.afterHeader(readHeader(dv, pos), bytes, pos + VFIO_USER_HEADER_SIZE, fds, frames);
  }

  private continueMessage(bytes: Uint8Array, frames: VfioUserFrame[]): number {
    const p = this.inProgress!;
    this.fdOwner = p.fds;
    if (p.phase === 'header') {
      const take = Math.min(VFIO_USER_HEADER_SIZE - p.filled, bytes.byteLength);
      p.bytes.set(bytes.subarray(0, take), p.filled);
      p.filled += take;
      if (p.filled < VFIO_USER_HEADER_SIZE) return take;
      this.inProgress = undefined;
      const header = readHeader(new DataView(p.bytes.buffer), 0);
      return this.afterHeader(header, bytes, take, p.fds, frames);
    }
    if (p.phase === 'body') {
      const take = Math.min(p.body.byteLength - p.filled, bytes.byteLength);
      p.body.set(bytes.subarray(0, take), p.filled);
      p.filled += take;
      if (p.filled < p.body.byteLength) return take;
      this.inProgress = undefined;
      frames.push({ oversized: false, header: p.header, body: p.body, fds: p.fds });
      return take;
    }
    const take = Math.min(p.remaining, bytes.byteLength);
    p.remaining -= take;
    if (p.remaining > 0) return take;
    this.inProgress = undefined;
    frames.push({ oversized: true, header: p.header, fds: p.fds });
    return take;
  }

  /** The header is known and its body starts at `bodyAt` of `bytes` (possibly past its end). */
  private afterHeader(header: VfioUserHeader, bytes: Uint8Array, bodyAt: number, fds: number[], frames: VfioUserFrame[]): number {
    if (header.size < VFIO_USER_HEADER_SIZE) {
      this.brokenReason = `message ${header.msg_id} (${vfioUserCommandName(header.command)}) declares ${header.size} bytes, ` +
        `fewer than its ${VFIO_USER_HEADER_SIZE}-byte header: the stream cannot be followed`;
      this.held.push(...fds);
      this.fdOwner = this.held;
      return bytes.byteLength;
    }
    const bodySize = header.size - VFIO_USER_HEADER_SIZE;
    const avail = bytes.byteLength - bodyAt;
    if (header.size > this.maxMessageSize) {
      if (avail >= bodySize) {
        frames.push({ oversized: true, header, fds });
        return bodyAt + bodySize;
      }
      this.inProgress = { phase: 'skip', header, remaining: bodySize - avail, fds };
      return bytes.byteLength;
    }
    if (avail >= bodySize) {
      frames.push({ oversized: false, header, body: bytes.subarray(bodyAt, bodyAt + bodySize), fds });
      return bodyAt + bodySize;
    }
    const body = new Uint8Array(bodySize);
    body.set(bytes.subarray(bodyAt));
    this.inProgress = { phase: 'body', header, body, filled: avail, fds };
    return bytes.byteLength;
  }
}
