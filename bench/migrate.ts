// Live migration of a simgpu vGPU (simgpu-1Q, a workload of 64 KiB FILL+COPY+BLIT+FENCE
// steps over 16 framebuffer slots, see src/vendors/simgpu/workload.ts), idle and busy:
// the downtime (the source's STOP_COPY to RUNNING on the target, the guest memory copy
// included) and the bytes the device state took (pre-copy, stop-copy). Over vfio-user:
// this process is the VMM between two `vgpu serve` daemons (two processes, the moves
// alternating A->B and B->A). The like-for-like baseline is the same move, the same
// workload, with both vGPUs on the in-process mock kernel (kernel fds, no socket, no
// other process): the difference is what the protocol and the second process cost.
// Rounds alternate the four cases; each figure is min / median / max over the rounds.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMockSys } from '../src/sys/index.js';
import { liveMigrate, type LiveMigrationReport } from '../src/vendors/simgpu/live-migrate.js';
import { SimGpuBoard, simgpuDriver } from '../src/vendors/simgpu/index.js';
import { openDevice, openVfioUserDevice } from '../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../src/vgpu/index.js';
import { report, title } from './report.js';

const ROUNDS = 7;
const TYPE = 'simgpu-1Q';
const UUID = '3f1d5e00-0000-4000-8000-00000000be9c';
const mainJs = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Spread { min: number; median: number; max: number }

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!, max: sorted[sorted.length - 1]! };
}

/** `vgpu serve` on the mock kernel with the simgpu vGPU UUID started; its vfio-user socket. */
async function startDaemon(dir: string): Promise<{ socket: string; child: ChildProcess }> {
  const env = { ...process.env, VGPU_SYS: 'mock', VGPU_SOCKET: join(dir, 'vgpu.sock'), VGPU_DEFINITIONS_ROOT: join(dir, 'defs') };
  const child = spawn(process.execPath, [mainJs, 'serve', '--run-dir', dir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const deadline = Date.now() + 15_000;
  while (!/^vgpu serve: ready/m.test(stderr)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`vgpu serve did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const started = spawnSync(process.execPath, [mainJs, 'start', '-u', UUID, '-p', 'simgpu0', '-t', TYPE], { env, encoding: 'utf8' });
  if (started.status !== 0) {
    child.kill('SIGKILL');
    throw new Error(`vgpu start failed: ${started.stderr.trim()}`);
  }
  return { socket: join(dir, `${UUID}.sock`), child };
}

function check(r: LiveMigrationReport): LiveMigrationReport {
  if (r.failures.length) throw new Error(`the move lost the user's work: ${r.failures.join('; ')}`);
  return r;
}

export async function run(): Promise<void> {
  const dirs = [mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-mig-a-')), mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-mig-b-'))];
  const daemons: ChildProcess[] = [];
  // The baseline: both vGPUs on one in-process mock kernel.
  const sys = createMockSys({ devices: [] });
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('simgpu', new SimGpuBoard());
  const mockA = registry.create('simgpu0', TYPE).uuid;
  const mockB = registry.create('simgpu0', TYPE).uuid;
  try {
    const sockets: string[] = [];
    for (const dir of dirs) {
      const d = await startDaemon(dir);
      daemons.push(d.child);
      sockets.push(d.socket);
    }
    const results: Record<string, LiveMigrationReport[]> = {};
    const options = { precopyRounds: 4, roundDelayMs: 10, stepsBefore: 8, stepsAfter: 4 };
    let flip = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const busy of [false, true]) {
        const [from, to] = flip++ % 2 === 0 ? [sockets[0]!, sockets[1]!] : [sockets[1]!, sockets[0]!];
        const user = check(await liveMigrate(() => openVfioUserDevice(from), () => openVfioUserDevice(to), { ...options, busy }));
        (results[`vfio-user ${busy ? 'busy' : 'idle'}`] ??= []).push(user);
        const mock = check(await liveMigrate(() => openDevice(sys, mockA), () => openDevice(sys, mockB), { ...options, busy }));
        (results[`mock ${busy ? 'busy' : 'idle'}`] ??= []).push(mock);
      }
    }
    title(`live migration of a ${TYPE} vGPU with its workload (${ROUNDS} rounds each; vfio-user between two vgpu serve, baseline: the in-process mock kernel)`);
    for (const load of ['idle', 'busy']) {
      const user = results[`vfio-user ${load}`]!;
      const mock = results[`mock ${load}`]!;
      const down = spread(user.map((r) => r.downtimeMs));
      const downMock = spread(mock.map((r) => r.downtimeMs));
      report(`${load}: downtime (min ${down.min.toFixed(1)}, max ${down.max.toFixed(1)})`, down.median, 'ms median', 'mock kernel', downMock.median);
      report(`${load}: downtime, mock kernel (min ${downMock.min.toFixed(1)}, max ${downMock.max.toFixed(1)})`, downMock.median, 'ms median');
      const pre = spread(user.map((r) => r.precopyBytes / 1024));
      const stop = spread(user.map((r) => r.stopCopyBytes / 1024));
      report(`${load}: pre-copy bytes (min ${pre.min.toFixed(0)}, max ${pre.max.toFixed(0)})`, pre.median, 'KiB median');
      report(`${load}: stop-copy bytes (min ${stop.min.toFixed(0)}, max ${stop.max.toFixed(0)})`, stop.median, 'KiB median');
      const during = spread(user.map((r) => r.stepsDuring));
      report(`${load}: workload steps during pre-copy (min ${during.min}, max ${during.max})`, during.median, 'steps median');
      report(`${load}: guest memory copied at the stop`, user[0]!.guestMemoryBytes / 1024, 'KiB');
    }
  } finally {
    for (const d of daemons) d.kill('SIGTERM');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
