// Migration as a VMM drives it over two device fds (QEMU's hw/vfio/migration.c order):
// pre-copy while the source runs, stop-copy, then on the destination STOP -> RESUMING,
// the stream written, RESUMING -> STOP -> RUNNING. Returns the stream and its size.
import type { SysLayer } from '../../src/sys/types.js';
import { DeviceMigration } from '../../src/vfio/migration.js';
import { migStates as S } from '../../src/uapi/migration.js';

export interface MigrationRun {
  readonly stream: Uint8Array;
  readonly precopyBytes: number;
  readonly stopCopyBytes: number;
}

/** Saves the source's state (pre-copy first when asked): the whole stream. The source is left in STOP. */
export function save(sys: SysLayer, srcFd: number, options: { precopy?: boolean; duringPrecopy?: () => void } = {}): MigrationRun {
  const src = new DeviceMigration(sys, srcFd);
  if (options.precopy ?? true) {
    const data = src.setState(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    try {
      const initial = data.drain();
      options.duringPrecopy?.();
      const dirty = data.drain();
      src.setState(S.VFIO_DEVICE_STATE_STOP_COPY);
      const rest = data.drain();
      src.setState(S.VFIO_DEVICE_STATE_STOP);
      return { stream: concat([initial, dirty, rest]), precopyBytes: initial.byteLength + dirty.byteLength, stopCopyBytes: rest.byteLength };
    } finally {
      data.close();
    }
  }
  src.setState(S.VFIO_DEVICE_STATE_STOP);
  const data = src.setState(S.VFIO_DEVICE_STATE_STOP_COPY)!;
  try {
    const stream = data.drain();
    src.setState(S.VFIO_DEVICE_STATE_STOP);
    return { stream, precopyBytes: 0, stopCopyBytes: stream.byteLength };
  } finally {
    data.close();
  }
}

/** Loads a stream into the destination (written in `pieces` writes) and runs it. */
export function load(sys: SysLayer, dstFd: number, stream: Uint8Array, pieces = 3): void {
  const dst = new DeviceMigration(sys, dstFd);
  dst.setState(S.VFIO_DEVICE_STATE_STOP);
  const data = dst.setState(S.VFIO_DEVICE_STATE_RESUMING)!;
  try {
    const step = Math.max(1, Math.ceil(stream.byteLength / pieces));
    for (let at = 0; at < stream.byteLength; at += step) data.writeAll(stream.subarray(at, at + step));
    dst.setState(S.VFIO_DEVICE_STATE_STOP);
  } finally {
    data.close();
  }
  dst.setState(S.VFIO_DEVICE_STATE_RUNNING);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}
