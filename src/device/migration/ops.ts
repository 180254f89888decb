// What a device implements to migrate, knowing no transport: the kernel's
// struct vfio_migration_ops (set state returning a data channel, get state, data size)
// and struct vfio_log_ops (DMA dirty logging). A DeviceBackend exposes them as its
// `migration` and `dirtyLog` (absent: the features answer ENOTTY, as the kernel does for
// a device whose driver set no mig_ops / log_ops). The host of the device (the mock
// kernel, the vfio-user server) runs VFIO_DEVICE_FEATURE through feature.ts and turns a
// MigrationDataChannel into what its user holds: an fd, or MIG_DATA_READ/WRITE.
import type { MigState } from './states.js';

/** VFIO_MIG_GET_PRECOPY_INFO's answer. */
export interface PrecopyInfo {
  readonly initialBytes: bigint;
  readonly dirtyBytes: bigint;
}

/**
 * The migration data session a state change opened (the kernel's data_fd file ops):
 * a saving session (from RUNNING->PRE_COPY, RUNNING_P2P->PRE_COPY_P2P, STOP->STOP_COPY)
 * is read, a resuming one (STOP->RESUMING) is written. Errors are SysErrors with the
 * errno the kernel's drivers give:
 *   read:  ENOMSG in PRE_COPY when nothing is available now (a temporary end of stream);
 *          0 at the end of the stream in STOP_COPY (for good); ENODEV once the session
 *          ended (the device left the saving states, was reset or closed); EINVAL on a
 *          resuming channel.
 *   write: EINVAL on a saving channel; ENOMEM past the most a device accepts; ENODEV once
 *          the session ended; the stream's own errors (a bad header) as the device finds them.
 * A channel is stream-like: no offsets (pread/pwrite on its fd are ESPIPE).
 */
export interface MigrationDataChannel {
  readonly direction: 'save' | 'resume';
  /** read(2): bytes copied into dst (0: end of stream). */
  read(dst: Uint8Array): number;
  /** write(2): bytes taken from src. */
  write(src: Uint8Array): number;
  /** VFIO_MIG_GET_PRECOPY_INFO: EINVAL unless the device is in PRE_COPY or PRE_COPY_P2P; ENODEV once ended. */
  precopyInfo(): PrecopyInfo;
  /** The user closed the channel (the fd's release). Idempotent; must not throw. */
  release(): void;
}

/** struct vfio_migration_ops, plus the device's migration_flags. */
export interface MigrationOps {
  /** VFIO_MIGRATION_STOP_COPY, optionally | P2P | PRE_COPY. */
  readonly flags: number;
  /**
   * migration_set_state: walks the arcs to `target` (states.ts's migPath) and returns the
   * data channel the last arc opened, or undefined. Throws a SysError: EINVAL for a
   * state or path the device does not have; the vendor's error for a failed arc (the
   * device then stays in the last state it reached, or ERROR if it could not recover).
   */
  setState(target: number): MigrationDataChannel | undefined;
  /** migration_get_state. */
  getState(): MigState;
  /** migration_get_data_size: the bytes STOP_COPY is expected to stream from here. */
  dataSize(): bigint;
}

/** An IOVA range [iova, iova + length). */
export interface IovaRange {
  readonly iova: bigint;
  readonly length: bigint;
}

/** struct iova_bitmap as a driver sees it: iova_bitmap_set marks [iova, iova + length) dirty. */
export interface IovaBitmap {
  set(iova: bigint, length: bigint): void;
}

/** struct vfio_log_ops: the device's own record of the DMA writes it made. */
export interface DirtyLogOps {
  /**
   * log_start: begins logging writes into `ranges` (validated: sorted by iova, page
   * aligned, non-overlapping, at least one) at the hinted `pageSize`; returns the page
   * size the device chose. EINVAL if logging is already on (a second START); ENOMEM
   * if the device cannot track that much.
   */
  start(ranges: readonly IovaRange[], pageSize: bigint): bigint;
  /** log_stop: ends logging. Idempotent (0 even when it was off). */
  stop(): void;
  /**
   * log_read_and_clear: marks in `bitmap` every page of [iova, iova + length) written
   * since the last report, and forgets them. EINVAL if logging is off.
   */
  readAndClear(iova: bigint, length: bigint, bitmap: IovaBitmap): void;
}

/** What a migratable device adds to DeviceBackend (backend.ts). */
export interface MigratableDevice {
  readonly migration?: MigrationOps | undefined;
  readonly dirtyLog?: DirtyLogOps | undefined;
}
