// Live migration of a simgpu vGPU (simgpu-1Q, a workload of 64 KiB FILL+COPY+BLIT+FENCE
// steps over 16 framebuffer slots, see src/vendors/simgpu/workload.ts), idle and busy:
// the downtime (the source's STOP_COPY to RUNNING on the target, the guest memory copy
// included) and the bytes the device state took (pre-copy, stop-copy). Over vfio-user:
// this process is the VMM between two `vgpu serve` daemons (two processes, the moves
// alternating A->B and B->A). The like-for-like baseline is the same move, the same
// workload, with both vGPUs on the in-process mock kernel (kernel fds, no socket, no
// other process): the difference is what the protocol and the second process cost.
// Rounds alternate the four cases; each figure is min / median / max over the rounds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockSys } from '../src/sys/index.js';
import { liveMigrate, type LiveMigrationReport } from '../src/vendors/simgpu/live-migrate.js';
import { SimGpuBoard, simgpuDriver } from '../src/vendors/simgpu/index.js';
import { openDevice, openVfioUserDevice } from '../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../src/vgpu/index.js';
import { report, spread, title } from './report.js';
import { serveSimgpu, type ServedVgpu } from './serve.js';

const ROUNDS = 7;
const TYPE = 'simgpu-1Q';
const UUID = '3f1d5e00-0000-4000-8000-00000000be9c';

function check(r: LiveMigrationReport): LiveMigrationReport {
  if (r.failures.length) throw new Error(`the move lost the user's work: ${r.failures.join('; ')}`);
  return r;
}

export async function run(): Promise<void> {
  const dirs = [mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-mig-a-')), mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-mig-b-'))];
  const daemons: ServedVgpu[] = [];
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
      const d = await serveSimgpu(dir, TYPE, UUID);
      daemons.push(d);
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
    for (const d of daemons) d.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
