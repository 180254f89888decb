// Migration over vfio-user: DEVICE_FEATURE, MIG_DATA_READ and MIG_DATA_WRITE. The
// feature runs through the device core's VFIO_DEVICE_FEATURE dispatch (the kernel's
// checks and errnos: ENOTTY for a device that cannot migrate) with what differs on a
// socket: DMA_LOGGING_START's ranges and DMA_LOGGING_REPORT's bitmap are inline, the
// data session of a state change stays in the session (data_fd is -1 on the wire) for
// MIG_DATA_READ/WRITE, and only the features vfio-user defines are known (no
// MIG_DATA_SIZE). The P2P states are "not used in vfio-user": the MIGRATION flags
// offered leave P2P out and a request for a P2P state is EINVAL, as for a device
// without P2P.
import { sysError, type SysError } from '../../../addon/errors.js';
import {
  deviceFeatureIoctl, type FeatureTransport, type IovaBitmap, type MigratableDevice, type MigrationDataChannel, type MigrationOps,
} from '../../../device/migration/index.js';
import { flags as F } from '../../../uapi/constants.js';
import { deviceFeature as N, migrationFlags, migStates } from '../../../uapi/migration.js';
import { vfio_device_feature } from '../../../uapi/structs.js';
import {
  decodeDeviceFeature, decodeDmaLoggingControl, decodeDmaLoggingReport, decodeMigData, decodeMigDataRead,
  dmaLoggingBitmapSize, encodeDeviceFeature, encodeMigData, vfio_user_device_feature_dma_logging_control,
  vfio_user_device_feature_dma_logging_range, vfio_user_device_feature_dma_logging_report, vfioUserFeatures,
} from '../../../uapi/vfio-user/index.js';
import type { Session } from '../session.js';
import { EMPTY_REPLY, type CommandSpec } from './types.js';

const FEATURE = 'VFIO_USER_DEVICE_FEATURE';
const P2P_STATES: ReadonlySet<number> = new Set([migStates.VFIO_DEVICE_STATE_RUNNING_P2P, migStates.VFIO_DEVICE_STATE_PRE_COPY_P2P]);
const KNOWN_FEATURES: ReadonlySet<number> = new Set(Object.values(vfioUserFeatures));

function fail(code: 'EINVAL' | 'E2BIG', op: string, detail: string): never {
  throw sysError(code, 'vfio-user', op, detail);
}

/** The device's migration as vfio-user offers it: without the P2P states. */
function withoutP2p(ops: MigrationOps): MigrationOps {
  return {
    flags: ops.flags & ~migrationFlags.VFIO_MIGRATION_P2P,
    setState: (target) => {
      if (P2P_STATES.has(target)) fail('EINVAL', FEATURE, `state ${target} (a P2P state) is not used in vfio-user`);
      return ops.setState(target);
    },
    getState: () => ops.getState(),
    dataSize: () => ops.dataSize(),
  };
}

/** Whether a device announces migration (VERSION's "migration" capability, DEVICE_FEATURE MIGRATION). */
export function migratable(device: MigratableDevice): boolean {
  return device.migration !== undefined;
}

/** The largest bitmap one report may return: what the VERSION reply announces as max_bitmap_size. */
export function maxBitmapSize(session: Session): number {
  return session.negotiated.clientMaxDataXferSize;
}

/** The socket's side of the dispatch; `install` receives the data session a state change opened. */
function transportFor(pageSize: number, install: (channel: MigrationDataChannel) => void): FeatureTransport {
  return {
    pageSize,
    coreKnows: (feature) => KNOWN_FEATURES.has(feature),
    installChannel: (channel) => {
      install(channel);
      return -1; // data_fd is unused in vfio-user
    },
    loggingRange: (_control, data, index) => {
      const at = vfio_user_device_feature_dma_logging_control.size + index * vfio_user_device_feature_dma_logging_range.size;
      return vfio_user_device_feature_dma_logging_range.decode(data, at);
    },
    reportBitmap: (report, data): IovaBitmap => {
      const bits = data.subarray(vfio_user_device_feature_dma_logging_report.size);
      const words = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
      return {
        set: (iova, length) => {
          // Only bits inside the reported range, as the spec requires.
          const from = iova < report.iova ? report.iova : iova;
          const to = iova + length > report.iova + report.length ? report.iova + report.length : iova + length;
          for (let page = (from - report.iova) / report.page_size; report.iova + page * report.page_size < to; page++) {
            const word = Number(page / 64n) * 8;
            words.setBigUint64(word, words.getBigUint64(word, true) | (1n << (page % 64n)), true);
          }
        },
      };
    },
  };
}

/**
 * How many data bytes after the header the feature's reply needs, so the dispatch can
 * write it in place: the request's bytes, grown to what a GET answers. The client's
 * argsz (the largest reply it takes) must leave room for it.
 */
function replyDataSize(session: Session, feature: number, flags: number, data: Uint8Array, argsz: number): number {
  const get = (flags & F.VFIO_DEVICE_FEATURE_GET) !== 0 && (flags & F.VFIO_DEVICE_FEATURE_PROBE) === 0;
  if (!get || !KNOWN_FEATURES.has(feature)) return data.byteLength;
  if (feature !== N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) return Math.max(data.byteLength, 8);
  const report = decodeDmaLoggingReport(data);
  if (report.pageSize === 0n) return data.byteLength; // the core's validateReport refuses it
  const bitmap = dmaLoggingBitmapSize(report.length, report.pageSize);
  if (bitmap > maxBitmapSize(session)) fail('E2BIG', FEATURE, `a ${bitmap}-byte bitmap, more than ${maxBitmapSize(session)}`);
  const needed = vfio_user_device_feature_dma_logging_report.size + bitmap;
  if (argsz - vfio_device_feature.size < needed) fail('EINVAL', FEATURE, `argsz ${argsz} leaves no room for the ${bitmap}-byte bitmap`);
  return needed;
}

export const deviceFeature: CommandSpec = {
  maxFds: 0,
  handle(request, session) {
    const { argsz, flags, data } = decodeDeviceFeature(request.body);
    const feature = flags & F.VFIO_DEVICE_FEATURE_MASK;
    const setting = (flags & F.VFIO_DEVICE_FEATURE_SET) !== 0 && (flags & F.VFIO_DEVICE_FEATURE_PROBE) === 0;
    if (feature === N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START && setting) decodeDmaLoggingControl(data);
    const size = replyDataSize(session, feature, flags, data, argsz);
    const buf = new Uint8Array(vfio_device_feature.size + size);
    buf.set(request.body.subarray(0, buf.byteLength));
    // The bitmap starts clear (bits are only ever set), whatever a client sent after the report struct.
    if (feature === N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) buf.fill(0, vfio_device_feature.size + vfio_user_device_feature_dma_logging_report.size);
    const backend = session.backend;
    const device: MigratableDevice = {
      migration: backend.migration && withoutP2p(backend.migration),
      dirtyLog: backend.dirtyLog,
    };
    let opened: MigrationDataChannel | undefined;
    deviceFeatureIoctl(buf, device, transportFor(session.negotiated.pgsize, (channel) => { opened = channel; }));
    if (feature === N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE && setting && device.migration) {
      session.migrationStateChanged(opened, device.migration.getState());
    }
    const replyData = buf.subarray(vfio_device_feature.size);
    return { body: encodeDeviceFeature(flags, replyData) };
  },
};

function errnoOf(err: unknown): string | undefined {
  return (err as Partial<SysError>)?.code;
}

/** MIG_DATA_READ: up to `size` bytes of the saving stream; fewer means no more for now (PRE_COPY) or ever (STOP_COPY). */
export const migDataRead: CommandSpec = {
  maxFds: 0,
  handle(request, session) {
    const op = 'VFIO_USER_MIG_DATA_READ';
    const { argsz, size } = decodeMigDataRead(request.body);
    const limit = session.negotiated.clientMaxDataXferSize;
    if (size > limit) fail('E2BIG', op, `${size} bytes, more than the client's max_data_xfer_size ${limit}`);
    if (argsz < 8 + size) fail('EINVAL', op, `argsz ${argsz} cannot hold ${size} bytes of data`);
    const channel = session.migrationChannel;
    if (!channel) fail('EINVAL', op, 'no migration data session: the device is not saving');
    if (channel.direction !== 'save') fail('EINVAL', op, 'the device is resuming: its stream is written, not read');
    const buf = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      let n: number;
      try {
        n = channel.read(buf.subarray(done));
      } catch (err) {
        if (errnoOf(err) === 'ENOMSG') break; // PRE_COPY: nothing more now
        throw err;
      }
      if (n === 0) break;
      done += n;
    }
    return { body: encodeMigData(buf.subarray(0, done)) };
  },
};

/** MIG_DATA_WRITE: the resuming stream's next bytes, all taken or an error. */
export const migDataWrite: CommandSpec = {
  maxFds: 0,
  handle(request, session) {
    const op = 'VFIO_USER_MIG_DATA_WRITE';
    const { data } = decodeMigData(request.body);
    const channel = session.migrationChannel;
    if (!channel) fail('EINVAL', op, 'no migration data session: the device is not resuming');
    if (channel.direction !== 'resume') fail('EINVAL', op, 'the device is saving: its stream is read, not written');
    let done = 0;
    while (done < data.byteLength) {
      const n = channel.write(data.subarray(done));
      if (n <= 0) throw sysError('EIO', 'vfio-user', op, `the device took ${done} of ${data.byteLength} bytes`);
      done += n;
    }
    return EMPTY_REPLY;
  },
};
