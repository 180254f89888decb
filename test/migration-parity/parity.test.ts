// The migration parity suite (issue 12 part 3): VFIO migration v2 as a user sees it,
// written once, run on a vGPU on the mock kernel (npm test) and on Linux 6.12's mtty in
// the kernel harness's guest (VGPU_SYS=native; 6.1's mtty has no migration: skipped).
// Feature flags, every arc of the state machine and the bad ones, the data fd, pre-copy
// info, resuming with garbage or a truncated stream, DMA logging's checks. What the
// bytes of a stream are is the device's business: only their presence is compared.
import { skip } from 'node:test';
import { flags as F } from '../../src/uapi/constants.js';
import { ioctls } from '../../src/uapi/ioctls.js';
import {
  VFIO_MIG_GET_PRECOPY_INFO, deviceFeature as N, migStates as S, vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_range, vfio_device_feature_dma_logging_report, vfio_device_feature_mig_state, vfio_precopy_info,
} from '../../src/uapi/migration.js';
import { vfio_device_feature } from '../../src/uapi/structs.js';
import { migStateNames } from '../../src/device/migration/states.js';
import { DeviceMigration, MigrationDataFd } from '../../src/vfio/migration.js';
import type { SysLayer } from '../../src/sys/types.js';
import { attempt, declaredCase, fails, ok, parityCase, type Outcome } from './outcome.js';
import { migrationTarget, type MigrationTarget } from './target.js';

const t = migrationTarget();
const { GET, SET, PROBE } = { GET: F.VFIO_DEVICE_FEATURE_GET, SET: F.VFIO_DEVICE_FEATURE_SET, PROBE: F.VFIO_DEVICE_FEATURE_PROBE };

/** A fresh mdev, open for the length of `fn`; data fds it opens are closed after. */
function withDevice<T>(target: MigrationTarget, fn: (d: Dev) => T): T {
  const { handle, done } = target.open();
  const dev = new Dev(target.sys, handle.device.fd, () => handle.device.reset());
  try {
    return fn(dev);
  } finally {
    dev.closeFds();
    done();
  }
}

class Dev {
  readonly mig: DeviceMigration;
  private readonly fds: MigrationDataFd[] = [];

  constructor(readonly sys: SysLayer, readonly fd: number, readonly reset: () => void) {
    this.mig = new DeviceMigration(sys, fd);
  }

  /** VFIO_DEVICE_FEATURE with `data`, argsz as given (default: header + data). */
  feature(flags: number, data: Uint8Array = new Uint8Array(0), argsz = vfio_device_feature.size + data.byteLength): { out: Outcome; data: Uint8Array } {
    const buf = new Uint8Array(vfio_device_feature.size + Math.max(data.byteLength, 64));
    vfio_device_feature.write(buf, { argsz, flags });
    buf.set(data, vfio_device_feature.size);
    const out = attempt(() => this.sys.ioctl(this.fd, ioctls.VFIO_DEVICE_FEATURE, buf));
    return { out, data: buf.subarray(vfio_device_feature.size) };
  }

  /** SET MIG_DEVICE_STATE: the outcome, whether an fd came back, and the state after. */
  set(state: number): { out: Outcome; fd: boolean; state: string } {
    const { out, data } = this.feature(SET | N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, vfio_device_feature_mig_state.encode({ device_state: state, data_fd: -1 }));
    const fd = vfio_device_feature_mig_state.decode(data).data_fd;
    if (fd >= 0) this.keep(fd);
    return { out, fd: fd >= 0, state: this.stateName() };
  }

  /** SET that must succeed; the data fd it opened, if any. */
  go(state: number): MigrationDataFd | undefined {
    const before = this.fds.length;
    const r = this.set(state);
    if (!('ret' in r.out)) throw new Error(`setting ${migStateNames[state]} failed: ${JSON.stringify(r.out)}`);
    return this.fds.length > before ? this.fds.at(-1) : undefined;
  }

  stateName(): string {
    return migStateNames[this.mig.state()] ?? 'unknown';
  }

  keep(fd: number): MigrationDataFd {
    const data = new MigrationDataFd(this.sys, fd);
    this.fds.push(data);
    return data;
  }

  closeFds(): void {
    for (const f of this.fds) f.close();
    this.fds.length = 0;
  }
}

const REAL = [S.VFIO_DEVICE_STATE_STOP, S.VFIO_DEVICE_STATE_RUNNING, S.VFIO_DEVICE_STATE_STOP_COPY, S.VFIO_DEVICE_STATE_RESUMING,
  S.VFIO_DEVICE_STATE_RUNNING_P2P, S.VFIO_DEVICE_STATE_PRE_COPY, S.VFIO_DEVICE_STATE_PRE_COPY_P2P];

/** Brings a RUNNING device to `state` the way a user would (keeping any data fd open). */
function reach(d: Dev, state: number): void {
  if (state === S.VFIO_DEVICE_STATE_RESUMING || state === S.VFIO_DEVICE_STATE_STOP_COPY) d.go(S.VFIO_DEVICE_STATE_STOP);
  d.go(state);
}

/** Where vfio_mig_get_next_state leads, arc by arc (the kernel comment's paths). */
function expectedArc(from: number, to: number): { out: Outcome; fd: boolean; state: string } {
  const name = (s: number): string => migStateNames[s]!;
  if (from === to) return { out: ok(), fd: false, state: name(to) };
  if (from === S.VFIO_DEVICE_STATE_STOP_COPY && (to === S.VFIO_DEVICE_STATE_PRE_COPY || to === S.VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
    return { out: fails('EINVAL'), fd: false, state: name(from) };
  }
  // Leaving RESUMING loads the stream: none was written, so RESUMING -> STOP fails there.
  if (from === S.VFIO_DEVICE_STATE_RESUMING) return { out: fails('EINVAL'), fd: false, state: 'RESUMING' };
  const opensSaving = (to === S.VFIO_DEVICE_STATE_PRE_COPY || to === S.VFIO_DEVICE_STATE_PRE_COPY_P2P)
    ? from !== S.VFIO_DEVICE_STATE_PRE_COPY && from !== S.VFIO_DEVICE_STATE_PRE_COPY_P2P
    : to === S.VFIO_DEVICE_STATE_STOP_COPY ? from !== S.VFIO_DEVICE_STATE_PRE_COPY && from !== S.VFIO_DEVICE_STATE_PRE_COPY_P2P
      : to === S.VFIO_DEVICE_STATE_RESUMING;
  return { out: ok(), fd: opensSaving, state: name(to) };
}

if (t.flavour === '6.1') {
  skip('migration parity: 6.1\'s mtty has no migration support');
} else {
  // ---- feature flags and checks ----
  parityCase(t, 'migration: MIGRATION GET gives STOP_COPY | P2P | PRE_COPY', { out: ok(), flags: 7 }, () => withDevice(t, (d) => {
    const { out, data } = d.feature(GET | N.VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(8));
    return { out, flags: new DataView(data.buffer, data.byteOffset).getUint32(0, true) };
  }));
  parityCase(t, 'migration: MIGRATION PROBE|GET is 0', ok(), () => withDevice(t, (d) => d.feature(PROBE | GET | N.VFIO_DEVICE_FEATURE_MIGRATION).out));
  parityCase(t, 'migration: MIGRATION PROBE|SET is EINVAL', fails('EINVAL'), () => withDevice(t, (d) => d.feature(PROBE | SET | N.VFIO_DEVICE_FEATURE_MIGRATION).out));
  parityCase(t, 'migration: MIGRATION SET is EINVAL', fails('EINVAL'), () => withDevice(t, (d) => d.feature(SET | N.VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(8)).out));
  parityCase(t, 'migration: MIGRATION GET with 4 data bytes is EINVAL', fails('EINVAL'), () => withDevice(t, (d) => d.feature(GET | N.VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(4)).out));
  parityCase(t, 'migration: MIGRATION with neither GET nor SET is EINVAL', fails('EINVAL'), () => withDevice(t, (d) => d.feature(N.VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(8)).out));
  parityCase(t, 'migration: MIG_DEVICE_STATE GET is RUNNING with data_fd -1', { out: ok(), state: 2, fd: -1 }, () => withDevice(t, (d) => {
    const { out, data } = d.feature(GET | N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, vfio_device_feature_mig_state.encode({ device_state: 99, data_fd: 5 }));
    const v = vfio_device_feature_mig_state.decode(data);
    return { out, state: v.device_state, fd: v.data_fd };
  }));
  parityCase(t, 'migration: MIG_DEVICE_STATE PROBE with GET and SET is 0', ok(), () => withDevice(t, (d) => d.feature(PROBE | GET | SET | N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE).out));
  parityCase(t, 'migration: MIG_DEVICE_STATE GET with 4 data bytes is EINVAL', fails('EINVAL'), () => withDevice(t, (d) => d.feature(GET | N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, new Uint8Array(4)).out));
  parityCase(t, 'migration: MIG_DATA_SIZE PROBE|GET is 0, PROBE|SET EINVAL', [ok(), fails('EINVAL')], () => withDevice(t, (d) => [
    d.feature(PROBE | GET | N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE).out, d.feature(PROBE | SET | N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE).out]));
  declaredCase(t, 'migration: MIG_DATA_SIZE GET', { mtty: { out: ok(), nonZero: true }, vgpu: { out: ok(), nonZero: true } },
    'the size is the device\'s own (mtty: its fixed struct; a vGPU: header, written memory, sections)', () => withDevice(t, (d) => {
      const { out, data } = d.feature(GET | N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, new Uint8Array(8));
      return { out, nonZero: new DataView(data.buffer, data.byteOffset).getBigUint64(0, true) > 0n };
    }));

  // ---- bad target states ----
  for (const bad of [0, 8, 0x100]) {
    parityCase(t, `migration: SET device_state ${bad} is EINVAL, the state stays RUNNING`, { out: fails('EINVAL'), fd: false, state: 'RUNNING' },
      () => withDevice(t, (d) => d.set(bad)));
  }

  // ---- every arc ----
  for (const from of REAL) {
    for (const to of REAL) {
      const name = `migration: arc ${migStateNames[from]} -> ${migStateNames[to]}`;
      parityCase(t, name, expectedArc(from, to), () => withDevice(t, (d) => {
        reach(d, from);
        return d.set(to);
      }));
    }
  }

  // ---- the data fd ----
  parityCase(t, 'migration: STOP_COPY data fd: reads to the end, then 0 again', { gotData: true, again: 0 }, () => withDevice(t, (d) => {
    d.go(S.VFIO_DEVICE_STATE_STOP);
    const fd = d.go(S.VFIO_DEVICE_STATE_STOP_COPY)!;
    const stream = fd.drain(7);
    return { gotData: stream.byteLength > 0, again: fd.read(new Uint8Array(64)) };
  }));
  parityCase(t, 'migration: data fd: pread is ESPIPE, write on a saving fd EBADF', [fails('ESPIPE'), fails('EBADF')], () => withDevice(t, (d) => {
    d.go(S.VFIO_DEVICE_STATE_STOP);
    const fd = d.go(S.VFIO_DEVICE_STATE_STOP_COPY)!;
    return [attempt(() => d.sys.pread(fd.fd, new Uint8Array(8), 0n)), attempt(() => d.sys.write!(fd.fd, new Uint8Array(8)))];
  }));
  parityCase(t, 'migration: resuming fd: read is EBADF, PRECOPY_INFO ENOTTY', [fails('EBADF'), fails('ENOTTY')], () => withDevice(t, (d) => {
    d.go(S.VFIO_DEVICE_STATE_STOP);
    const fd = d.go(S.VFIO_DEVICE_STATE_RESUMING)!;
    return [attempt(() => d.sys.read!(fd.fd, new Uint8Array(8))), attempt(() => fd.precopyInfo() && 0)];
  }));
  parityCase(t, 'migration: PRECOPY_INFO in PRE_COPY: initial bytes, no dirty bytes', { out: ok(), initial: true, dirty: 0n }, () => withDevice(t, (d) => {
    const fd = d.go(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    let info = { initialBytes: 0n, dirtyBytes: -1n };
    const out = attempt(() => { info = fd.precopyInfo(); return 0; });
    return { out, initial: info.initialBytes > 0n, dirty: info.dirtyBytes };
  }));
  parityCase(t, 'migration: PRECOPY_INFO: argsz 16 EINVAL, in STOP_COPY EINVAL, unknown ioctl ENOTTY', [fails('EINVAL'), fails('EINVAL'), fails('ENOTTY')], () => withDevice(t, (d) => {
    const fd = d.go(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    const short = attempt(() => d.sys.ioctl(fd.fd, VFIO_MIG_GET_PRECOPY_INFO, vfio_precopy_info.encode({ argsz: 16 })));
    const unknown = attempt(() => d.sys.ioctl(fd.fd, VFIO_MIG_GET_PRECOPY_INFO + 1, vfio_precopy_info.encode({ argsz: 24 })));
    d.go(S.VFIO_DEVICE_STATE_STOP_COPY);
    const inStopCopy = attempt(() => d.sys.ioctl(fd.fd, VFIO_MIG_GET_PRECOPY_INFO, vfio_precopy_info.encode({ argsz: 24 })));
    return [short, inStopCopy, unknown];
  }));
  declaredCase(t, 'migration: PRE_COPY read past the initial data', { mtty: { ret: 0 }, vgpu: { errno: 'ENOMSG' } },
    'the uAPI asks ENOMSG at pre-copy\'s temporary end of stream; mtty returns 0 there', () => withDevice(t, (d) => {
      const fd = d.go(S.VFIO_DEVICE_STATE_PRE_COPY)!;
      fd.drain(4096);
      return attempt(() => fd.read(new Uint8Array(64)));
    }));
  parityCase(t, 'migration: a data fd after its session ended (PRE_COPY -> RUNNING) reads ENODEV', fails('ENODEV'), () => withDevice(t, (d) => {
    const fd = d.go(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    d.go(S.VFIO_DEVICE_STATE_RUNNING);
    return attempt(() => fd.read(new Uint8Array(64)));
  }));
  parityCase(t, 'migration: reset in STOP_COPY: RUNNING again, the data fd reads ENODEV', { state: 'RUNNING', read: fails('ENODEV') }, () => withDevice(t, (d) => {
    d.go(S.VFIO_DEVICE_STATE_STOP);
    const fd = d.go(S.VFIO_DEVICE_STATE_STOP_COPY)!;
    d.reset();
    return { state: d.stateName(), read: attempt(() => fd.read(new Uint8Array(64))) };
  }));

  // ---- resuming ----
  /** A stream saved from a fresh device of the same type. */
  const savedStream = (): Uint8Array => withDevice(t, (d) => {
    d.go(S.VFIO_DEVICE_STATE_STOP);
    return d.go(S.VFIO_DEVICE_STATE_STOP_COPY)!.drain();
  });
  parityCase(t, 'migration: a whole stream resumes: STOP then RUNNING', [ok(), 'STOP', 'RUNNING'], () => {
    const stream = savedStream();
    return withDevice(t, (d) => {
      d.go(S.VFIO_DEVICE_STATE_STOP);
      d.go(S.VFIO_DEVICE_STATE_RESUMING)!.writeAll(stream);
      const r = d.set(S.VFIO_DEVICE_STATE_STOP);
      d.go(S.VFIO_DEVICE_STATE_RUNNING);
      return [r.out, r.state, d.stateName()];
    });
  });
  parityCase(t, 'migration: a truncated stream: RESUMING -> STOP is EINVAL, the device stays RESUMING, reset recovers', [fails('EINVAL'), 'RESUMING', 'RUNNING'], () => {
    const stream = savedStream();
    return withDevice(t, (d) => {
      d.go(S.VFIO_DEVICE_STATE_STOP);
      d.go(S.VFIO_DEVICE_STATE_RESUMING)!.writeAll(stream.subarray(0, Math.floor(stream.byteLength / 2)));
      const r = d.set(S.VFIO_DEVICE_STATE_STOP);
      d.reset();
      return [r.out, r.state, d.stateName()];
    });
  });
  declaredCase(t, 'migration: garbage written to a resuming fd', { mtty: fails('EFAULT'), vgpu: fails('EINVAL') },
    'both refuse a bad header at the write that completes it; mtty answers EFAULT, a vGPU EINVAL with the reason', () => withDevice(t, (d) => {
      d.go(S.VFIO_DEVICE_STATE_STOP);
      const fd = d.go(S.VFIO_DEVICE_STATE_RESUMING)!;
      return attempt(() => d.sys.write!(fd.fd, new Uint8Array(40).fill(0x41)));
    }));
  parityCase(t, 'migration: 1 MiB written to a resuming fd is ENOMEM', fails('ENOMEM'), () => withDevice(t, (d) => {
    d.go(S.VFIO_DEVICE_STATE_STOP);
    const fd = d.go(S.VFIO_DEVICE_STATE_RESUMING)!;
    return attempt(() => d.sys.write!(fd.fd, new Uint8Array(1 << 20)));
  }));

  // ---- DMA logging: the core's checks ----
  const control = (d: Dev, ranges: { iova: bigint; length: bigint }[], pageSize: bigint, num = ranges.length): Outcome => {
    const mem = d.sys.allocate(Math.max(4096, ranges.length * 16));
    try {
      const bytes = new Uint8Array(mem.buffer);
      ranges.forEach((r, i) => vfio_device_feature_dma_logging_range.write(bytes, r, i * 16));
      return d.feature(SET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        vfio_device_feature_dma_logging_control.encode({ page_size: pageSize, num_ranges: num, ranges: mem.address })).out;
    } finally {
      d.sys.munmap(mem);
    }
  };
  const report = (d: Dev, iova: bigint, length: bigint, pageSize: bigint): Outcome => {
    const mem = d.sys.allocate(4096);
    try {
      return d.feature(GET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
        vfio_device_feature_dma_logging_report.encode({ iova, length, page_size: pageSize, bitmap: mem.address })).out;
    } finally {
      d.sys.munmap(mem);
    }
  };
  const MB = 1n << 20n;
  parityCase(t, 'migration: DMA_LOGGING_START: no ranges EINVAL, misaligned EINVAL, overlapping EINVAL, wrapping EOVERFLOW, too many E2BIG',
    [fails('EINVAL'), fails('EINVAL'), fails('EINVAL'), fails('EOVERFLOW'), fails('E2BIG')], () => withDevice(t, (d) => [
      control(d, [], 4096n),
      control(d, [{ iova: 0x1000_0800n, length: MB }], 4096n),
      control(d, [{ iova: 0x1000_0000n, length: MB }, { iova: 0x1008_0000n, length: MB }], 4096n),
      control(d, [{ iova: 0xffff_ffff_ffff_f000n, length: 0x2000n }], 4096n),
      control(d, [{ iova: 0n, length: 4096n }], 4096n, 257),
    ]));
  // Debian's 6.12 is built without iova_bitmap (CONFIG_IOMMUFD_DRIVER): a REPORT that passes
  // the core's checks ends in iova_bitmap_for_each's stub, EOPNOTSUPP, whatever the device.
  parityCase(t, 'migration: DMA_LOGGING_START of two ranges, REPORT (EOPNOTSUPP without iova_bitmap), STOP', [ok(), fails('EOPNOTSUPP'), ok()], () => withDevice(t, (d) => [
    control(d, [{ iova: 0x1000_0000n, length: MB }, { iova: 0x2000_0000n, length: MB }], 4096n),
    report(d, 0x1000_0000n, MB, 4096n),
    d.feature(SET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP).out,
  ]));
  parityCase(t, 'migration: DMA_LOGGING_REPORT: page size 1000 EINVAL, 2 KiB EINVAL, wrapping EOVERFLOW', [fails('EINVAL'), fails('EINVAL'), fails('EOVERFLOW')], () => withDevice(t, (d) => {
    control(d, [{ iova: 0x1000_0000n, length: MB }], 4096n);
    return [report(d, 0x1000_0000n, MB, 1000n), report(d, 0x1000_0000n, MB, 2048n), report(d, 0xffff_ffff_ffff_f000n, 0x2000n, 4096n)];
  }));
  parityCase(t, 'migration: DMA_LOGGING_STOP with GET is EINVAL, PROBE|SET 0', [fails('EINVAL'), ok()], () => withDevice(t, (d) => [
    d.feature(GET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP).out, d.feature(PROBE | SET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP).out]));
  parityCase(t, 'migration: DMA_LOGGING_REPORT without START (EOPNOTSUPP before the device is asked)', fails('EOPNOTSUPP'),
    () => withDevice(t, (d) => report(d, 0x1000_0000n, MB, 4096n)));
  declaredCase(t, 'migration: a second DMA_LOGGING_START', { mtty: ok(), vgpu: fails('EINVAL') },
    'the uAPI allows one START until STOP; mtty\'s no-op log_start accepts another', () => withDevice(t, (d) => {
      control(d, [{ iova: 0x1000_0000n, length: MB }], 4096n);
      return control(d, [{ iova: 0x3000_0000n, length: MB }], 4096n);
    }));
  declaredCase(t, 'migration: the state after close and reopen', { mtty: 'STOP', vgpu: 'RUNNING' },
    'mtty keeps its migration state across close (close_device only disables its files); a vGPU starts RUNNING at every open as it starts from power-on state', () => {
      const { handle, done } = t.open();
      try {
        const m = new DeviceMigration(t.sys, handle.device.fd);
        m.setState(S.VFIO_DEVICE_STATE_STOP);
        handle.device.close();
        const again = handle.group.openDevice(handle.device.name);
        try {
          return migStateNames[new DeviceMigration(t.sys, again.fd).state()]!;
        } finally {
          again.close();
        }
      } finally {
        done();
      }
    });
}
