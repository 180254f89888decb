// A VMM's move of one device's state to another device, over any fd layer (kernel
// device fds, or vfio-user, whose client answers the same calls with messages), as
// QEMU's hw/vfio/migration.c drives it with the client calls of migration.ts: the
// target to RESUMING, pre-copy rounds while the source runs, STOP_COPY, the target
// loaded and run; and on a failure, everything put back.
import { isSysError, sysError } from '../addon/errors.js';
import { migrationFlags as MF, migStates as S } from '../uapi/migration.js';
import type { Device } from './device.js';
import { DeviceMigration, type MigrationDataFd } from './migration.js';

const MIG = 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE';

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
function pump(from: MigrationDataFd, to: MigrationDataFd, buf: Uint8Array): { bytes: number; ended: boolean } {
  let bytes = 0;
  for (;;) {
    let n: number;
    try {
      n = from.read(buf);
    } catch (err) {
      if (isSysError(err) && err.code === 'ENOMSG') return { bytes, ended: false }; // PRE_COPY: nothing more now
      throw err;
    }
    if (n === 0) return { bytes, ended: true };
    to.writeAll(buf.subarray(0, n));
    bytes += n;
  }
}

function controlOf(device: Device): DeviceMigration {
  return new DeviceMigration(device.sys, device.fd);
}

function flagsOf(control: DeviceMigration, which: string): number {
  const flags = control.flags();
  if (flags === undefined) throw sysError('ENOTTY', 'migrate', 'VFIO_DEVICE_FEATURE_MIGRATION', `the ${which} device cannot migrate`);
  return flags;
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
  const src = controlOf(source);
  const dst = controlOf(target);
  const flags = flagsOf(src, 'source');
  const targetFlags = flagsOf(dst, 'target');
  if (targetFlags !== flags) {
    throw sysError('EINVAL', 'migrate', MIG, `the source offers migration flags 0x${flags.toString(16)}, the target 0x${targetFlags.toString(16)}`);
  }
  if (!(flags & MF.VFIO_MIGRATION_STOP_COPY)) throw sysError('EINVAL', 'migrate', MIG, 'the device has no STOP_COPY');
  const buf = new Uint8Array(options.chunkSize ?? 1 << 20);
  const report: MigrateReport = { flags, precopyRounds: 0, precopyBytes: 0, stopCopyBytes: 0, downtimeMs: 0, totalMs: 0 };
  let saving: MigrationDataFd | undefined;
  let resuming: MigrationDataFd | undefined;
  let sourceStopped = false;
  // What was under way, for the error: over vfio-user an error reply carries an errno only.
  let phase = 'putting the target in RESUMING';
  try {
    resuming = dst.setState(S.VFIO_DEVICE_STATE_RESUMING);
    if (!resuming) throw sysError('EPROTO', 'migrate', MIG, 'RESUMING opened no data fd');
    const rounds = flags & MF.VFIO_MIGRATION_PRE_COPY ? options.precopyRounds ?? 8 : 0;
    if (rounds > 0) {
      phase = 'putting the source in PRE_COPY';
      saving = src.setState(S.VFIO_DEVICE_STATE_PRE_COPY);
      if (!saving) throw sysError('EPROTO', 'migrate', MIG, 'PRE_COPY opened no data fd');
      for (let round = 0; round < rounds; round++) {
        phase = `pre-copy round ${round + 1} (the source's stream into the target)`;
        report.precopyBytes += pump(saving, resuming, buf).bytes;
        report.precopyRounds++;
        await options.betweenRounds?.();
      }
    }
    phase = 'pausing the user';
    await options.pause?.();
    phase = 'putting the source in STOP_COPY';
    const stop = performance.now();
    sourceStopped = true;
    const more = src.setState(S.VFIO_DEVICE_STATE_STOP_COPY);
    if (more) {
      saving?.close();
      saving = more;
    }
    if (!saving) throw sysError('EPROTO', 'migrate', MIG, 'STOP_COPY opened no data fd');
    phase = 'stop-copy (the source\'s stream into the target)';
    const rest = pump(saving, resuming, buf);
    if (!rest.ended) throw sysError('EPROTO', 'migrate', MIG, 'STOP_COPY answered ENOMSG: its stream must end with a 0 read');
    report.stopCopyBytes = rest.bytes;
    phase = 'stopping the source';
    src.setState(S.VFIO_DEVICE_STATE_STOP);
    phase = 'the target loading the stream (RESUMING -> STOP)';
    dst.setState(S.VFIO_DEVICE_STATE_STOP);
    phase = 'preparing the target to run';
    await options.beforeResume?.();
    phase = 'putting the target in RUNNING';
    dst.setState(S.VFIO_DEVICE_STATE_RUNNING);
    report.downtimeMs = performance.now() - stop;
  } catch (err) {
    saving?.close();
    resuming?.close();
    saving = resuming = undefined;
    rollBack(src, target, sourceStopped);
    if (isSysError(err)) err.message = `migration failed while ${phase} (the source was put back in RUNNING, the target reset): ${err.message}`;
    throw err;
  } finally {
    saving?.close();
    resuming?.close();
  }
  report.totalMs = performance.now() - started;
  return report;
}

/** After a failure: the source back to RUNNING (its state untouched by a save), the target reset. */
function rollBack(src: DeviceMigration, target: Device, sourceStopped: boolean): void {
  for (const step of [
    () => { if (sourceStopped || src.state() !== S.VFIO_DEVICE_STATE_RUNNING) src.setState(S.VFIO_DEVICE_STATE_RUNNING); },
    () => target.reset(),
  ]) {
    try {
      step();
    } catch {
      // Best effort: the first error is the one the caller sees.
    }
  }
}

