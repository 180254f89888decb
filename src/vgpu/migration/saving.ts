// The saving side of a migration data session (what mtty_save_fops and mlx5's saving
// file do): the stream header, then the memory that was written, in PRE_COPY while the
// vGPU runs (VFIO_MIG_GET_PRECOPY_INFO tells how much is left; ENOMSG when nothing is
// available now), and in STOP_COPY, with the vGPU quiesced, the chunks changed since,
// the vendor's sections and the core's, and the END record; then reads give 0.
import { sysError } from '../../addon/errors.js';
import type { MigrationDataChannel, PrecopyInfo } from '../../device/migration/ops.js';
import { SentMemory, type ChunkChange } from './memory-scan.js';
import {
  RECORD_HEAD, RecordKind, StreamCrc, crc32, encodeHeader, encodeRecord, sectionPayload, type StreamIdentity,
} from './stream.js';
import type { MemoryBacking, VgpuStateSection } from '../vendor.js';

export interface SavingSource {
  readonly identity: StreamIdentity;
  readonly memory: readonly MemoryBacking[];
  /** Whether the device is in PRE_COPY or PRE_COPY_P2P now. */
  inPrecopy(): boolean;
}

export class SavingChannel implements MigrationDataChannel {
  readonly direction = 'save';
  private readonly sent: SentMemory;
  private readonly crc = new StreamCrc();
  private sequence = 0;
  /** Encoded bytes ready to be read, and how far the first one was read. */
  private readonly out: Uint8Array[] = [];
  private outOffset = 0;
  /** Chunks queued to be read and sent, in order (read from memory when their turn comes). */
  private chunks: ChunkChange[] = [];
  /** Bytes of the initial pre-copy data not yet read (VFIO_MIG_GET_PRECOPY_INFO.initial_bytes). */
  private initialLeft = 0;
  private stopCopy = false;
  /** The sections still to send once the chunks are out (STOP_COPY). */
  private trailer: readonly VgpuStateSection[] | undefined;
  private ended = false;
  private disabled = false;

  constructor(private readonly source: SavingSource, private readonly onRelease: (channel: SavingChannel) => void) {
    this.sent = new SentMemory(source.memory);
    this.push(encodeHeader(source.identity));
  }

  /** RUNNING -> PRE_COPY: the initial data is every chunk written so far. */
  startPrecopy(): void {
    this.chunks = this.sent.changes();
    this.initialLeft = this.pendingBytes();
  }

  /** -> STOP_COPY (quiesced): the rest of the stream, read chunk by chunk as the user reads. */
  startStopCopy(sections: readonly VgpuStateSection[]): void {
    this.stopCopy = true;
    this.initialLeft = 0;
    const queued = new Set(this.chunks.map((c) => `${c.memory}:${c.offset}`));
    for (const change of this.sent.changes()) if (!queued.has(`${change.memory}:${change.offset}`)) this.chunks.push(change);
    this.trailer = sections;
  }

  /** The session ended (the device left the saving states, was reset or closed): reads are ENODEV. */
  disable(): void {
    this.disabled = true;
    this.out.length = 0;
    this.chunks = [];
    this.initialLeft = 0;
  }

  get isDisabled(): boolean {
    return this.disabled;
  }

  read(dst: Uint8Array): number {
    if (this.disabled) throw sysError('ENODEV', 'read', undefined, 'the migration session has ended');
    let done = 0;
    while (done < dst.byteLength) {
      if (this.out.length === 0 && !this.produce()) break;
      const head = this.out[0]!;
      const n = Math.min(head.byteLength - this.outOffset, dst.byteLength - done);
      dst.set(head.subarray(this.outOffset, this.outOffset + n), done);
      done += n;
      this.outOffset += n;
      if (this.initialLeft > 0) this.initialLeft = Math.max(0, this.initialLeft - n);
      if (this.outOffset === head.byteLength) {
        this.out.shift();
        this.outOffset = 0;
      }
    }
    if (done === 0 && dst.byteLength > 0 && !this.stopCopy) {
      // The temporary end of a pre-copy stream: nothing now, maybe more later.
      throw sysError('ENOMSG', 'read', undefined, 'no pre-copy data available now');
    }
    return done;
  }

  write(): number {
    throw sysError('EINVAL', 'write', undefined, 'a saving data channel is read, not written');
  }

  precopyInfo(): PrecopyInfo {
    if (!this.source.inPrecopy()) throw sysError('EINVAL', 'ioctl', 'VFIO_MIG_GET_PRECOPY_INFO', 'the device is not in PRE_COPY');
    if (this.disabled) throw sysError('ENODEV', 'ioctl', 'VFIO_MIG_GET_PRECOPY_INFO', 'the migration session has ended');
    if (this.initialLeft > 0) return { initialBytes: BigInt(this.initialLeft), dirtyBytes: 0n };
    if (this.out.length === 0 && this.chunks.length === 0) this.chunks = this.sent.changes();
    return { initialBytes: 0n, dirtyBytes: BigInt(this.pendingBytes()) };
  }

  release(): void {
    if (!this.disabled) this.disable();
    this.onRelease(this);
  }

  /** Queues the next piece of the stream; false when there is nothing now. */
  private produce(): boolean {
    while (this.chunks.length > 0) {
      const change = this.chunks.shift()!;
      const { bytes, wasSent } = this.sent.take(change);
      if (bytes) {
        this.record(RecordKind.DATA, change.memory, BigInt(change.offset), bytes.byteLength, bytes);
        return true;
      }
      if (wasSent) {
        this.record(RecordKind.ZERO, change.memory, BigInt(change.offset), change.length);
        return true;
      }
    }
    if (!this.stopCopy) {
      // Pre-copy: look again for chunks written since.
      this.chunks = this.sent.changes();
      if (this.chunks.length > 0) return this.produce();
      return false;
    }
    if (this.trailer) {
      for (const section of this.trailer) {
        const { payload, nameLength } = sectionPayload(section.name, section.data);
        this.record(RecordKind.SECTION, nameLength, 0n, payload.byteLength, payload);
      }
      this.trailer = undefined;
      return true;
    }
    if (!this.ended) {
      this.ended = true;
      this.push(encodeRecord({ kind: RecordKind.END, index: 0, sequence: this.sequence++, offset: BigInt(this.crc.length), length: 0, crc: this.crc.value }));
      return true;
    }
    return false;
  }

  private record(kind: number, index: number, offset: bigint, length: number, payload?: Uint8Array): void {
    const crc = payload ? crc32(payload) : 0;
    this.push(encodeRecord({ kind, index, sequence: this.sequence++, offset, length, crc }, payload));
  }

  private push(bytes: Uint8Array): void {
    this.crc.add(bytes);
    this.out.push(bytes);
  }

  /** Bytes the queued chunks will take (an estimate: a chunk that reads as zeros may send nothing). */
  private pendingBytes(): number {
    let n = 0;
    for (const piece of this.out) n += piece.byteLength;
    n -= this.outOffset;
    for (const c of this.chunks) n += RECORD_HEAD + c.length;
    return n;
  }
}
