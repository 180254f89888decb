// The vGPU dispatch path (issue 4, item 10): a client Region.read32/write32 of a trapped
// vGPU register, through the mock kernel's fd layer to VgpuDevice's BAR dispatch and the
// vendor's handler, and back. Beside it, in alternating rounds, the same operation on
// the simulated edu's read/write register through the same client (the vfio-pci path):
// read against read, write against write; and a direct call of the vendor's handler
// (the floor). On the mock kernel each access is a chain of in-process calls where a
// real device fd makes a pread/pwrite syscall. Target: >= 1M ops/s.
import { pathToFileURL } from 'node:url';
import { createMockSys } from '../src/sys/mock.js';
import { createEduDevice } from '../src/sys/mock/devices/edu.js';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';
import { VgpuDevice } from '../src/vgpu/device/vgpu-device.js';
import type { RegisterHandler, VgpuModel } from '../src/vgpu/vendor.js';
import { alternate, note, nsPerCall, reportSpread, spread, title } from './report.js';

const CALLS = 200_000;
const ROUNDS = 9;
const UUID = '5b1e0c3a-8d2f-4e6a-9b7c-0d1e2f3a4b5c';
const EDU = '0000:00:04.0';
const REG_ID = 0x0;
const REG_SCRATCH = 0x4;
const EDU_LIVENESS = 0x04;

/** A vendor model with one page of registers: the least a vendor can do per access. */
function benchModel(): VgpuModel {
  let scratch = 0;
  const regs: RegisterHandler = {
    read: (offset) => (offset === REG_ID ? 0x76475055 : offset === REG_SCRATCH ? scratch : 0),
    write: (offset, _size, value) => { if (offset === REG_SCRATCH) scratch = value; },
  };
  return {
    pci: {
      identity: { vendor: 0x1af4, device: 0x10f0, subsystemVendor: 0x1af4, subsystemDevice: 0x1100, classCode: 0x030000, revision: 1 },
      interruptPin: 1, msiVectors: 1, express: true, powerManagement: true,
    },
    bars: [{ index: 0, size: 0x1000, kind: 'memory32', areas: [{ kind: 'trapped', offset: 0, size: 0x1000, handler: regs }] }],
    open: () => {},
    release: () => {},
    reset: () => { scratch = 0; },
    dmaUnmap: () => {},
  };
}

export async function run(): Promise<void> {
  const sys = createMockSys({ devices: [createEduDevice(EDU)] });
  const model = benchModel();
  const group = sys.kernel.registerDevice(new VgpuDevice(UUID, model, { opened: () => {}, released: () => {} }), { iommuBacked: false });
  const vgpu = openPciDevice(sys, UUID, { group });
  const edu = openPciDevice(sys, EDU);
  try {
    const vbar = vgpu.device.bar(0);
    const ebar = edu.device.bar(0);
    edu.device.config.enable(pciCommand.MEMORY);
    const handler = (model.bars[0]!.areas[0] as { handler: RegisterHandler }).handler;
    let sink = 0;
    const ns = alternate(ROUNDS, {
      direct: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) sink ^= handler.read(REG_SCRATCH, 4); }),
      eduRead: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) sink ^= ebar.read32(EDU_LIVENESS); }),
      vgpuRead: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) sink ^= vbar.read32(REG_SCRATCH); }),
      eduWrite: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) ebar.write32(EDU_LIVENESS, i); }),
      vgpuWrite: () => nsPerCall(CALLS, (n) => { for (let i = 0; i < n; i++) vbar.write32(REG_SCRATCH, i); }),
    });
    if (sink === 0.5) console.log(sink); // keep the reads alive

    const rate = (values: number[]) => spread(values.map((v) => 1e9 / v));
    title(`vgpu-dispatch: trapped register accesses through the client and the mock kernel, ${ROUNDS} alternating rounds (median, ratio of medians, min..max)`);
    reportSpread('vendor handler.read, direct call (floor)', rate(ns.direct), 'ops/s');
    reportSpread('edu read32 via Region (vfio-pci path)', rate(ns.eduRead), 'ops/s');
    reportSpread('vGPU read32 via Region', rate(ns.vgpuRead), 'ops/s', 'edu read32', rate(ns.eduRead));
    reportSpread('edu write32 via Region (vfio-pci path)', rate(ns.eduWrite), 'ops/s');
    reportSpread('vGPU write32 via Region', rate(ns.vgpuWrite), 'ops/s', 'edu write32', rate(ns.eduWrite));
    reportSpread('vGPU read32, time per access', spread(ns.vgpuRead), 'ns');
    note('mock kernel: an access is in-process calls standing in for a pread/pwrite syscall on the device fd');
  } finally {
    vgpu.close();
    edu.close();
  }
}

// Run on its own: node dist/bench/vgpu-dispatch.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
