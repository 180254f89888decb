// A vGPU's vfio_migration_ops and vfio_log_ops: the core runs VFIO migration v2 for any
// vendor model with a VgpuMigration (STOP_COPY | P2P | PRE_COPY, as mtty offers), so a
// vendor only quiesces, resumes, saves and loads. The arcs (those vfio_mig_get_next_state
// produces; P2P arcs change nothing, a vGPU does no peer-to-peer DMA):
//   RUNNING_P2P -> STOP          quiesce          STOP -> RUNNING_P2P      resume
//   RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P   a saving channel, pre-copy data
//   PRE_COPY_P2P -> STOP_COPY    quiesce, the rest of the stream on the same channel
//   STOP -> STOP_COPY            a saving channel with the whole stream
//   PRE_COPY -> RUNNING, PRE_COPY_P2P -> RUNNING_P2P, STOP_COPY -> STOP   the session ends
//   STOP -> RESUMING             a resuming channel
//   RESUMING -> STOP             the stream checked and loaded (EINVAL, nothing changed, if bad)
// Reset and close end every session and bring the state back to RUNNING.
import { isSysError, sysError, type SysError } from '../../addon/errors.js';
import { DirtyPageLog } from '../../device/migration/logging.js';
import type { DirtyLogOps, IovaBitmap, IovaRange, MigrationDataChannel, MigrationOps } from '../../device/migration/ops.js';
import { isPrecopyState, migStateName, walkMigState, type MigState } from '../../device/migration/states.js';
import { migrationFlags as MF, migStates as S } from '../../uapi/migration.js';
import type { VgpuMigration, VgpuStateSection } from '../vendor.js';
import { CHUNK, nonZeroChunks } from './memory-scan.js';
import { ResumingChannel, streamLimit, type StagedStream } from './resuming.js';
import { SavingChannel } from './saving.js';
import { RECORD_HEAD, type StreamIdentity } from './stream.js';

const OP = 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE';
/** Sections a stream may carry: the vendor's and the core's. */
const MAX_SECTIONS = 64;

/** What the migration reaches of its vGPU device. */
export interface MigrationHost {
  /** The DMA space of the open session, for DMA logging; undefined while closed. */
  dirtyTarget(): { dirtyLog: DirtyPageLog | undefined; writablePages(): bigint[] } | undefined;
  /** The core's own state (config space) as sections. */
  coreSections(): VgpuStateSection[];
  /** Checks the core's sections of a stream (throws a SysError) and returns their load. */
  prepareCoreSections(sections: ReadonlyMap<string, Uint8Array>): () => void;
  readonly pageSize: number;
}

export class VgpuMigrationOps implements MigrationOps, DirtyLogOps {
  readonly flags = MF.VFIO_MIGRATION_STOP_COPY | MF.VFIO_MIGRATION_P2P | MF.VFIO_MIGRATION_PRE_COPY;
  private state: MigState = S.VFIO_DEVICE_STATE_RUNNING;
  private quiesced = false;
  private saving: SavingChannel | undefined;
  private resuming: ResumingChannel | undefined;
  private log: DirtyPageLog | undefined;
  readonly identity: StreamIdentity;

  constructor(private readonly vendor: VgpuMigration, id: { vendor: string; type: string }, private readonly host: MigrationHost) {
    this.identity = { vendor: id.vendor, type: id.type, version: vendor.version, memorySizes: vendor.memory.map((m) => m.size) };
  }

  // ---- vfio_migration_ops ----

  getState(): MigState {
    return this.state;
  }

  setState(target: number): MigrationDataChannel | undefined {
    return walkMigState(this.state, target, this.flags, (from, to) => this.step(from, to), (s) => { this.state = s; });
  }

  dataSize(): bigint {
    // What STOP_COPY would stream from here: header, every written chunk, the sections, END.
    const chunks = memoryEstimate(this.identity, this.vendor);
    let sections = 0;
    for (const s of [...this.safeSave(), ...this.host.coreSections()]) sections += RECORD_HEAD + s.name.length + s.data.byteLength;
    return BigInt(chunks + sections + RECORD_HEAD);
  }

  // ---- vfio_log_ops ----

  start(ranges: readonly IovaRange[], pageSize: bigint): bigint {
    if (this.log) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_FEATURE', 'DMA logging is already started');
    const target = this.host.dirtyTarget();
    if (!target) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_FEATURE', 'the vGPU is not open');
    const host = BigInt(this.host.pageSize);
    const chosen = pageSize >= host && pageSize <= (1n << 30n) && (pageSize & (pageSize - 1n)) === 0n ? pageSize : host;
    this.log = new DirtyPageLog(ranges, chosen);
    target.dirtyLog = this.log;
    return chosen;
  }

  stop(): void {
    const target = this.host.dirtyTarget();
    if (target && target.dirtyLog === this.log) target.dirtyLog = undefined;
    this.log = undefined;
  }

  readAndClear(iova: bigint, length: bigint, bitmap: IovaBitmap): void {
    const log = this.log;
    if (!log) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_FEATURE', 'DMA logging is not started');
    log.readAndClear(iova, length, bitmap);
    // Pages pinned for writing may be written at any moment: always dirty, as TYPE1 counts them.
    const page = BigInt(this.host.pageSize);
    for (const at of this.host.dirtyTarget()?.writablePages() ?? []) {
      if (at + page <= iova || at >= iova + length) continue;
      if (!log.ranges.some((r) => at + page > r.iova && at < r.iova + r.length)) continue;
      bitmap.set(at > iova ? at : iova, page);
    }
  }

  // ---- the device's lifecycle ----

  /** Reset (VFIO_DEVICE_RESET, FLR) and close: every session ends, the state is RUNNING again. */
  reset(): void {
    this.endSessions();
    this.stop();
    if (this.quiesced) this.callVendor(() => this.vendor.resume(), 'resume');
    this.quiesced = false;
    this.state = S.VFIO_DEVICE_STATE_RUNNING;
  }

  /** After close: the vendor is released; nothing to resume. */
  closed(): void {
    this.endSessions();
    this.log = undefined;
    this.quiesced = false;
    this.state = S.VFIO_DEVICE_STATE_RUNNING;
  }

  /** Stopped (STOP, STOP_COPY, RESUMING): the core keeps its own work (interrupt delivery) quiet too. */
  get isStopped(): boolean {
    return this.quiesced;
  }

  // ---- arcs ----

  private step(from: MigState, to: MigState): MigrationDataChannel | undefined {
    const arc = `${migStateName(from)}>${migStateName(to)}`;
    switch (arc) {
      case 'RUNNING>RUNNING_P2P':
      case 'RUNNING_P2P>RUNNING':
      case 'PRE_COPY>PRE_COPY_P2P':
      case 'PRE_COPY_P2P>PRE_COPY':
        return undefined;
      case 'RUNNING_P2P>STOP':
        this.callVendor(() => this.vendor.quiesce(), 'quiesce');
        this.quiesced = true;
        return undefined;
      case 'STOP>RUNNING_P2P':
        this.callVendor(() => this.vendor.resume(), 'resume');
        this.quiesced = false;
        return undefined;
      case 'RUNNING>PRE_COPY':
      case 'RUNNING_P2P>PRE_COPY_P2P': {
        const channel = this.newSaving();
        channel.startPrecopy();
        return channel;
      }
      case 'PRE_COPY_P2P>STOP_COPY': {
        this.callVendor(() => this.vendor.quiesce(), 'quiesce');
        this.quiesced = true;
        // The session carries on: the user reads the rest from the fd it has.
        if (this.saving) this.saving.startStopCopy(this.sections());
        return undefined;
      }
      case 'STOP>STOP_COPY': {
        const channel = this.newSaving();
        channel.startStopCopy(this.sections());
        return channel;
      }
      case 'PRE_COPY>RUNNING':
      case 'PRE_COPY_P2P>RUNNING_P2P':
      case 'STOP_COPY>STOP':
        this.endSessions();
        return undefined;
      case 'STOP>RESUMING': {
        this.endSessions();
        let sectionBytes = 0;
        for (const sec of [...this.safeSave(), ...this.host.coreSections()]) sectionBytes += RECORD_HEAD + sec.name.length + sec.data.byteLength;
        const channel = new ResumingChannel(this.identity, streamLimit(this.identity, sectionBytes), (c) => {
          if (this.resuming === c) this.resuming = undefined;
        });
        this.resuming = channel;
        return channel;
      }
      case 'RESUMING>STOP': {
        const channel = this.resuming;
        if (!channel || channel.isDisabled) throw sysError('EINVAL', 'ioctl', OP, 'the resuming session has ended');
        this.load(channel.finish());
        this.endSessions();
        return undefined;
      }
      default:
        // vfio_mig_get_next_state never produces another arc.
        throw sysError('EINVAL', 'ioctl', OP, `no arc ${arc}`);
    }
  }

  private newSaving(): SavingChannel {
    this.endSessions();
    const channel: SavingChannel = new SavingChannel({
      identity: this.identity,
      memory: this.vendor.memory,
      inPrecopy: (): boolean => isPrecopyState(this.state) && this.saving === channel,
    }, (c) => {
      if (this.saving === c) this.saving = undefined;
    });
    this.saving = channel;
    return channel;
  }

  private endSessions(): void {
    this.saving?.disable();
    this.saving = undefined;
    this.resuming?.disable();
    this.resuming = undefined;
  }

  /** The vendor's sections and the core's, quiesced. */
  private sections(): VgpuStateSection[] {
    const vendor = this.callVendor(() => this.vendor.save(), 'save');
    const names = new Set<string>();
    for (const s of vendor) {
      if (typeof s.name !== 'string' || s.name === '' || s.name.startsWith('core.') || names.has(s.name) || !(s.data instanceof Uint8Array)) {
        throw sysError('EIO', 'ioctl', OP, `the vendor saved a bad section ${JSON.stringify(s.name)}`);
      }
      names.add(s.name);
    }
    const all = [...vendor, ...this.host.coreSections()];
    if (all.length > MAX_SECTIONS) throw sysError('EIO', 'ioctl', OP, `${all.length} sections, at most ${MAX_SECTIONS}`);
    return all;
  }

  private safeSave(): VgpuStateSection[] {
    try {
      return this.vendor.save();
    } catch {
      return [];
    }
  }

  /** Applies a checked stream: the vendor's sections (it refuses before changing anything), the core's, then memory. */
  private load(stream: StagedStream): void {
    const vendorSections = new Map<string, Uint8Array>();
    const coreSections = new Map<string, Uint8Array>();
    for (const [name, data] of stream.sections) (name.startsWith('core.') ? coreSections : vendorSections).set(name, data);
    const loadCore = this.host.prepareCoreSections(coreSections);
    this.callVendor(() => this.vendor.load(vendorSections), 'load', 'EINVAL');
    loadCore();
    // The destination's memory becomes the source's: what the stream does not carry is zero there.
    const carried = stream.memory.map((m) => `${m.memory}:${m.offset}`);
    const covered = new Set(carried);
    this.vendor.memory.forEach((memory, index) => {
      for (const offset of nonZeroChunks(memory)) {
        if (!covered.has(`${index}:${offset}`)) memory.write(offset, new Uint8Array(Math.min(CHUNK, memory.size - offset)));
      }
    });
    for (const m of stream.memory) {
      const memory = this.vendor.memory[m.memory]!;
      if (m.bytes) memory.write(m.offset, m.bytes);
      else if (m.zero) memory.write(m.offset, new Uint8Array(m.zero));
    }
  }

  private callVendor<T>(fn: () => T, what: string, code: 'EIO' | 'EINVAL' = 'EIO'): T {
    try {
      return fn();
    } catch (err) {
      throw vendorFailure(err, what, code);
    }
  }
}

function vendorFailure(err: unknown, what: string, code: 'EIO' | 'EINVAL'): SysError {
  if (isSysError(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return sysError(code, 'ioctl', OP, `the vendor's migration ${what} failed: ${reason}`);
}

/** The memory part of MIG_DATA_SIZE: the header and every non-zero chunk with its record head. */
function memoryEstimate(identity: StreamIdentity, vendor: VgpuMigration): number {
  let n = 64 + identity.vendor.length + identity.type.length + 8 * identity.memorySizes.length;
  for (const memory of vendor.memory) {
    for (const offset of nonZeroChunks(memory)) n += RECORD_HEAD + Math.min(CHUNK, memory.size - offset);
  }
  return n;
}
