// VFIO_DEVICE_FEATURE as the VFIO core runs it (vfio_ioctl_device_feature and its
// helpers in drivers/vfio/vfio_main.c), for any transport: the header checks, then the
// migration and DMA-logging features through the device's MigrationOps / DirtyLogOps
// (ENOTTY when it has none), and every other feature to the device's own handler
// (EINVAL when it has none). A transport supplies what is transport-specific: how a data
// channel reaches the user (an fd), how the logging ranges and the report bitmap are
// reached (user pointers on the kernel's fds), and which features its core knows.
import { sysError, type ErrnoCode } from '../../addon/errors.js';
import { flags as F } from '../../uapi/constants.js';
import {
  deviceFeature as N, vfio_device_feature_dma_logging_control, vfio_device_feature_dma_logging_report,
  vfio_device_feature_mig_data_size, vfio_device_feature_mig_state, vfio_device_feature_migration,
} from '../../uapi/migration.js';
import { vfio_device_feature } from '../../uapi/structs.js';
import { validateLoggingRange, validateReport, RangeSet } from './logging.js';
import type { IovaBitmap, IovaRange, MigratableDevice, MigrationDataChannel } from './ops.js';

const OP = 'VFIO_DEVICE_FEATURE';

function fail(code: ErrnoCode, detail: string): never {
  throw sysError(code, 'ioctl', OP, detail);
}

/** The decoded vfio_device_feature header and the feature's data after it. */
export interface FeatureRequest {
  readonly argsz: number;
  readonly flags: number;
  /** flags & VFIO_DEVICE_FEATURE_MASK. */
  readonly feature: number;
  /** argsz - 8: how many data bytes the user says follow. */
  readonly dataSize: number;
  /** The bytes after the header (what the buffer holds; may be shorter than dataSize). */
  readonly data: Uint8Array;
}

/**
 * The core's header checks: a buffer too short to hold the header EFAULT; argsz < 8,
 * unknown flag bits, or GET and SET together without PROBE: EINVAL.
 */
export function featureHeader(buf: Uint8Array): FeatureRequest {
  const minsz = vfio_device_feature.size;
  if (buf.byteLength < minsz) fail('EFAULT', 'buffer shorter than vfio_device_feature');
  const { argsz, flags } = vfio_device_feature.decode(buf);
  if (argsz < minsz) fail('EINVAL', `argsz ${argsz}`);
  const known = F.VFIO_DEVICE_FEATURE_MASK | F.VFIO_DEVICE_FEATURE_SET | F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_PROBE;
  if (flags & ~known) fail('EINVAL', 'unknown flags');
  if (!(flags & F.VFIO_DEVICE_FEATURE_PROBE) && (flags & F.VFIO_DEVICE_FEATURE_SET) && (flags & F.VFIO_DEVICE_FEATURE_GET)) {
    fail('EINVAL', 'GET and SET together without PROBE');
  }
  return { argsz, flags, feature: flags & F.VFIO_DEVICE_FEATURE_MASK, dataSize: argsz - minsz, data: buf.subarray(minsz) };
}

/**
 * vfio_check_feature: 0 for a PROBE that passes (the ioctl returns 0), 1 to go on.
 * EINVAL: GET or SET the feature does not support, neither GET nor SET without PROBE,
 * argsz too small for the feature's data.
 */
export function checkFeature(req: Pick<FeatureRequest, 'flags' | 'dataSize'>, supported: number, minsz: number): 0 | 1 {
  const ops = req.flags & (F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_SET);
  if (ops & ~supported) fail('EINVAL', `${ops & ~supported & F.VFIO_DEVICE_FEATURE_GET ? 'GET' : 'SET'} is not supported by this feature`);
  if (req.flags & F.VFIO_DEVICE_FEATURE_PROBE) return 0;
  if (!ops) fail('EINVAL', 'neither GET nor SET');
  if (req.dataSize < minsz) fail('EINVAL', `argsz leaves ${req.dataSize} bytes for data, the feature needs ${minsz}`);
  return 1;
}

/** The data as long as the feature needs: copy_from_user past the buffer is EFAULT. */
function dataOf(req: FeatureRequest, size: number): Uint8Array {
  if (req.data.byteLength < size) fail('EFAULT', 'the feature data runs past the buffer');
  return req.data;
}

/** What differs between the kernel's fds and vfio-user. */
export interface FeatureTransport {
  /** PAGE_SIZE of the host: LOG_MAX_RANGES is PAGE_SIZE / 16. */
  readonly pageSize: number;
  /**
   * Whether the core runs this feature itself: the migration and DMA-logging features
   * are in 6.1's core, MIG_DATA_SIZE came later (6.12 has it). A feature the core does
   * not know goes to the device's own handler.
   */
  coreKnows(feature: number): boolean;
  /** Hands the channel to the user (installs an fd): its number. On a throw the channel is released by the caller. */
  installChannel(channel: MigrationDataChannel): number;
  /** Range `index` of DMA_LOGGING_START's array (copy_from_user of control.ranges: EFAULT). */
  loggingRange(control: { ranges: bigint; num_ranges: number }, data: Uint8Array, index: number): IovaRange;
  /**
   * The report's output bitmap (iova_bitmap_alloc: EFAULT when the user's bitmap is not
   * writable memory; a kernel built without iova_bitmap, as Debian's 6.12, answers
   * EOPNOTSUPP here); bits are only ever set, never cleared.
   */
  reportBitmap(report: { iova: bigint; length: bigint; page_size: bigint; bitmap: bigint }, data: Uint8Array): IovaBitmap;
}

/** The device's own feature handler (vfio_device_ops.device_feature), for the features the core does not run. */
export type DeviceFeatureHandler = (req: FeatureRequest) => number;

/** VFIO_DEVICE_FEATURE on a device: the core's dispatch. */
export function deviceFeatureIoctl(buf: Uint8Array, device: MigratableDevice, transport: FeatureTransport, other?: DeviceFeatureHandler): number {
  const req = featureHeader(buf);
  const core = transport.coreKnows(req.feature);
  switch (core ? req.feature : -1) {
    case N.VFIO_DEVICE_FEATURE_MIGRATION: return migrationFeature(req, device);
    case N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: return migDeviceState(req, device, transport);
    case N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START: return loggingStart(req, device, transport);
    case N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: return loggingStop(req, device);
    case N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: return loggingReport(req, device, transport);
    case N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: return migDataSize(req, device);
  }
  if (!other) fail('EINVAL', `feature ${req.feature} is not supported by this device`);
  return other(req);
}

function migrationFeature(req: FeatureRequest, device: MigratableDevice): number {
  const mig = device.migration;
  if (!mig) fail('ENOTTY', 'the device has no migration support');
  if (checkFeature(req, F.VFIO_DEVICE_FEATURE_GET, vfio_device_feature_migration.size) === 0) return 0;
  vfio_device_feature_migration.write(dataOf(req, vfio_device_feature_migration.size), { flags: BigInt(mig.flags) });
  return 0;
}

function migDeviceState(req: FeatureRequest, device: MigratableDevice, transport: FeatureTransport): number {
  const mig = device.migration;
  if (!mig) fail('ENOTTY', 'the device has no migration support');
  const size = vfio_device_feature_mig_state.size;
  if (checkFeature(req, F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_SET, size) === 0) return 0;
  const data = dataOf(req, size);
  const { device_state: target } = vfio_device_feature_mig_state.decode(data);
  if (req.flags & F.VFIO_DEVICE_FEATURE_GET) {
    vfio_device_feature_mig_state.write(data, { device_state: mig.getState(), data_fd: -1 });
    return 0;
  }
  let channel: MigrationDataChannel | undefined;
  try {
    channel = mig.setState(target);
  } catch (err) {
    vfio_device_feature_mig_state.write(data, { data_fd: -1 });
    throw err;
  }
  if (!channel) {
    vfio_device_feature_mig_state.write(data, { data_fd: -1 });
    return 0;
  }
  let fd: number;
  try {
    fd = transport.installChannel(channel);
  } catch (err) {
    channel.release();
    throw err;
  }
  vfio_device_feature_mig_state.write(data, { data_fd: fd });
  return 0;
}

function migDataSize(req: FeatureRequest, device: MigratableDevice): number {
  const mig = device.migration;
  if (!mig) fail('ENOTTY', 'the device has no migration support');
  const size = vfio_device_feature_mig_data_size.size;
  if (checkFeature(req, F.VFIO_DEVICE_FEATURE_GET, size) === 0) return 0;
  const length = mig.dataSize();
  vfio_device_feature_mig_data_size.write(dataOf(req, size), { stop_copy_length: length });
  return 0;
}

function loggingStart(req: FeatureRequest, device: MigratableDevice, transport: FeatureTransport): number {
  const log = device.dirtyLog;
  if (!log) fail('ENOTTY', 'the device has no DMA logging');
  const size = vfio_device_feature_dma_logging_control.size;
  if (checkFeature(req, F.VFIO_DEVICE_FEATURE_SET, size) === 0) return 0;
  const data = dataOf(req, size);
  const control = vfio_device_feature_dma_logging_control.decode(data);
  if (control.num_ranges === 0) fail('EINVAL', 'no ranges');
  const maxRanges = transport.pageSize / 16;
  if (control.num_ranges > maxRanges) fail('E2BIG', `${control.num_ranges} ranges, at most ${maxRanges}`);
  const ranges = new RangeSet();
  for (let i = 0; i < control.num_ranges; i++) {
    const range = transport.loggingRange(control, data, i);
    validateLoggingRange(range, control.page_size);
    if (!ranges.insert(range)) fail('EINVAL', `range ${i} overlaps another`);
  }
  const chosen = log.start(ranges.sorted(), control.page_size);
  vfio_device_feature_dma_logging_control.write(data, { page_size: chosen });
  return 0;
}

function loggingStop(req: FeatureRequest, device: MigratableDevice): number {
  const log = device.dirtyLog;
  if (!log) fail('ENOTTY', 'the device has no DMA logging');
  if (checkFeature(req, F.VFIO_DEVICE_FEATURE_SET, 0) === 0) return 0;
  log.stop();
  return 0;
}

function loggingReport(req: FeatureRequest, device: MigratableDevice, transport: FeatureTransport): number {
  const log = device.dirtyLog;
  if (!log) fail('ENOTTY', 'the device has no DMA logging');
  const size = vfio_device_feature_dma_logging_report.size;
  if (checkFeature(req, F.VFIO_DEVICE_FEATURE_GET, size) === 0) return 0;
  const data = dataOf(req, size);
  const report = vfio_device_feature_dma_logging_report.decode(data);
  validateReport(report);
  const bitmap = transport.reportBitmap(report, data);
  if (report.length > 0n) log.readAndClear(report.iova, report.length, bitmap);
  return 0;
}
