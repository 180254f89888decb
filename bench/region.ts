// (b) Trapped region accesses per second on the mock kernel: edu BAR0 register
// read32/write32 through the client API (Region), against the raw fd layer's
// pread/pwrite of the same 4 bytes on the same device fd, in alternating rounds.
import { pathToFileURL } from 'node:url';
import { openSys } from '../src/sys/index.js';
import { createEduDevice } from '../src/sys/mock/devices/edu.js';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';
import { alternate, note, nsPerCall, reportSpread, spread, title } from './report.js';

const CALLS = 100_000;
const ROUNDS = 9;
const LIVENESS = 0x04;

export async function run(): Promise<void> {
  const sys = openSys({ kind: 'mock', mock: { devices: [createEduDevice('0000:00:04.0')] } });
  const handle = openPciDevice(sys, '0000:00:04.0');
  try {
    const bar0 = handle.device.bar(0);
    handle.device.config.enable(pciCommand.MEMORY); // BAR accesses are EIO with memory space off
    const fd = handle.device.fd;
    const at = bar0.offset + BigInt(LIVENESS);
    const raw = new Uint8Array(4);
    const rawView = new DataView(raw.buffer);

    const ns = alternate(ROUNDS, {
      rawRead: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) sys.pread(fd, raw, at); }),
      apiRead: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) bar0.read32(LIVENESS); }),
      rawWrite: () => nsPerCall(CALLS, (n) => {
        for (let i = 0; i < n; i++) { rawView.setUint32(0, i, true); sys.pwrite(fd, raw, at); }
      }),
      apiWrite: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) bar0.write32(LIVENESS, i); }),
    });
    const rate = (values: number[]) => spread(values.map((v) => 1e9 / v));
    title(`region: trapped edu BAR0 register accesses on the mock kernel, ${ROUNDS} alternating rounds (median, ratio of medians, min..max)`);
    reportSpread('read32 via sys.pread (baseline)', rate(ns.rawRead), 'ops/s');
    reportSpread('read32 via Region.read32', rate(ns.apiRead), 'ops/s', 'sys.pread', rate(ns.rawRead));
    reportSpread('write32 via sys.pwrite (baseline)', rate(ns.rawWrite), 'ops/s');
    reportSpread('write32 via Region.write32', rate(ns.apiWrite), 'ops/s', 'sys.pwrite', rate(ns.rawWrite));
    note('mock kernel: pread/pwrite are in-process calls where a real device fd makes a syscall');
  } finally {
    handle.close();
  }
}

// Run on its own: node dist/bench/region.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
