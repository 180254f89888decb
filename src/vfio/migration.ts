// The client side of VFIO migration v2 (what QEMU's hw/vfio/migration.c does with a
// device fd): the migration flags, the device state and its data fd, PRE_COPY's
// progress, the expected STOP_COPY size, and device DMA logging. Over either fd layer;
// the data fd is a stream, read and written with read(2)/write(2).
import { sysError, withOperation } from '../addon/errors.js';
import type { SysLayer } from '../sys/types.js';
import { flags as F } from '../uapi/constants.js';
import { ioctls } from '../uapi/ioctls.js';
import {
  VFIO_MIG_GET_PRECOPY_INFO, deviceFeature as N, vfio_device_feature_dma_logging_control, vfio_device_feature_dma_logging_range,
  vfio_device_feature_dma_logging_report, vfio_device_feature_mig_data_size, vfio_device_feature_mig_state,
  vfio_device_feature_migration, vfio_precopy_info,
} from '../uapi/migration.js';
import { vfio_device_feature } from '../uapi/structs.js';
import type { Mapping } from '../sys/types.js';

/** VFIO_DEVICE_FEATURE with `feature`'s data (a buffer of argsz bytes): the buffer after the call. */
export function featureCall(sys: SysLayer, fd: number, flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const buf = new Uint8Array(vfio_device_feature.size + data.byteLength);
  vfio_device_feature.write(buf, { argsz: buf.byteLength, flags });
  buf.set(data, vfio_device_feature.size);
  try {
    sys.ioctl(fd, ioctls.VFIO_DEVICE_FEATURE, buf);
  } catch (err) {
    withOperation(err, 'VFIO_DEVICE_FEATURE');
  }
  return buf.subarray(vfio_device_feature.size);
}

/** A migration data fd: read in the saving states, written in RESUMING. Close it when done. */
export class MigrationDataFd {
  private open = true;

  constructor(private readonly sys: SysLayer, readonly fd: number) {}

  /** read(2): bytes read (0: end of stream). ENOMSG in PRE_COPY when nothing is available now. */
  read(buf: Uint8Array): number {
    if (!this.open) throw sysError('EBADF', 'read', undefined, 'the data fd is closed');
    if (!this.sys.read) throw sysError('EINVAL', 'read', undefined, 'this fd layer has no read(2)');
    return this.sys.read(this.fd, buf);
  }

  /** write(2) of all of `data` (short writes continued). */
  writeAll(data: Uint8Array): void {
    if (!this.open) throw sysError('EBADF', 'write', undefined, 'the data fd is closed');
    if (!this.sys.write) throw sysError('EINVAL', 'write', undefined, 'this fd layer has no write(2)');
    let done = 0;
    while (done < data.byteLength) {
      const n = this.sys.write(this.fd, data.subarray(done));
      if (n <= 0) throw sysError('EIO', 'write', undefined, 'the data fd took nothing');
      done += n;
    }
  }

  /** Reads until the end of the stream (STOP_COPY), or until ENOMSG (PRE_COPY's "nothing now"). */
  drain(chunk = 1 << 20): Uint8Array {
    const pieces: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(chunk);
    for (;;) {
      let n: number;
      try {
        n = this.read(buf);
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOMSG') break;
        throw err;
      }
      if (n === 0) break;
      pieces.push(buf.slice(0, n));
      total += n;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of pieces) { out.set(p, at); at += p.byteLength; }
    return out;
  }

  /** VFIO_MIG_GET_PRECOPY_INFO. */
  precopyInfo(): { initialBytes: bigint; dirtyBytes: bigint } {
    const buf = vfio_precopy_info.encode({ argsz: vfio_precopy_info.size });
    try {
      this.sys.ioctl(this.fd, VFIO_MIG_GET_PRECOPY_INFO, buf);
    } catch (err) {
      withOperation(err, 'VFIO_MIG_GET_PRECOPY_INFO');
    }
    const info = vfio_precopy_info.decode(buf);
    return { initialBytes: info.initial_bytes, dirtyBytes: info.dirty_bytes };
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.sys.close(this.fd);
  }
}

/** Migration and DMA logging of one open device fd. */
export class DeviceMigration {
  constructor(private readonly sys: SysLayer, private readonly fd: number) {}

  /** VFIO_DEVICE_FEATURE_MIGRATION: the migration flags, or undefined when the device cannot migrate (ENOTTY). */
  flags(): number | undefined {
    try {
      const data = featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_GET | N.VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(8));
      return Number(vfio_device_feature_migration.decode(data).flags);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOTTY') return undefined;
      throw err;
    }
  }

  state(): number {
    const data = featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_GET | N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
      vfio_device_feature_mig_state.encode({ data_fd: -1 }));
    return vfio_device_feature_mig_state.decode(data).device_state;
  }

  /** Moves the device to `state`; the data fd the arc opened, if any. */
  setState(state: number): MigrationDataFd | undefined {
    const data = featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_SET | N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
      vfio_device_feature_mig_state.encode({ device_state: state, data_fd: -1 }));
    const fd = vfio_device_feature_mig_state.decode(data).data_fd;
    return fd >= 0 ? new MigrationDataFd(this.sys, fd) : undefined;
  }

  /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the bytes STOP_COPY is expected to stream. */
  dataSize(): bigint {
    const data = featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_GET | N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, new Uint8Array(8));
    return vfio_device_feature_mig_data_size.decode(data).stop_copy_length;
  }

  /** DMA_LOGGING_START over `ranges` with a page-size hint: the page size the device chose. */
  startLogging(ranges: readonly { iova: bigint; length: bigint }[], pageSize: bigint): bigint {
    const size = vfio_device_feature_dma_logging_range.size;
    const array = this.userMemory(Math.max(1, ranges.length * size));
    try {
      const bytes = new Uint8Array(array.buffer);
      ranges.forEach((r, i) => vfio_device_feature_dma_logging_range.write(bytes, r, i * size));
      const data = featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_SET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        vfio_device_feature_dma_logging_control.encode({ page_size: pageSize, num_ranges: ranges.length, ranges: array.address }));
      return vfio_device_feature_dma_logging_control.decode(data).page_size;
    } finally {
      this.sys.munmap(array);
    }
  }

  stopLogging(): void {
    featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_SET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP);
  }

  /** DMA_LOGGING_REPORT: the dirty bitmap of [iova, iova + length) at pageSize, one bit a page. */
  report(iova: bigint, length: bigint, pageSize: bigint): Uint8Array {
    const bits = Number((length + pageSize - 1n) / pageSize);
    const bytes = Math.max(8, Math.ceil(bits / 64) * 8);
    const bitmap = this.userMemory(bytes);
    try {
      featureCall(this.sys, this.fd, F.VFIO_DEVICE_FEATURE_GET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
        vfio_device_feature_dma_logging_report.encode({ iova, length, page_size: pageSize, bitmap: bitmap.address }));
      return new Uint8Array(bitmap.buffer).slice(0, bytes);
    } finally {
      this.sys.munmap(bitmap);
    }
  }

  /** Memory the kernel reaches by address (a user pointer inside a feature's data). */
  private userMemory(length: number): Mapping {
    const mapping = this.sys.allocate(length);
    return mapping;
  }
}
