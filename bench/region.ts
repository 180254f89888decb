// (b) Trapped region accesses per second on the mock kernel: edu BAR0 register
// read32/write32 through the client API (Region), against the raw fd layer's
// pread/pwrite of the same 4 bytes on the same device fd in the same run.
import { openSys } from '../src/sys/index.js';
import { pathToFileURL } from 'node:url';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';

const OPS = 100_000;
const RUNS = 5;
const LIVENESS = 0x04;

/** Best (highest) operations per second of RUNS timed runs of `ops` calls. */
function opsPerSecond(body: (i: number) => void): number {
  for (let i = 0; i < OPS / 10; i++) body(i); // warm up
  let best = 0;
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) body(i);
    const ns = Number(process.hrtime.bigint() - start);
    best = Math.max(best, (OPS * 1e9) / ns);
  }
  return best;
}

function line(name: string, value: number, baselineName: string, baseline: number): void {
  const ratio = value / baseline;
  console.log(`${name}: ${Math.round(value).toLocaleString('en')} ops/s (${ratio.toFixed(2)}x ${baselineName})`);
}

export async function run(): Promise<void> {
  const sys = openSys({ kind: 'mock' });
  const handle = openPciDevice(sys, '0000:00:04.0');
  try {
    const bar0 = handle.device.bar(0);
    handle.device.config.enable(pciCommand.MEMORY); // BAR accesses are EIO with memory space off
    const fd = handle.device.fd;
    const at = bar0.offset + BigInt(LIVENESS);
    const raw = new Uint8Array(4);
    const rawView = new DataView(raw.buffer);

    const rawRead = opsPerSecond(() => { sys.pread(fd, raw, at); });
    const rawWrite = opsPerSecond((i) => { rawView.setUint32(0, i, true); sys.pwrite(fd, raw, at); });
    const apiRead = opsPerSecond(() => { bar0.read32(LIVENESS); });
    const apiWrite = opsPerSecond((i) => { bar0.write32(LIVENESS, i); });

    line('region read32 (sys.pread, baseline)', rawRead, 'itself', rawRead);
    line('region read32 (Region.read32)', apiRead, 'sys.pread', rawRead);
    line('region write32 (sys.pwrite, baseline)', rawWrite, 'itself', rawWrite);
    line('region write32 (Region.write32)', apiWrite, 'sys.pwrite', rawWrite);
  } finally {
    handle.close();
  }
}

// Run on its own: node dist/bench/region.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
