// (c) Bulk copy through a mapped region: 1 MiB in and out of an mmap of the mock edu's
// BAR0 with typed arrays, against a plain Buffer copy of the same size in the same run.
import { openSys } from '../src/sys/index.js';
import { pathToFileURL } from 'node:url';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';

const SIZE = 1 << 20;
const COPIES = 200;
const RUNS = 5;

/** Best MB/s (10^6 bytes per second) of RUNS timed runs of COPIES copies of SIZE bytes. */
function megabytesPerSecond(copy: () => void): number {
  for (let i = 0; i < COPIES / 10; i++) copy(); // warm up
  let best = 0;
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < COPIES; i++) copy();
    const ns = Number(process.hrtime.bigint() - start);
    best = Math.max(best, (SIZE * COPIES * 1e3) / ns);
  }
  return best;
}

function line(name: string, value: number, baselineName: string, baseline: number): void {
  console.log(`${name}: ${value.toFixed(0)} MB/s (${(value / baseline).toFixed(2)}x ${baselineName})`);
}

export async function run(): Promise<void> {
  const sys = openSys({ kind: 'mock' });
  const handle = openPciDevice(sys, '0000:00:04.0');
  try {
    const bar0 = handle.device.bar(0);
    handle.device.config.enable(pciCommand.MEMORY); // on a real device a mapping SIGBUSes without it
    const mapping = bar0.mmap();
    if (mapping.length !== SIZE) throw new Error(`edu BAR0 mapping is ${mapping.length} bytes, expected ${SIZE}`);
    const source = Buffer.alloc(SIZE);
    // Leave the register page zero: stores through the mapping become edu register writes.
    for (let i = 4096; i < SIZE; i++) source[i] = i & 0xff;
    const sink = Buffer.alloc(SIZE);

    const plain = megabytesPerSecond(() => { source.copy(sink); });
    const into = megabytesPerSecond(() => { mapping.bytes.set(source); });
    const outOf = megabytesPerSecond(() => { sink.set(mapping.bytes); });

    line('1 MiB Buffer copy (baseline)', plain, 'itself', plain);
    line('1 MiB copy into mmapped BAR0', into, 'Buffer copy', plain);
    line('1 MiB copy out of mmapped BAR0', outOf, 'Buffer copy', plain);
    if (!sink.subarray(4096).equals(source.subarray(4096))) throw new Error('bytes read back from the mapping differ');
  } finally {
    handle.close();
  }
}

// Run on its own: node dist/bench/bulk-copy.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
