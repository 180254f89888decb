// The VMM's side of VFIO migration v2, over any fd layer (a kernel device fd, or
// vfio-user, whose client answers the same calls with messages): the MIGRATION and
// MIG_DEVICE_STATE features on a Device, and the data fd a state change returns, read
// while saving and written while resuming, as QEMU's hw/vfio/migration.c drives them.
import { isSysError, sysError } from '../addon/errors.js';
import type { MigState } from '../device/migration/states.js';
import { flags as F } from '../uapi/constants.js';
import { deviceFeature as N, migrationFlags as MF, migStates as S, vfio_device_feature_mig_state } from '../uapi/migration.js';
import { vfio_device_feature } from '../uapi/structs.js';
import type { SysLayer } from '../sys/types.js';
import type { Device } from './device.js';
import { vfioIoctl } from './ioctl.js';

const MIG = 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE';

/** A migration data fd: the stream of a saving or resuming session. */
export class MigrationData {
  private open = true;

  constructor(private readonly sys: SysLayer, readonly fd: number) {}

  /**
   * read(2) into buf: bytes read, 0 at the end of the stream (STOP_COPY), or 'later' when
   * a PRE_COPY session has nothing more now (ENOMSG).
   */
  read(buf: Uint8Array): number | 'later' {
    const read = this.sys.read?.bind(this.sys);
    if (!read) throw sysError('ENOTTY', 'read', undefined, `the ${this.sys.kind} fd layer cannot read a stream fd`);
    try {
      return read(this.fd, buf);
    } catch (err) {
      if (isSysError(err) && err.code === 'ENOMSG') return 'later';
      throw err;
    }
  }

  /** write(2) of all of buf. */
  write(buf: Uint8Array): void {
    const write = this.sys.write?.bind(this.sys);
    if (!write) throw sysError('ENOTTY', 'write', undefined, `the ${this.sys.kind} fd layer cannot write a stream fd`);
    for (let done = 0; done < buf.byteLength;) {
      const n = write(this.fd, buf.subarray(done));
      if (n <= 0) throw sysError('EIO', 'write', undefined, `the device took ${done} of ${buf.byteLength} bytes`);
      done += n;
    }
  }

  /** Closes the fd. Idempotent. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.sys.close(this.fd);
  }
}

/** VFIO_DEVICE_FEATURE for migration on one device. */
export class MigrationControl {
  constructor(readonly device: Device) {}

  private feature(flags: number, data: Uint8Array): Uint8Array {
    const buf = new Uint8Array(vfio_device_feature.size + data.byteLength);
    vfio_device_feature.write(buf, { argsz: buf.byteLength, flags });
    buf.set(data, vfio_device_feature.size);
    vfioIoctl(this.device.sys, this.device.fd, 'VFIO_DEVICE_FEATURE', buf);
    return buf.subarray(vfio_device_feature.size);
  }

  /** VFIO_MIGRATION_* flags; ENOTTY for a device that cannot migrate. */
  flags(): number {
    const data = this.feature(N.VFIO_DEVICE_FEATURE_MIGRATION | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(8));
    return Number(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
  }

  state(): MigState {
    const data = this.feature(N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(8));
    return vfio_device_feature_mig_state.decode(data).device_state as MigState;
  }

  /** MIG_DEVICE_STATE SET: the data fd the change opened, if any. */
  set(target: MigState): MigrationData | undefined {
    const data = this.feature(N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_SET,
      vfio_device_feature_mig_state.encode({ device_state: target, data_fd: -1 }));
    const fd = vfio_device_feature_mig_state.decode(data).data_fd;
    return fd >= 0 ? new MigrationData(this.device.sys, fd) : undefined;
  }
}

export interface MigrateOptions {
  /** Pre-copy rounds at most (default 8); 0 skips pre-copy. */
  precopyRounds?: number;
  /** Runs between pre-copy rounds: the device's user keeps working meanwhile. */
  betweenRounds?: () => Promise<void>;
  /** Runs before the source stops (the VMM stops its vCPUs): the user must leave the device idle. */
  pause?: () => Promise<void>;
  /** Runs once the target holds the state, before it runs (the VMM moves the guest's memory and interrupts). */
  beforeResume?: () => Promise<void> | void;
  /** Bytes per read of the data fd (default 1 MiB). */
  chunkSize?: number;
}

export interface MigrateReport {
  flags: number;
  precopyRounds: number;
  precopyBytes: number;
  stopCopyBytes: number;
  /** From the source leaving RUNNING/PRE_COPY (STOP_COPY) to the target in RUNNING, milliseconds. */
  downtimeMs: number;
  totalMs: number;
}

/** Moves every byte available now from a saving data fd to a resuming one; returns the count and whether the stream ended. */
function pump(from: MigrationData, to: MigrationData, buf: Uint8Array): { bytes: number; ended: boolean } {
  let bytes = 0;
  for (;;) {
    const n = from.read(buf);
    if (n === 'later') return { bytes, ended: false };
    if (n === 0) return { bytes, ended: true };
    to.write(buf.subarray(0, n));
    bytes += n;
  }
}

/**
 * Moves the device state of `source` into `target` as a VMM does: the target to
 * RESUMING, pre-copy while the source runs (when it has PRE_COPY), the source stopped
 * (STOP_COPY) and its rest streamed, the target loaded (STOP) and run. The two devices
 * must offer the same migration flags. On any failure the source is returned to
 * RUNNING with its state unchanged and the target reset (out of RESUMING or ERROR), and
 * the error passes on.
 */
export async function migrateDevice(source: Device, target: Device, options: MigrateOptions = {}): Promise<MigrateReport> {
  const started = performance.now();
  const src = new MigrationControl(source);
  const dst = new MigrationControl(target);
  const flags = src.flags();
  const targetFlags = dst.flags();
  if (targetFlags !== flags) {
    throw sysError('EINVAL', 'migrate', MIG, `the source offers migration flags 0x${flags.toString(16)}, the target 0x${targetFlags.toString(16)}`);
  }
  if (!(flags & MF.VFIO_MIGRATION_STOP_COPY)) throw sysError('EINVAL', 'migrate', MIG, 'the device has no STOP_COPY');
  const buf = new Uint8Array(options.chunkSize ?? 1 << 20);
  const report: MigrateReport = { flags, precopyRounds: 0, precopyBytes: 0, stopCopyBytes: 0, downtimeMs: 0, totalMs: 0 };
  let saving: MigrationData | undefined;
  let resuming: MigrationData | undefined;
  let sourceStopped = false;
  try {
    resuming = dst.set(S.VFIO_DEVICE_STATE_RESUMING);
    if (!resuming) throw sysError('EPROTO', 'migrate', MIG, 'RESUMING opened no data fd');
    const rounds = flags & MF.VFIO_MIGRATION_PRE_COPY ? options.precopyRounds ?? 8 : 0;
    if (rounds > 0) {
      saving = src.set(S.VFIO_DEVICE_STATE_PRE_COPY);
      if (!saving) throw sysError('EPROTO', 'migrate', MIG, 'PRE_COPY opened no data fd');
      for (let round = 0; round < rounds; round++) {
        report.precopyBytes += pump(saving, resuming, buf).bytes;
        report.precopyRounds++;
        await options.betweenRounds?.();
      }
    }
    await options.pause?.();
    const stop = performance.now();
    sourceStopped = true;
    const more = src.set(S.VFIO_DEVICE_STATE_STOP_COPY);
    if (more) {
      saving?.close();
      saving = more;
    }
    if (!saving) throw sysError('EPROTO', 'migrate', MIG, 'STOP_COPY opened no data fd');
    const rest = pump(saving, resuming, buf);
    if (!rest.ended) throw sysError('EPROTO', 'migrate', MIG, 'STOP_COPY answered ENOMSG: its stream must end with a 0 read');
    report.stopCopyBytes = rest.bytes;
    src.set(S.VFIO_DEVICE_STATE_STOP);
    dst.set(S.VFIO_DEVICE_STATE_STOP); // the target loads and checks the stream here
    await options.beforeResume?.();
    dst.set(S.VFIO_DEVICE_STATE_RUNNING);
    report.downtimeMs = performance.now() - stop;
  } catch (err) {
    saving?.close();
    resuming?.close();
    saving = resuming = undefined;
    rollBack(src, dst, sourceStopped);
    throw err;
  } finally {
    saving?.close();
    resuming?.close();
  }
  report.totalMs = performance.now() - started;
  return report;
}

/** After a failure: the source back to RUNNING (its state untouched by a save), the target reset. */
function rollBack(src: MigrationControl, dst: MigrationControl, sourceStopped: boolean): void {
  for (const step of [
    () => { if (sourceStopped || src.state() !== S.VFIO_DEVICE_STATE_RUNNING) src.set(S.VFIO_DEVICE_STATE_RUNNING); },
    () => dst.device.reset(),
  ]) {
    try {
      step();
    } catch {
      // Best effort: the first error is the one the caller sees.
    }
  }
}

