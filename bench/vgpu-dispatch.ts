// The vGPU dispatch round trip (issue 4, item 10): a client Region.read32 of a trapped
// vGPU register, through the mock kernel's fd layer to VgpuDevice's BAR dispatch and
// the vendor's handler, and back. Against baselines measured in the same run: the same
// read32 of the simulated edu's register through the same client (the vfio-pci path),
// and a direct call of the vendor's handler (the floor). Target: >= 1M ops/s.
import { pathToFileURL } from 'node:url';
import { createMockSys } from '../src/sys/mock.js';
import { createEduDevice } from '../src/sys/mock/devices/edu.js';
import { openPciDevice, pciCommand } from '../src/vfio/index.js';
import { VgpuDevice } from '../src/vgpu/device/vgpu-device.js';
import type { RegisterHandler, VgpuModel } from '../src/vgpu/vendor.js';
import { bestNsPerCall, report, title } from './report.js';

const CALLS = 200_000;
const RUNS = 5;
const UUID = '5b1e0c3a-8d2f-4e6a-9b7c-0d1e2f3a4b5c';
const EDU = '0000:00:04.0';
const REG_ID = 0x0;
const REG_SCRATCH = 0x4;

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
    const direct = bestNsPerCall(CALLS, RUNS, (n) => { for (let i = 0; i < n; i++) sink ^= handler.read(REG_ID, 4); });
    const vRead = bestNsPerCall(CALLS, RUNS, (n) => { for (let i = 0; i < n; i++) sink ^= vbar.read32(REG_ID); });
    const vWrite = bestNsPerCall(CALLS, RUNS, (n) => { for (let i = 0; i < n; i++) vbar.write32(REG_SCRATCH, i); });
    const eRead = bestNsPerCall(CALLS, RUNS, (n) => { for (let i = 0; i < n; i++) sink ^= ebar.read32(0x04); });
    if (sink === 0.5) console.log(sink); // keep the reads alive

    const perSecond = (ns: number): number => 1e9 / ns;
    title('vgpu-dispatch: trapped vGPU register round trip through the client and the mock kernel');
    report('handler.read direct call (floor)', perSecond(direct), 'ops/s');
    report('edu read32 via Region (vfio-pci path)', perSecond(eRead), 'ops/s');
    report('vGPU read32 via Region', perSecond(vRead), 'ops/s', 'edu', perSecond(eRead));
    report('vGPU write32 via Region', perSecond(vWrite), 'ops/s', 'edu read', perSecond(eRead));
    report('vGPU read32 round trip', vRead, 'ns/op');
  } finally {
    vgpu.close();
    edu.close();
  }
}

// Run on its own: node dist/bench/vgpu-dispatch.js
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
