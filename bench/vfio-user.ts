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
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pciCommand } from '../src/vfio/index.js';
import { openVfioUserDevice } from '../src/vfio/user/index.js';
import { note, reportSpread, spread, title, type Spread } from './report.js';
import { serveSimgpu, type ServedVgpu } from './serve.js';

const ITERATIONS = 5_000;
const ROUNDS = 7;
const MAP_BYTES = 1 << 20;
const source = fileURLToPath(new URL('../../bench/vfio-user-baseline.c', import.meta.url));

/** µs per operation from ns per operation. */
function micros(values: readonly number[]): Spread {
  return spread(values.map((ns) => ns / 1000));
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-vu-'));
  const binary = join(dir, 'vfio-user-baseline');
  let server: ServedVgpu | undefined;
  try {
    execFileSync('cc', ['-O2', '-o', binary, source], { stdio: ['ignore', 'ignore', 'inherit'] });
    server = await serveSimgpu(dir, 'simgpu-1Q');
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
