// The soak: cycles of create / open / DMA map / simgpu batch / unmap / close / remove,
// with resources sampled as they go. Two paths:
// - daemon: a daemon in this process (its host on the mock kernel), driven over its
//   socket by DaemonClient (start, stop); the vGPU opened through the mock kernel's VFIO
//   fds by the same guest driver a VM would use. Samples this process's fds and RSS
//   and the mock kernel's accounting (its fds, locked pages, mappings, live vGPUs).
// - vfio-user: `vgpu serve` in its own process; start and stop over its socket, the vGPU
//   opened over its vfio-user socket by our client. Samples both processes' fds and RSS.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve, type Daemon } from '../../src/host/daemon.js';
import { createHost, type Host } from '../../src/host/host.js';
import { createMockSys } from '../../src/sys/mock.js';
import { createNativeSys } from '../../src/sys/native.js';
import type { SysLayer } from '../../src/sys/types.js';
import { SimGpuGuest } from '../../src/vendors/simgpu/guest.js';
import { SimGpuOp } from '../../src/vendors/simgpu/registers.js';

export type SoakPath = 'daemon' | 'vfio-user';

export interface Sample {
  cycle: number;
  ms: number;
  fds: number;
  rssKiB: number;
  /** The serving process (vfio-user path): its fds and RSS. */
  serverFds?: number;
  serverRssKiB?: number;
  /** The mock kernel's books (daemon path). */
  mockFds?: number;
  lockedPages?: number;
  mapped?: number;
  retained?: number;
  liveVgpus?: number;
}

export interface SoakOptions {
  path: SoakPath;
  cycles: number;
  /** Sample every this many cycles (and after the first and the last). */
  every?: number;
  onSample?: (s: Sample) => void;
}

const PAGE = 4096;
const SRC_IOVA = 0x100000n;
const DST_IOVA = 0x200000n;
const FENCE_IOVA = 0x300000n;

function processFds(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssKiB(pid: number | 'self' = 'self'): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** One cycle's work on an opened guest: map, a batch that checks its own result, unmap. */
async function batch(guest: SimGpuGuest, cycle: number): Promise<void> {
  const src = guest.allocate(2 * PAGE, SRC_IOVA);
  const dst = guest.allocate(2 * PAGE, DST_IOVA);
  const fence = guest.allocate(PAGE, FENCE_IOVA);
  try {
    const pattern = BigInt((cycle * 2654435761) >>> 0);
    const result = await guest.submit([
      { op: SimGpuOp.FILL, length: PAGE, dst: src.iova, src: pattern },
      { op: SimGpuOp.COPY, length: PAGE, dst: dst.iova, src: src.iova },
      { op: SimGpuOp.FENCE, length: 8, dst: fence.iova, src: BigInt(cycle) },
    ]);
    if (result.error || result.completed !== 3 || result.fence !== (cycle >>> 0)) throw new Error(`cycle ${cycle}: the batch ended ${JSON.stringify(result)}`);
    const word = new DataView(dst.bytes.buffer, dst.bytes.byteOffset).getUint32(PAGE - 4, true);
    if (word !== Number(pattern)) throw new Error(`cycle ${cycle}: copied 0x${word.toString(16)}, filled 0x${pattern.toString(16)}`);
  } finally {
    src.release();
    dst.release();
    fence.release();
  }
}

interface Rig {
  client: DaemonClient;
  /** The name the guest opens for a live vGPU. */
  nameOf(uuid: string): Promise<string>;
  guestSys: SysLayer;
  sample(cycle: number, ms: number): Sample;
  close(): Promise<void>;
}

async function daemonRig(dir: string): Promise<Rig> {
  const sys = createMockSys({ devices: [] });
  const host: Host = createHost({ sys, definitionsRoot: join(dir, 'defs'), simulated: true, report: () => undefined });
  const socketPath = join(dir, 'vgpu.sock');
  const daemon: Daemon = await serve(host, { socketPath, handleSignals: false, log: () => undefined, definitionsRoot: join(dir, 'defs') });
  const client = await DaemonClient.connect(socketPath);
  return {
    client,
    guestSys: sys,
    nameOf: (uuid) => Promise.resolve(uuid),
    sample(cycle, ms) {
      const k = sys.kernel;
      return {
        cycle, ms, fds: processFds(), rssKiB: rssKiB(), mockFds: k.fds.size, lockedPages: k.locked.lockedPages,
        mapped: k.mm.mappedCount, retained: k.mm.retainedCount, liveVgpus: host.registry.list().length,
      };
    },
    async close() {
      await client.close();
      await daemon.close();
    },
  };
}

async function vfioUserRig(dir: string): Promise<Rig> {
  const main = fileURLToPath(new URL('../../src/cli/vgpu.js', import.meta.url));
  const socketPath = join(dir, 'vgpu.sock');
  const child: ChildProcess = spawn(process.execPath, [main, 'serve', '--socket', socketPath, '--root', join(dir, 'defs'), '--run-dir', join(dir, 'run')], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VGPU_SYS: 'mock' },
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); if (stderr.includes('ready:')) resolve(); });
    child.once('exit', (code) => reject(new Error(`vgpu serve exited (${code}): ${stderr}`)));
  });
  const client = await DaemonClient.connect(socketPath);
  const pid = child.pid!;
  return {
    client,
    guestSys: createNativeSys(),
    async nameOf(uuid) {
      const [live] = await client.list({ uuid });
      if (!live?.vfioUser) throw new Error(`${uuid} has no vfio-user socket`);
      return live.vfioUser.socket;
    },
    sample: (cycle, ms) => ({ cycle, ms, fds: processFds(), rssKiB: rssKiB(), serverFds: processFds(pid), serverRssKiB: rssKiB(pid) }),
    async close() {
      await client.close();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

/** Runs the soak; returns its samples. Throws at the first cycle that fails. */
export async function soak(options: SoakOptions): Promise<Sample[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-soak-'));
  const rig = options.path === 'daemon' ? await daemonRig(dir) : await vfioUserRig(dir);
  const every = options.every ?? 500;
  const samples: Sample[] = [];
  const started = performance.now();
  const take = (cycle: number): void => {
    // With --expose-gc, this process's RSS is sampled after a full collection: growth, not garbage.
    (globalThis as { gc?: () => void }).gc?.();
    const s = rig.sample(cycle, Math.round(performance.now() - started));
    samples.push(s);
    options.onSample?.(s);
  };
  try {
    take(0);
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      const uuid = await rig.client.start({ parent: 'simgpu0', type: 'simgpu-0Q' });
      const guest = SimGpuGuest.open(rig.guestSys, await rig.nameOf(uuid));
      try {
        await batch(guest, cycle);
      } finally {
        guest.close();
      }
      await stopWhenReleased(rig.client, uuid);
      if (cycle === 1 || cycle % every === 0 || cycle === options.cycles) take(cycle);
    }
  } finally {
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return samples;
}

/** Stop, retried while the server is still letting the closed client go (EBUSY, a turn or two). */
async function stopWhenReleased(client: DaemonClient, uuid: string): Promise<void> {
  for (let tries = 0; ; tries++) {
    try {
      await client.stop(uuid);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EBUSY' || tries > 200) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** Growth of each sampled figure from the first sample at or after `warmup` to the last, and the spread after warm-up. */
export function growth(samples: readonly Sample[], warmup: number): Record<string, { atWarmup: number; last: number; min: number; max: number }> {
  const after = samples.filter((s) => s.cycle >= warmup);
  const out: Record<string, { atWarmup: number; last: number; min: number; max: number }> = {};
  if (after.length === 0) return out;
  for (const key of Object.keys(after[0]!) as (keyof Sample)[]) {
    if (key === 'cycle' || key === 'ms') continue;
    const values = after.map((s) => s[key] as number);
    out[key] = { atWarmup: values[0]!, last: values[values.length - 1]!, min: Math.min(...values), max: Math.max(...values) };
  }
  return out;
}
