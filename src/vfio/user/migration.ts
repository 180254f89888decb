// The client's side of migration over vfio-user, behind the kernel's interface: the
// VFIO_DEVICE_FEATURE ioctl becomes DEVICE_FEATURE, and the data_fd a state change
// returns is a virtual fd of ours (a real fd number, an eventfd we hold, so nothing else
// can share it) whose read(2)/write(2) become MIG_DATA_READ/MIG_DATA_WRITE. So a VMM
// written against the kernel's migration v2 runs unchanged over a socket:
//   read:  a short MIG_DATA_READ reply ends the data: 0 in STOP_COPY (end of stream),
//          ENOMSG in PRE_COPY (nothing more now), as the kernel's data_fd answers
//   write: pieces of the negotiated transfer size
//   VFIO_MIG_GET_PRECOPY_INFO on it: ENOTTY (vfio-user has no such command)
//   an fd a later state change superseded: ENODEV, as a kernel data_fd whose session ended
// Which arcs open a new data session is the kernel's rule (the last arc of the path:
// RUNNING->PRE_COPY, STOP->STOP_COPY, STOP->RESUMING and their P2P twins): the server
// sends data_fd -1, so the client tracks the device's state from its own requests.
//
// DMA logging passes user pointers in the kernel's layout (START's ranges, REPORT's
// bitmap), which cannot cross a socket: the client reads the ranges from, and writes the
// bitmap into, the memory they point to when that is memory of this fd layer's
// allocate() (EFAULT otherwise, as the kernel for an address it cannot reach), and sends
// vfio-user's inline layouts. startDirtyLog/reportDirtyLog do the same without pointers.
import { sysError } from '../../addon/errors.js';
import { isPrecopyState, migPath, type MigState } from '../../device/migration/states.js';
import { flags as F } from '../../uapi/constants.js';
import {
  deviceFeature as N, migStates as S, VFIO_MIG_GET_PRECOPY_INFO, vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_range, vfio_device_feature_dma_logging_report,
} from '../../uapi/migration.js';
import { vfio_device_feature } from '../../uapi/structs.js';
import {
  decodeDeviceFeature, decodeDmaLoggingReportReply, decodeMigData, decodeMigState, decodeMigrationFlags, dmaLoggingBitmapSize,
  encodeDeviceFeature, encodeDmaLoggingControl, encodeDmaLoggingReport, encodeMigData, encodeMigDataRead, encodeMigState,
  featureFlags, vfio_user_device_feature_dma_logging_control as user_logging_control, vfioUserFeatures, VFIO_USER_DMA_LOGGING_MAX_RANGES, type DmaLoggingRange,
} from '../../uapi/vfio-user/index.js';
import type { SysLayer } from '../../sys/types.js';
import type { VfioUserConnection } from './connection.js';

const FEATURE = 'VFIO_USER_DEVICE_FEATURE';
const MIG_STATE_DATA = 8;

/** The last arcs that open a new data session (vfio_mig_get_next_state's data_fd arcs). */
function opensSession(from: number, to: number): boolean {
  return (from === S.VFIO_DEVICE_STATE_RUNNING && to === S.VFIO_DEVICE_STATE_PRE_COPY) ||
    (from === S.VFIO_DEVICE_STATE_RUNNING_P2P && to === S.VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
    (from === S.VFIO_DEVICE_STATE_STOP && to === S.VFIO_DEVICE_STATE_STOP_COPY) ||
    (from === S.VFIO_DEVICE_STATE_STOP && to === S.VFIO_DEVICE_STATE_RESUMING);
}

interface DataFd {
  readonly fd: number;
  readonly direction: 'save' | 'resume';
  live: boolean;
}

/** What the device's dirty log reports: the bitmap of one range at one page size. */
export interface DirtyReport {
  readonly iova: bigint;
  readonly length: bigint;
  readonly pageSize: bigint;
  /** u64s, little-endian: bit n is the page at iova + n * pageSize. */
  readonly bitmap: Uint8Array;
}

export class VfioUserMigration {
  private readonly dataFds = new Map<number, DataFd>();
  /** The device's state as our requests left it; undefined until asked (or after a failed change). */
  private state: MigState | undefined;
  private flags: number | undefined;

  constructor(
    private readonly connection: VfioUserConnection,
    private readonly base: SysLayer,
    /** The bytes at a process address inside memory this fd layer allocated, or undefined. */
    private readonly memoryAt: (address: bigint, length: number) => Uint8Array | undefined,
  ) {}

  isDataFd(fd: number): boolean {
    return this.dataFds.has(fd);
  }

  /** VFIO_DEVICE_FEATURE on the device fd, in the kernel's layout, in place. */
  deviceFeature(arg: Uint8Array): number {
    if (arg.byteLength < vfio_device_feature.size) throw sysError('EFAULT', 'ioctl', 'VFIO_DEVICE_FEATURE', 'buffer shorter than vfio_device_feature');
    const { argsz, flags } = vfio_device_feature.decode(arg);
    const feature = flags & F.VFIO_DEVICE_FEATURE_MASK;
    const probe = (flags & F.VFIO_DEVICE_FEATURE_PROBE) !== 0;
    const set = (flags & F.VFIO_DEVICE_FEATURE_SET) !== 0;
    const get = (flags & F.VFIO_DEVICE_FEATURE_GET) !== 0;
    if (feature === N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START && set && !probe) return this.startFromUser(arg, argsz);
    if (feature === N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT && get && !probe) return this.reportToUser(arg, argsz);
    const setState = feature === N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE && (flags & F.VFIO_DEVICE_FEATURE_SET) !== 0 && !probe;
    const before = setState ? this.currentState() : undefined;
    const dataEnd = Math.min(arg.byteLength, Math.max(argsz, vfio_device_feature.size));
    const data = arg.subarray(vfio_device_feature.size, dataEnd);
    let reply;
    try {
      reply = this.request(flags, data, argsz);
    } catch (err) {
      if (setState) this.state = undefined; // the device may have moved part of the way
      throw err;
    }
    const got = reply.data.subarray(0, Math.min(reply.data.byteLength, data.byteLength));
    data.set(got);
    if (feature === N.VFIO_DEVICE_FEATURE_MIGRATION && !probe && reply.data.byteLength >= 8) this.flags = Number(decodeMigrationFlags(reply.data));
    if (setState && before !== undefined) this.stateChanged(before, data);
    return 0;
  }

  /** read(2) of a data fd. */
  read(fd: number, buf: Uint8Array): number {
    const entry = this.liveDataFd(fd, 'read');
    if (entry.direction !== 'save') throw sysError('EINVAL', 'read', undefined, 'a resuming data fd is written, not read');
    if (buf.byteLength === 0) return 0;
    const size = Math.min(buf.byteLength, this.connection.negotiated.xferSize);
    const reply = this.connection.request('VFIO_USER_MIG_DATA_READ', encodeMigDataRead(size), { syscall: 'read' });
    for (const f of reply.fds) this.connection.closeReceived(f);
    let got;
    try {
      got = decodeMigData(reply.body);
    } catch (err) {
      throw sysError('EPROTO', 'read', 'VFIO_USER_MIG_DATA_READ', `malformed reply: ${(err as Error).message}`);
    }
    if (got.size > size) throw sysError('EPROTO', 'read', 'VFIO_USER_MIG_DATA_READ', `asked for ${size} bytes, the reply has ${got.size}`);
    if (got.size === 0 && this.state !== undefined && isPrecopyState(this.state)) {
      throw sysError('ENOMSG', 'read', undefined, 'no more pre-copy data for now');
    }
    buf.set(got.data);
    return got.size;
  }

  /** write(2) of a data fd: every byte or an error. */
  write(fd: number, buf: Uint8Array): number {
    const entry = this.liveDataFd(fd, 'write');
    if (entry.direction !== 'resume') throw sysError('EINVAL', 'write', undefined, 'a saving data fd is read, not written');
    const step = this.connection.negotiated.xferSize;
    for (let done = 0; done < buf.byteLength; done += step) {
      const reply = this.connection.request('VFIO_USER_MIG_DATA_WRITE', encodeMigData(buf.subarray(done, done + step)), { syscall: 'write' });
      for (const f of reply.fds) this.connection.closeReceived(f);
    }
    return buf.byteLength;
  }

  /** ioctl on a data fd: vfio-user has no VFIO_MIG_GET_PRECOPY_INFO. */
  ioctl(fd: number, request: number): never {
    this.liveDataFd(fd, 'ioctl');
    const name = request === VFIO_MIG_GET_PRECOPY_INFO ? 'VFIO_MIG_GET_PRECOPY_INFO' : `ioctl 0x${request.toString(16)}`;
    throw sysError('ENOTTY', 'ioctl', name, 'vfio-user has no command for it');
  }

  close(fd: number): void {
    const entry = this.dataFds.get(fd);
    if (!entry) return;
    this.dataFds.delete(fd);
    this.base.close(fd);
  }

  /** A reset returns the device to RUNNING and ends its data session. */
  deviceReset(): void {
    this.state = undefined;
    for (const entry of this.dataFds.values()) entry.live = false;
  }

  /** Every data fd still open is closed (the connection is ending). */
  closeAll(): void {
    for (const fd of [...this.dataFds.keys()]) this.close(fd);
  }

  /** START in the kernel's layout: the ranges read from user memory. */
  private startFromUser(arg: Uint8Array, argsz: number): number {
    const control = vfio_device_feature_dma_logging_control.decode(this.kernelData(arg, argsz, vfio_device_feature_dma_logging_control.size));
    const size = vfio_device_feature_dma_logging_range.size;
    const count = Math.min(control.num_ranges, VFIO_USER_DMA_LOGGING_MAX_RANGES + 1); // the server refuses past the maximum
    const bytes = this.userMemory(control.ranges, count * size);
    const ranges = Array.from({ length: count }, (_, i) => vfio_device_feature_dma_logging_range.decode(bytes, i * size));
    const pageSize = this.startDirtyLog(ranges, control.page_size);
    vfio_device_feature_dma_logging_control.write(arg, { page_size: pageSize }, vfio_device_feature.size);
    return 0;
  }

  /** REPORT in the kernel's layout: the bitmap written into user memory. */
  private reportToUser(arg: Uint8Array, argsz: number): number {
    const report = vfio_device_feature_dma_logging_report.decode(this.kernelData(arg, argsz, vfio_device_feature_dma_logging_report.size));
    const size = report.page_size > 0n ? dmaLoggingBitmapSize(report.length, report.page_size) : 0;
    const out = this.userMemory(report.bitmap, size);
    const { bitmap } = this.reportDirtyLog(report.iova, report.length, report.page_size);
    // Bits are only ever set, as the kernel's iova_bitmap does.
    for (let i = 0; i < size; i++) out[i]! |= bitmap[i]!;
    return 0;
  }

  /** The feature data after the header, as long as the kernel's struct (EINVAL when argsz leaves less, as vfio_check_feature). */
  private kernelData(arg: Uint8Array, argsz: number, size: number): Uint8Array {
    if (argsz < vfio_device_feature.size + size) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_FEATURE', `argsz ${argsz} is too small`);
    if (arg.byteLength < vfio_device_feature.size + size) throw sysError('EFAULT', 'ioctl', 'VFIO_DEVICE_FEATURE', 'the feature data runs past the buffer');
    return arg.subarray(vfio_device_feature.size);
  }

  /** [address, address + length) of memory this fd layer allocated, or EFAULT. */
  private userMemory(address: bigint, length: number): Uint8Array {
    const bytes = this.memoryAt(address, length);
    if (!bytes) throw sysError('EFAULT', 'ioctl', 'VFIO_DEVICE_FEATURE', `0x${address.toString(16)} (${length} bytes) is not memory of this fd layer`);
    return bytes;
  }

  /** DMA_LOGGING_START with the ranges inline; returns the page size the device chose. */
  startDirtyLog(ranges: readonly DmaLoggingRange[], pageSize: bigint): bigint {
    const data = encodeDmaLoggingControl({ pageSize, ranges: [...ranges] });
    const reply = this.request(featureFlags(vfioUserFeatures.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, 'set'), data, vfio_device_feature.size + data.byteLength);
    if (reply.data.byteLength < user_logging_control.size) {
      throw sysError('EPROTO', 'ioctl', FEATURE, 'the DMA_LOGGING_START reply has no control struct');
    }
    return user_logging_control.decode(reply.data).page_size;
  }

  stopDirtyLog(): void {
    this.request(featureFlags(vfioUserFeatures.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, 'set'), new Uint8Array(0), vfio_device_feature.size);
  }

  /** DMA_LOGGING_REPORT: the pages written in [iova, iova + length) since the last report. */
  reportDirtyLog(iova: bigint, length: bigint, pageSize: bigint): DirtyReport {
    const data = encodeDmaLoggingReport({ iova, length, pageSize });
    const bitmapSize = pageSize > 0n ? dmaLoggingBitmapSize(length, pageSize) : 0;
    const reply = this.request(featureFlags(vfioUserFeatures.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, 'get'), data,
      vfio_device_feature.size + data.byteLength + bitmapSize);
    try {
      const { report, bitmap } = decodeDmaLoggingReportReply(reply.data);
      if (report.iova !== iova || report.length !== length || report.pageSize !== pageSize) throw new Error('it reports another range');
      return { ...report, bitmap };
    } catch (err) {
      throw sysError('EPROTO', 'ioctl', FEATURE, `malformed DMA_LOGGING_REPORT reply: ${(err as Error).message}`);
    }
  }

  private request(flags: number, data: Uint8Array, argsz: number): { flags: number; data: Uint8Array } {
    const reply = this.connection.request('VFIO_USER_DEVICE_FEATURE', encodeDeviceFeature(flags, data, argsz), { syscall: 'ioctl' });
    for (const f of reply.fds) this.connection.closeReceived(f);
    try {
      const got = decodeDeviceFeature(reply.body);
      return { flags: got.flags, data: got.data };
    } catch (err) {
      throw sysError('EPROTO', 'ioctl', FEATURE, `malformed reply: ${(err as Error).message}`);
    }
  }

  private currentState(): MigState {
    if (this.state === undefined) {
      const reply = this.request(featureFlags(N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 'get'), encodeMigState(0),
        vfio_device_feature.size + MIG_STATE_DATA);
      try {
        this.state = decodeMigState(reply.data) as MigState;
      } catch (err) {
        throw sysError('EPROTO', 'ioctl', FEATURE, `malformed MIG_DEVICE_STATE reply: ${(err as Error).message}`);
      }
    }
    return this.state;
  }

  private migrationFlags(): number {
    if (this.flags === undefined) {
      const reply = this.request(featureFlags(N.VFIO_DEVICE_FEATURE_MIGRATION, 'get'), new Uint8Array(8), vfio_device_feature.size + 8);
      this.flags = Number(decodeMigrationFlags(reply.data));
    }
    return this.flags;
  }

  /** After a successful SET: supersede the old data fds, and give the caller a new one when the last arc opened a session. */
  private stateChanged(before: MigState, data: Uint8Array): void {
    const target = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true) as MigState;
    const path = migPath(before, target, this.migrationFlags());
    const last = path.length ? path[path.length - 2] ?? before : undefined;
    this.state = target;
    const opened = last !== undefined && opensSession(last, target);
    const continuing = !opened && target === S.VFIO_DEVICE_STATE_STOP_COPY && isPrecopyState(before);
    if (!continuing) for (const entry of this.dataFds.values()) entry.live = false;
    let fd = -1;
    if (opened) {
      fd = this.base.eventfd(0);
      this.dataFds.set(fd, { fd, direction: target === S.VFIO_DEVICE_STATE_RESUMING ? 'resume' : 'save', live: true });
    }
    new DataView(data.buffer, data.byteOffset, data.byteLength).setInt32(4, fd, true);
  }

  private liveDataFd(fd: number, syscall: string): DataFd {
    const entry = this.dataFds.get(fd);
    if (!entry) throw sysError('EBADF', syscall);
    if (!entry.live || this.connection.closed) throw sysError('ENODEV', syscall, undefined, 'the migration data session ended');
    return entry;
  }
}
