// A `vgpu serve` child on the mock kernel with one simgpu vGPU started, for the benches
// that drive a vGPU over its vfio-user socket as a VMM would.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const vgpuJs = fileURLToPath(new URL('../src/cli/vgpu.js', import.meta.url));

export interface ServedVgpu {
  /** The vGPU's vfio-user socket. */
  readonly socket: string;
  stop(): void;
}

/** Starts `vgpu serve` with its files under `dir` and a vGPU of `type` (named `uuid` when given). */
export async function serveSimgpu(dir: string, type: string, uuid?: string): Promise<ServedVgpu> {
  const env = { ...process.env, VGPU_SYS: 'mock', VGPU_SOCKET: join(dir, 'vgpu.sock'), VGPU_DEFINITIONS_ROOT: join(dir, 'defs') };
  const runDir = join(dir, 'run');
  const child = spawn(process.execPath, [vgpuJs, 'serve', '--run-dir', runDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const deadline = Date.now() + 15_000;
  while (!/^vgpu serve: ready/m.test(stderr)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`vgpu serve did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const started = spawnSync(process.execPath, [vgpuJs, 'start', ...(uuid ? ['-u', uuid] : []), '-p', 'simgpu0', '-t', type], { env, encoding: 'utf8' });
  if (started.status !== 0) {
    child.kill('SIGKILL');
    throw new Error(`vgpu start failed: ${started.stderr.trim()}`);
  }
  const socket = join(runDir, `${uuid ?? started.stdout.trim()}.sock`);
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`no vfio-user socket at ${socket}`);
  }
  return { socket, stop: () => child.kill('SIGTERM') };
}
