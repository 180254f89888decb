// The host side of the vm phases: `vgpu serve` on the mock kernel with its simulated
// parents, a display-xga and a simgpu-0Q vGPU started on it (each served on
// <run dir>/<uuid>.sock), screenshots through the daemon, and a stop that always ends
// the daemon (SIGTERM, then SIGKILL) and keeps its log.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killDaemon, runVgpu, startDaemon, type DaemonProcess } from '../../cli/cli-process.js';

export const displayUuid = 'd15b1a70-0000-4000-8000-00000000b0c5';
export const simgpuUuid = '51a69a00-0000-4000-8000-000000005347';

export interface VmServer {
  runDir: string;
  socket: string;
  socketOf(uuid: string): string;
  /** `vgpu screenshot UUID FILE` through the daemon; the CLI's output or its error. */
  screenshot(uuid: string, file: string): Promise<{ ok: boolean; output: string }>;
  /** Stops the daemon and writes its log; idempotent. */
  stop(logPath: string): Promise<void>;
}

export async function startVmServer(runDir: string): Promise<VmServer> {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const socket = join(runDir, 'vgpu.sock');
  const daemon: DaemonProcess = await startDaemon(socket, join(runDir, 'defs'));
  const guard = (): void => killDaemon(daemon);
  process.once('exit', guard);
  let stopped = false;
  const stop = async (logPath: string): Promise<void> => {
    if (stopped) return;
    stopped = true;
    daemon.child.kill('SIGTERM');
    const ended = await Promise.race([daemon.exited, new Promise((resolve) => setTimeout(resolve, 5000, 'late'))]);
    if (ended === 'late') killDaemon(daemon);
    process.removeListener('exit', guard);
    writeFileSync(logPath, daemon.stderr());
    rmSync(runDir, { recursive: true, force: true });
  };
  try {
    for (const [uuid, parent, type] of [[displayUuid, 'display0', 'display-xga'], [simgpuUuid, 'simgpu0', 'simgpu-0Q']] as const) {
      const r = await runVgpu(['--socket', socket, 'start', '-u', uuid, '-p', parent, '-t', type]);
      if (r.code !== 0) throw new Error(`vgpu start ${type}: ${r.stderr.trim()}`);
    }
  } catch (err) {
    await stop(join(runDir, '..', 'vm-server-failed.log'));
    throw err;
  }
  return {
    runDir,
    socket,
    socketOf: (uuid) => join(runDir, `${uuid}.sock`),
    async screenshot(uuid, file) {
      const r = await runVgpu(['--socket', socket, 'screenshot', uuid, file], { timeoutMs: 30_000 });
      return { ok: r.code === 0, output: (r.code === 0 ? r.stdout : r.stderr).trim() };
    },
    stop,
  };
}
