// DEVICE_FEATURE payloads (docs/interop/vfio-user.rst, "Device Features"): the subset of
// the kernel's VFIO_DEVICE_FEATURE that vfio-user carries, migration and DMA logging. The
// numbers are <linux/vfio.h>'s; two layouts are vfio-user's own, because a socket cannot
// carry the kernel's user pointers: DMA_LOGGING_START has its ranges inline after the
// control struct, and DMA_LOGGING_REPORT's reply has the bitmap inline after the report
// struct. MIG_DEVICE_STATE's data_fd is unused (MIG_DATA_READ/WRITE carry the data), and
// vfio-user has no MIG_DATA_SIZE feature and no VFIO_MIG_GET_PRECOPY_INFO: a client reads
// until a short MIG_DATA_READ.
import { flags as vfioFlags } from '../constants.js';
import { defineStruct } from '../struct.js';
import type { DeviceFeature } from './device.js';
import { sysError } from '../../addon/errors.js';
import { expectLength, invalid } from './invalid.js';

/** Feature indexes vfio-user defines (the low 16 bits of flags). */
export const vfioUserFeatures = {
  VFIO_DEVICE_FEATURE_MIGRATION: 1,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: 2,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START: 6,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: 7,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: 8,
} as const;

/** VFIO_DEVICE_FEATURE_MIGRATION's flags. */
export const vfioUserMigrationFlags = {
  VFIO_MIGRATION_STOP_COPY: 1 << 0,
  VFIO_MIGRATION_P2P: 1 << 1,
  VFIO_MIGRATION_PRE_COPY: 1 << 2,
} as const;

/** enum vfio_device_mig_state; the P2P states are "not used in vfio-user". */
export const vfioUserDeviceStates = {
  ERROR: 0,
  STOP: 1,
  RUNNING: 2,
  STOP_COPY: 3,
  RESUMING: 4,
  RUNNING_P2P: 5,
  PRE_COPY: 6,
  PRE_COPY_P2P: 7,
} as const;

export type VfioUserDeviceStateName = keyof typeof vfioUserDeviceStates;

const stateNames = new Map<number, VfioUserDeviceStateName>(
  Object.entries(vfioUserDeviceStates).map(([name, n]) => [n, name as VfioUserDeviceStateName]),
);

/** 'STOP_COPY' for 3; 'state 9' for a number the enum does not define. */
export function deviceStateName(state: number): string {
  return stateNames.get(state) ?? `state ${state}`;
}

/** Reply data of VFIO_DEVICE_FEATURE_MIGRATION (GET): 0 u64 flags. */
export const vfio_user_device_feature_migration = defineStruct('vfio_user_device_feature_migration', 8, { flags: ['u64', 0] });

/** Data of VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE (SET request, GET and SET reply). */
export const vfio_user_device_feature_mig_state = defineStruct('vfio_user_device_feature_mig_state', 8, {
  device_state: ['u32', 0], data_fd: ['s32', 4],
});

/** DMA_LOGGING_START's data: then num_ranges ranges of 16 bytes inline (the kernel has a pointer at 16). */
export const vfio_user_device_feature_dma_logging_control = defineStruct('vfio_user_device_feature_dma_logging_control', 16, {
  page_size: ['u64', 0], num_ranges: ['u32', 8], reserved: ['u32', 12],
});

export const vfio_user_device_feature_dma_logging_range = defineStruct('vfio_user_device_feature_dma_logging_range', 16, {
  iova: ['u64', 0], length: ['u64', 8],
});

/** DMA_LOGGING_REPORT's data; the reply adds the bitmap inline at 24 (the kernel has a pointer there). */
export const vfio_user_device_feature_dma_logging_report = defineStruct('vfio_user_device_feature_dma_logging_report', 24, {
  iova: ['u64', 0], length: ['u64', 8], page_size: ['u64', 16],
});

/**
 * Ranges one DMA_LOGGING_START may carry: the kernel's LOG_MAX_RANGES (one page of
 * ranges, 4096 / 16 on x86, drivers/vfio/vfio_main.c): what the kernel refuses is refused.
 */
export const VFIO_USER_DMA_LOGGING_MAX_RANGES = 256;

export type FeatureAction = 'get' | 'set' | 'probe';

/** A DEVICE_FEATURE request with its header checked. */
export interface FeatureRequest extends DeviceFeature {
  feature: number;
  get: boolean;
  set: boolean;
  probe: boolean;
}

const F = vfioFlags;
const KNOWN_FLAGS = F.VFIO_DEVICE_FEATURE_MASK | F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_SET | F.VFIO_DEVICE_FEATURE_PROBE;

/**
 * The header rules of vfio_ioctl_device_feature: flags beyond the feature index and
 * GET/SET/PROBE are EINVAL, as are GET and SET together without PROBE.
 */
export function checkFeatureRequest(feature: DeviceFeature): FeatureRequest {
  const { flags } = feature;
  if ((flags & ~KNOWN_FLAGS) >>> 0 !== 0) throw invalid(`VFIO_USER_DEVICE_FEATURE: unknown flags 0x${(flags >>> 0).toString(16)}`);
  const get = (flags & F.VFIO_DEVICE_FEATURE_GET) !== 0;
  const set = (flags & F.VFIO_DEVICE_FEATURE_SET) !== 0;
  const probe = (flags & F.VFIO_DEVICE_FEATURE_PROBE) !== 0;
  if (get && set && !probe) throw invalid('VFIO_USER_DEVICE_FEATURE: GET and SET together without PROBE');
  return { ...feature, feature: flags & F.VFIO_DEVICE_FEATURE_MASK, get, set, probe };
}

export function featureFlags(feature: number, action: FeatureAction | readonly FeatureAction[]): number {
  const bits = { get: F.VFIO_DEVICE_FEATURE_GET, set: F.VFIO_DEVICE_FEATURE_SET, probe: F.VFIO_DEVICE_FEATURE_PROBE };
  const actions: readonly FeatureAction[] = typeof action === 'string' ? [action] : action;
  return (actions.reduce((acc, a) => acc | bits[a], feature & F.VFIO_DEVICE_FEATURE_MASK)) >>> 0;
}

// --- MIGRATION

export function encodeMigrationFlags(flags: bigint): Uint8Array {
  return vfio_user_device_feature_migration.encode({ flags });
}

export function decodeMigrationFlags(data: Uint8Array): bigint {
  expectLength(data, vfio_user_device_feature_migration.size, 'VFIO_DEVICE_FEATURE_MIGRATION', true);
  return vfio_user_device_feature_migration.decode(data).flags;
}

// --- MIG_DEVICE_STATE

/** data_fd is -1 on the wire both ways: vfio-user moves the data in MIG_DATA_READ/WRITE. */
export function encodeMigState(deviceState: number): Uint8Array {
  return vfio_user_device_feature_mig_state.encode({ device_state: deviceState, data_fd: -1 });
}

export function decodeMigState(data: Uint8Array): number {
  expectLength(data, vfio_user_device_feature_mig_state.size, 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE', true);
  const { device_state } = vfio_user_device_feature_mig_state.decode(data);
  if (!stateNames.has(device_state)) throw invalid(`VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: no device state ${device_state}`);
  return device_state;
}

// --- DMA logging

export interface DmaLoggingRange {
  iova: bigint;
  length: bigint;
}

export interface DmaLoggingControl {
  pageSize: bigint;
  ranges: DmaLoggingRange[];
}

export interface DmaLoggingReport {
  iova: bigint;
  length: bigint;
  pageSize: bigint;
}

function isPowerOfTwo(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

export function encodeDmaLoggingControl(control: DmaLoggingControl): Uint8Array {
  const head = vfio_user_device_feature_dma_logging_control;
  const range = vfio_user_device_feature_dma_logging_range;
  const out = head.encode({ page_size: control.pageSize, num_ranges: control.ranges.length }, head.size + control.ranges.length * range.size);
  control.ranges.forEach((r, i) => range.write(out, { iova: r.iova, length: r.length }, head.size + i * range.size));
  return out;
}

/**
 * DMA_LOGGING_START's data: exactly num_ranges ranges after the control struct, at most
 * VFIO_USER_DMA_LOGGING_MAX_RANGES (E2BIG, as the kernel answers). What the ranges and
 * the page size may be (alignment, overlap, wrap) is the device core's rule, checked
 * there with the kernel's errnos.
 */
export function decodeDmaLoggingControl(data: Uint8Array): DmaLoggingControl {
  const what = 'VFIO_DEVICE_FEATURE_DMA_LOGGING_START';
  const head = vfio_user_device_feature_dma_logging_control;
  const range = vfio_user_device_feature_dma_logging_range;
  expectLength(data, head.size, what, true);
  const { page_size: pageSize, num_ranges: count } = head.decode(data);
  if (count > VFIO_USER_DMA_LOGGING_MAX_RANGES) {
    throw sysError('E2BIG', 'vfio-user', undefined, `${what}: ${count} ranges, more than ${VFIO_USER_DMA_LOGGING_MAX_RANGES}`);
  }
  expectLength(data, head.size + count * range.size, `${what} with ${count} ranges`);
  const ranges: DmaLoggingRange[] = [];
  for (let i = 0; i < count; i++) ranges.push(range.decode(data, head.size + i * range.size));
  return { pageSize, ranges };
}

export function encodeDmaLoggingReport(report: DmaLoggingReport): Uint8Array {
  return vfio_user_device_feature_dma_logging_report.encode({ iova: report.iova, length: report.length, page_size: report.pageSize });
}

/** Bytes of bitmap a report of `length` bytes at `pageSize` granularity needs: whole u64s. */
export function dmaLoggingBitmapSize(length: bigint, pageSize: bigint): number {
  const pages = (length + pageSize - 1n) / pageSize;
  return Number(((pages + 63n) / 64n) * 8n);
}

/** DMA_LOGGING_REPORT's request data (its rules are the device core's: validateReport). */
export function decodeDmaLoggingReport(data: Uint8Array): DmaLoggingReport {
  const s = vfio_user_device_feature_dma_logging_report;
  expectLength(data, s.size, 'VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT', true);
  const { iova, length, page_size: pageSize } = s.decode(data);
  return { iova, length, pageSize };
}

/** The reply's data: the report struct, then the bitmap. */
export function encodeDmaLoggingReportReply(report: DmaLoggingReport, bitmap: Uint8Array): Uint8Array {
  const s = vfio_user_device_feature_dma_logging_report;
  const out = s.encode({ iova: report.iova, length: report.length, page_size: report.pageSize }, s.size + bitmap.byteLength);
  out.set(bitmap, s.size);
  return out;
}

/** A reply: the report as asked (a power-of-two page size), then exactly the bitmap it needs. */
export function decodeDmaLoggingReportReply(data: Uint8Array): { report: DmaLoggingReport; bitmap: Uint8Array } {
  const report = decodeDmaLoggingReport(data);
  if (!isPowerOfTwo(report.pageSize)) throw invalid(`VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT reply: page size ${report.pageSize}`);
  const size = dmaLoggingBitmapSize(report.length, report.pageSize);
  expectLength(data, vfio_user_device_feature_dma_logging_report.size + size, 'VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT reply');
  return { report, bitmap: data.subarray(vfio_user_device_feature_dma_logging_report.size) };
}
