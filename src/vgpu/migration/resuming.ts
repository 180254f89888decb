// The resuming side of a migration data session: write(2) takes the stream in any
// segmentation, checks it as it arrives (header identity, record order, lengths,
// checksums) and stages it; nothing reaches the vGPU until RESUMING -> STOP, where a
// stream that is incomplete is refused. A stream found bad stays refused (every later
// write and the STOP fail with the same reason), so a destination never takes half a
// stream. More bytes than the largest stream this vGPU could produce are ENOMEM, as
// mtty refuses a write past its data size.
import { sysError } from '../../addon/errors.js';
import type { MigrationDataChannel, PrecopyInfo } from '../../device/migration/ops.js';
import {
  DATA_CHUNK, RECORD_HEAD, RecordKind, SECTION_MAX, StreamCrc, StreamError, crc32, decodeHeader, decodeRecordHead,
  decodeSectionName, headerLength, type RecordHead, type StreamIdentity,
} from './stream.js';

/** What a complete stream carries, for the vGPU to apply. */
export interface StagedStream {
  readonly sections: ReadonlyMap<string, Uint8Array>;
  /** In stream order: bytes to write, or a range to zero. */
  readonly memory: readonly { memory: number; offset: number; bytes?: Uint8Array; zero?: number }[];
}

/**
 * The largest stream a vGPU with these memories could send, given the bytes its own
 * sections take (a stream loads only into the same type and version, so the source's
 * are alike): four times those, at least 64 KiB, for sections.
 */
export function streamLimit(identity: StreamIdentity, sectionBytes: number): number {
  let n = 4096 + Math.min(Math.max(4 * sectionBytes, 64 * 1024), SECTION_MAX * 64) + RECORD_HEAD;
  // Pre-copy may send a chunk more than once: allow each chunk twice.
  for (const size of identity.memorySizes) n += 2 * (size + Math.ceil(size / 4096) * RECORD_HEAD);
  return n;
}

export class ResumingChannel implements MigrationDataChannel {
  readonly direction = 'resume';
  private readonly crc = new StreamCrc();
  private pending = new Uint8Array(0);
  private headerSize = 0;
  private header: StreamIdentity | undefined;
  private head: RecordHead | undefined;
  private sequence = 0;
  private ended = false;
  private received = 0;
  private failure: string | undefined;
  private disabled = false;
  private readonly sections = new Map<string, Uint8Array>();
  private readonly memory: { memory: number; offset: number; bytes?: Uint8Array; zero?: number }[] = [];

  constructor(private readonly expected: StreamIdentity, private readonly limit: number,
    private readonly onRelease: (channel: ResumingChannel) => void) {}

  read(): number {
    throw sysError('EINVAL', 'read', undefined, 'a resuming data channel is written, not read');
  }

  precopyInfo(): PrecopyInfo {
    throw sysError('ENOTTY', 'ioctl', 'VFIO_MIG_GET_PRECOPY_INFO', 'a resuming data channel has no pre-copy');
  }

  write(src: Uint8Array): number {
    if (this.disabled) throw sysError('ENODEV', 'write', undefined, 'the migration session has ended');
    if (this.failure) throw sysError('EINVAL', 'write', undefined, `migration stream refused: ${this.failure}`);
    if (this.received + src.byteLength > this.limit) {
      throw sysError('ENOMEM', 'write', undefined, `the stream would exceed ${this.limit} bytes, more than this vGPU can hold`);
    }
    try {
      this.feed(src);
    } catch (err) {
      if (!(err instanceof StreamError)) throw err;
      this.failure = err.message;
      this.drop();
      throw sysError('EINVAL', 'write', undefined, `migration stream refused: ${err.message}`);
    }
    this.received += src.byteLength;
    return src.byteLength;
  }

  /** RESUMING -> STOP: the whole stream, checked; EINVAL (with the reason) otherwise. */
  finish(): StagedStream {
    const op = 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE';
    if (this.failure) throw sysError('EINVAL', 'ioctl', op, `migration stream refused: ${this.failure}`);
    if (!this.ended) {
      throw sysError('EINVAL', 'ioctl', op, `migration stream truncated: ${this.received} bytes and no end record`);
    }
    return { sections: this.sections, memory: this.memory };
  }

  disable(): void {
    this.disabled = true;
    this.drop();
  }

  get isDisabled(): boolean {
    return this.disabled;
  }

  release(): void {
    this.disable();
    this.onRelease(this);
  }

  private drop(): void {
    this.sections.clear();
    this.memory.length = 0;
    this.pending = new Uint8Array(0);
  }

  private feed(src: Uint8Array): void {
    if (this.ended && src.byteLength > 0) throw new StreamError('data after the end of the stream (a replayed or concatenated stream)');
    let data = src;
    if (this.pending.byteLength > 0) {
      data = new Uint8Array(this.pending.byteLength + src.byteLength);
      data.set(this.pending, 0);
      data.set(src, this.pending.byteLength);
    }
    let at = 0;
    for (;;) {
      const need = this.nextNeed(data.subarray(at));
      if (need === undefined || data.byteLength - at < need) break;
      at += this.consume(data.subarray(at, at + need));
      if (this.ended && at < data.byteLength) throw new StreamError('data after the end of the stream (a replayed or concatenated stream)');
    }
    this.pending = data.slice(at);
  }

  /** Bytes the next unit needs (header start, header, record head, record with payload). */
  private nextNeed(rest: Uint8Array): number | undefined {
    if (this.ended) return undefined;
    if (!this.header) {
      if (this.headerSize === 0) {
        if (rest.byteLength < 16) return 16;
        this.headerSize = headerLength(rest.subarray(0, 16));
      }
      return this.headerSize;
    }
    if (!this.head) return RECORD_HEAD;
    return RECORD_HEAD + (this.head.kind === RecordKind.ZERO || this.head.kind === RecordKind.END ? 0 : this.head.length);
  }

  /** Takes one unit (`bytes` is exactly what nextNeed asked); returns its length. */
  private consume(bytes: Uint8Array): number {
    if (!this.header) {
      const id = decodeHeader(bytes);
      const want = this.expected;
      if (id.vendor !== want.vendor) throw new StreamError(`the stream is from vendor ${id.vendor}, this vGPU is ${want.vendor}`);
      if (id.type !== want.type) throw new StreamError(`the stream is from a ${id.type} vGPU, this vGPU is ${want.type}`);
      if (id.version !== want.version) throw new StreamError(`the stream has ${id.vendor} state version ${id.version}, this host loads version ${want.version}`);
      if (id.memorySizes.length !== want.memorySizes.length || id.memorySizes.some((s, i) => s !== want.memorySizes[i])) {
        throw new StreamError(`the stream's memory sizes (${id.memorySizes.join(', ')}) differ from this vGPU's (${want.memorySizes.join(', ')})`);
      }
      this.header = id;
      this.crc.add(bytes);
      return bytes.byteLength;
    }
    if (!this.head) {
      const head = decodeRecordHead(bytes);
      if (head.sequence !== this.sequence) {
        throw new StreamError(`record ${head.sequence} where record ${this.sequence} was due (records replayed, reordered or lost)`);
      }
      this.checkHead(head);
      this.head = head;
      if (head.kind === RecordKind.ZERO || head.kind === RecordKind.END || head.length === 0) return this.consume(bytes);
      return 0; // wait for the payload with the head (nextNeed now asks for both)
    }
    const head = this.head;
    const payload = bytes.subarray(RECORD_HEAD);
    this.head = undefined;
    this.sequence++;
    switch (head.kind) {
      case RecordKind.END:
        if (head.offset !== BigInt(this.crc.length) || head.crc !== this.crc.value) {
          throw new StreamError('stream checksum mismatch (corrupted or truncated stream)');
        }
        this.ended = true;
        break;
      case RecordKind.DATA:
        if (crc32(payload) !== head.crc) throw new StreamError(`memory ${head.index} data at 0x${head.offset.toString(16)} fails its checksum (corrupted stream)`);
        this.memory.push({ memory: head.index, offset: Number(head.offset), bytes: payload.slice() });
        break;
      case RecordKind.ZERO:
        this.memory.push({ memory: head.index, offset: Number(head.offset), zero: head.length });
        break;
      case RecordKind.SECTION: {
        if (crc32(payload) !== head.crc) throw new StreamError('a section fails its checksum (corrupted stream)');
        const name = decodeSectionName(payload, head.index);
        if (this.sections.has(name)) throw new StreamError(`section ${name} appears twice (replayed records)`);
        this.sections.set(name, payload.slice(head.index));
        break;
      }
    }
    this.crc.add(bytes);
    return bytes.byteLength;
  }

  private checkHead(head: RecordHead): void {
    const sizes = this.header!.memorySizes;
    switch (head.kind) {
      case RecordKind.DATA:
      case RecordKind.ZERO: {
        const size = sizes[head.index];
        if (size === undefined) throw new StreamError(`record for memory ${head.index}, the stream has ${sizes.length}`);
        if (head.kind === RecordKind.DATA && (head.length === 0 || head.length > DATA_CHUNK)) throw new StreamError(`data record of ${head.length} bytes`);
        if (head.offset + BigInt(head.length) > BigInt(size)) {
          throw new StreamError(`memory ${head.index} range 0x${head.offset.toString(16)}+0x${head.length.toString(16)} is past its ${size} bytes`);
        }
        break;
      }
      case RecordKind.SECTION:
        if (head.length > SECTION_MAX || head.index > head.length || head.index === 0) throw new StreamError(`section record of ${head.length} bytes`);
        break;
      case RecordKind.END:
        if (head.length !== 0) throw new StreamError('end record with a length');
        break;
      default:
        throw new StreamError(`unknown record kind ${head.kind} (corrupted stream)`);
    }
  }
}
