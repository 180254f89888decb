// (c) Bulk copy through a mapped region: 1 MiB into and out of an mmap of the mock edu's
// BAR0 with TypedArray.set, against the same TypedArray.set between two plain buffers
// (same method, same size, same direction), in alternating rounds. On the mock kernel
// the "BAR" mapping is shared memory (a memfd the simulated edu also maps): the figure
// is a copy through a mapping, not an access to device memory.
import { pathToFileURL } from 'node:url';
import { openSys } from '../src/sys/index.js';
import { createEduDevice } from '../src/sys/mock/devices/edu.js';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';
import { alternate, note, nsPerCall, reportSpread, spread, title } from './report.js';

const SIZE = 1 << 20;
const COPIES = 200;
const ROUNDS = 9;

export async function run(): Promise<void> {
  const sys = openSys({ kind: 'mock', mock: { devices: [createEduDevice('0000:00:04.0')] } });
  const handle = openPciDevice(sys, '0000:00:04.0');
  try {
    const bar0 = handle.device.bar(0);
    handle.device.config.enable(pciCommand.MEMORY); // on a real device a mapping SIGBUSes without it
    const mapping = bar0.mmap();
    if (mapping.length !== SIZE) throw new Error(`edu BAR0 mapping is ${mapping.length} bytes, expected ${SIZE}`);
    const bytes = mapping.bytes;
    const source = new Uint8Array(SIZE);
    // Leave the register page zero: stores through the mapping become edu register writes.
    for (let i = 4096; i < SIZE; i++) source[i] = i & 0xff;
    const sink = new Uint8Array(SIZE);
    const plain = new Uint8Array(SIZE);

    const ns = alternate(ROUNDS, {
      plainIn: () => nsPerCall(COPIES, (n) => { for (let i = 0; i < n; i++) plain.set(source); }),
      into: () => nsPerCall(COPIES, (n) => { for (let i = 0; i < n; i++) bytes.set(source); }),
      plainOut: () => nsPerCall(COPIES, (n) => { for (let i = 0; i < n; i++) sink.set(plain); }),
      outOf: () => nsPerCall(COPIES, (n) => { for (let i = 0; i < n; i++) sink.set(bytes); }),
    });
    if (!Buffer.from(sink.subarray(4096)).equals(Buffer.from(source.subarray(4096)))) throw new Error('bytes read back from the mapping differ');

    const rate = (values: number[]) => spread(values.map((v) => (SIZE / v) * 1e3)); // 10^6 bytes per second
    title(`bulk-copy: 1 MiB through an mmap of the mock edu's BAR0, ${ROUNDS} alternating rounds (median, ratio of medians, min..max)`);
    reportSpread('set() into a plain buffer (baseline)', rate(ns.plainIn), 'MB/s');
    reportSpread('set() into the BAR0 mapping', rate(ns.into), 'MB/s', 'plain', rate(ns.plainIn));
    reportSpread('set() out of a plain buffer (baseline)', rate(ns.plainOut), 'MB/s');
    reportSpread('set() out of the BAR0 mapping', rate(ns.outOf), 'MB/s', 'plain', rate(ns.plainOut));
    note('mock kernel: the BAR0 mapping is shared memory standing in for a BAR (device memory over PCIe is far slower, uncached)');
  } finally {
    handle.close();
  }
}

// Run on its own: node dist/bench/bulk-copy.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
