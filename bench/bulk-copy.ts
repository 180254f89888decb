// (c) Bulk copy through a mapped region: 1 MiB in and out of an mmap of the mock edu's
// BAR0 with typed arrays, against a plain Buffer copy of the same size in the same run.
import { pathToFileURL } from 'node:url';
import { openSys } from '../src/sys/index.js';
import { createEduDevice } from '../src/sys/mock/devices/edu.js';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';
import { bestNsPerCall, report, title } from './report.js';

const SIZE = 1 << 20;
const COPIES = 200;
const RUNS = 5;

export async function run(): Promise<void> {
  const sys = openSys({ kind: 'mock', mock: { devices: [createEduDevice('0000:00:04.0')] } });
  const handle = openPciDevice(sys, '0000:00:04.0');
  try {
    const bar0 = handle.device.bar(0);
    handle.device.config.enable(pciCommand.MEMORY); // on a real device a mapping SIGBUSes without it
    const mapping = bar0.mmap();
    if (mapping.length !== SIZE) throw new Error(`edu BAR0 mapping is ${mapping.length} bytes, expected ${SIZE}`);
    const bytes = mapping.bytes;
    const source = Buffer.alloc(SIZE);
    // Leave the register page zero: stores through the mapping become edu register writes.
    for (let i = 4096; i < SIZE; i++) source[i] = i & 0xff;
    const sink = Buffer.alloc(SIZE);

    const plain = bestNsPerCall(COPIES, RUNS, (n) => { for (let i = 0; i < n; i++) source.copy(sink); });
    const into = bestNsPerCall(COPIES, RUNS, (n) => { for (let i = 0; i < n; i++) bytes.set(source); });
    const outOf = bestNsPerCall(COPIES, RUNS, (n) => { for (let i = 0; i < n; i++) sink.set(bytes); });
    if (!sink.subarray(4096).equals(source.subarray(4096))) throw new Error('bytes read back from the mapping differ');

    const mbPerSecond = (ns: number): number => (SIZE / ns) * 1e3; // 10^6 bytes per second
    title('bulk-copy: 1 MiB through an mmap of the mock edu BAR0');
    report('Buffer copy (baseline)', mbPerSecond(plain), 'MB/s');
    report('copy into mmapped BAR0', mbPerSecond(into), 'MB/s', 'Buffer copy', mbPerSecond(plain));
    report('copy out of mmapped BAR0', mbPerSecond(outOf), 'MB/s', 'Buffer copy', mbPerSecond(plain));
  } finally {
    handle.close();
  }
}

// Run on its own: node dist/bench/bulk-copy.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
