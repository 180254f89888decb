// vfio-user: a 4-byte REGION_READ round trip and a DMA_MAP + DMA_UNMAP pair, our client
// (this process) against `vgpu serve` (another process, the simgpu vGPU on the mock
// kernel), beside a C program doing the same messages over the same kind of socket
// between two processes with nothing but the protocol's own work on each side
// (bench/vfio-user-baseline.c: the floor any implementation pays). The anchor from
// outside this run is libvfio-user's C client and server on a machine like this one:
// 16-22 µs per 4-byte region read, 34-48 µs per map+unmap pair.
//
// What the mock stands in for: nothing on the measured path. The socket, the fds passed
// with SCM_RIGHTS and the server's mmap of the client's memfd are real; the vGPU's
// register read is the core's region dispatch to the simgpu vendor driver. Rounds
// alternate C and ours; each figure is min / median / max over the rounds.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pciCommand } from '../src/vfio/index.js';
import { openVfioUserDevice } from '../src/vfio/user/index.js';
import { note, reportSpread, spread, title, type Spread } from './report.js';

const ITERATIONS = 5_000;
const ROUNDS = 7;
const MAP_BYTES = 1 << 20;
const source = fileURLToPath(new URL('../../bench/vfio-user-baseline.c', import.meta.url));
const mainJs = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** µs per operation from ns per operation. */
function micros(values: readonly number[]): Spread {
  return spread(values.map((ns) => ns / 1000));
}

/** `vgpu serve` on the mock kernel with one simgpu vGPU; resolves with its vfio-user socket. */
async function startServer(dir: string): Promise<{ socket: string; stop(): void }> {
  const env = { ...process.env, VGPU_SYS: 'mock', VGPU_SOCKET: join(dir, 'vgpu.sock'), VGPU_DEFINITIONS_ROOT: join(dir, 'defs') };
  const runDir = join(dir, 'run');
  const child = spawn(process.execPath, [mainJs, 'serve', '--run-dir', runDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
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
  const started = spawnSync(process.execPath, [mainJs, 'start', '-p', 'simgpu0', '-t', 'simgpu-1Q'], { env, encoding: 'utf8' });
  if (started.status !== 0) {
    child.kill('SIGKILL');
    throw new Error(`vgpu start failed: ${started.stderr.trim()}`);
  }
  const socket = join(runDir, `${started.stdout.trim()}.sock`);
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`no vfio-user socket at ${socket}`);
  }
  return { socket, stop: () => child.kill('SIGTERM') };
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-vu-'));
  const binary = join(dir, 'vfio-user-baseline');
  let server: { socket: string; stop(): void } | undefined;
  try {
    execFileSync('cc', ['-O2', '-o', binary, source], { stdio: ['ignore', 'ignore', 'inherit'] });
    server = await startServer(dir);
    const handle = openVfioUserDevice(server.socket);
    try {
      handle.device.config.enable(pciCommand.MEMORY);
      const bar0 = handle.device.bar(0);
      const memory = handle.sys.allocate(MAP_BYTES);
      const c = { read: [] as number[], pair: [] as number[] };
      const ours = { read: [] as number[], pair: [] as number[] };
      for (let round = 0; round <= ROUNDS; round++) {
        const [cRead, cPair] = execFileSync(binary, [String(ITERATIONS)], { encoding: 'utf8' }).trim().split(' ').map(Number);
        let start = process.hrtime.bigint();
        for (let i = 0; i < ITERATIONS; i++) bar0.read32(0);
        const read = Number(process.hrtime.bigint() - start) / ITERATIONS;
        start = process.hrtime.bigint();
        for (let i = 0; i < ITERATIONS; i++) handle.dma.map({ iova: 0x100000n, memory }).unmap();
        const pair = Number(process.hrtime.bigint() - start) / ITERATIONS;
        if (round === 0) continue; // warm-up: the JIT and the server's first mappings
        c.read.push(cRead!);
        c.pair.push(cPair!);
        ours.read.push(read);
        ours.pair.push(pair);
      }
      title(`vfio-user: two processes, ${ROUNDS} alternating rounds of ${ITERATIONS} (median, ratio of medians, min..max; anchor: libvfio-user 16-22 µs read, 34-48 µs pair)`);
      reportSpread('C floor: 4-byte REGION_READ', micros(c.read), 'µs');
      reportSpread('ours: Region.read32 -> vgpu serve', micros(ours.read), 'µs', 'C', micros(c.read));
      reportSpread('C floor: DMA_MAP+DMA_UNMAP (1 MiB memfd)', micros(c.pair), 'µs');
      reportSpread('ours: dma.map().unmap() -> vgpu serve', micros(ours.pair), 'µs', 'C', micros(c.pair));
      note('nothing mock on this path: a real socket between two processes, fds passed with SCM_RIGHTS, a real mmap');
      handle.sys.munmap(memory);
    } finally {
      handle.close();
    }
  } finally {
    server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run on its own: node dist/bench/vfio-user.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
