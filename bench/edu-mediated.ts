// The mediated edu driver (issue 6, item 4): DMA throughput through a vGPU against
// direct use of the physical edu in the same run, and the interrupt delivery latency
// from the physical MSI (the driver's eventfd listener on the parent) to the vGPU
// user's eventfd listener.
//
// Both sides do the same thing: alternating 4095-byte transfers RAM -> buffer and
// buffer -> RAM, each started by register writes and waited for by its MSI (edu's DMA
// interrupt), so neither side polls. Direct: the physical edu through the VFIO client,
// its memory mapped in its own container. Mediated: one vGPU on the same edu opened by
// UUID through the client; the driver pins, maps, programs, and routes the MSI.
//
// On the mock kernel this measures the software path (the simulated edu finishes a
// transfer on a 1 ms timer). With VGPU_SYS=native on a host with the real edu bound to
// vfio-pci (the QEMU guest of test/kernel), the parent is the real device; the guest's
// `mediated` phase runs measureMediatedDma through test/e2e/edu-mediated.test.ts.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createMockSys, openSys, type MockSysLayer } from '../src/sys/index.js';
import { createEduDevice } from '../src/sys/mock/devices/edu.js';
import type { SysLayer } from '../src/sys/types.js';
import { pciIrq } from '../src/uapi/constants.js';
import { openPciDevice, pciCommand, type PciDeviceHandle } from '../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../src/vgpu/index.js';
import {
  EDU_DMA_BUFFER, EDU_DMA_MAX, EDU_IRQ_DMA, EduMediatedParent, eduDmaCmd, eduMediatedDriver, eduRegs,
} from '../src/vendors/edu/index.js';
import { note, report, reportSpread, spread, title } from './report.js';

const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
const UUID = '7d3c2b1a-0f9e-4d8c-8b7a-6e5d4c3b2a19';
const IOVA = 0x100000n;

export interface MediatedDmaFigures {
  transfers: number;
  /** Bytes per second. */
  direct: number;
  mediated: number;
  /** mediated / direct. */
  ratio: number;
  /** Physical MSI seen by the driver -> vGPU user's listener, microseconds. */
  latencyMedianUs: number;
  latencyP99Us: number;
}

/** Runs `transfers` transfers of EDU_DMA_MAX bytes on a device handle, each waited for by its MSI. */
async function transferLoop(handle: PciDeviceHandle, transfers: number, onMsi?: () => void): Promise<number> {
  const { device, container } = handle;
  const sys = container.sys;
  device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
  const bar0 = device.bar(0);
  const memory = sys.allocate(sys.pageSize);
  new Uint8Array(memory.buffer).fill(0x3c);
  const mapping = container.map({ iova: IOVA, memory });
  device.irqs.enable(MSI);
  let wake: (() => void) | undefined;
  const listener = device.irqs.on(MSI, 0, () => { onMsi?.(); wake?.(); });
  try {
    const start = performance.now();
    for (let i = 0; i < transfers; i++) {
      const toRam = i % 2 === 1;
      const done = new Promise<void>((resolve) => { wake = resolve; });
      bar0.write32(eduRegs.DMA_SRC, Number(toRam ? EDU_DMA_BUFFER : IOVA));
      bar0.write32(eduRegs.DMA_DST, Number(toRam ? IOVA : EDU_DMA_BUFFER));
      bar0.write32(eduRegs.DMA_COUNT, EDU_DMA_MAX);
      bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.IRQ | (toRam ? eduDmaCmd.TO_RAM : 0));
      await done;
      bar0.write32(eduRegs.IRQ_ACK, EDU_IRQ_DMA);
    }
    return (transfers * EDU_DMA_MAX) / ((performance.now() - start) / 1000);
  } finally {
    listener.close();
    device.irqs.disable(MSI);
    mapping.unmap();
    sys.munmap(memory);
  }
}

/**
 * Direct, then mediated, on the edu at `address` of `sys`. The vGPU is served on
 * `vsys`'s mock kernel: `sys` itself when it is the mock (one address space for both
 * sides), else a mock kernel of its own.
 */
export async function measureMediatedDma(sys: SysLayer, address: string, transfers: number): Promise<MediatedDmaFigures> {
  const direct = openPciDevice(sys, address);
  let directRate: number;
  try {
    await transferLoop(direct, 2); // warm-up
    directRate = await transferLoop(direct, transfers);
  } finally {
    direct.close();
  }

  const vsys = sys.kind === 'mock' ? (sys as MockSysLayer) : createMockSys({ devices: [] });
  let physicalMsiAt = 0;
  const latencies: number[] = [];
  const registry = new VgpuRegistry();
  registry.registerDriver(eduMediatedDriver);
  attachMockKernel(registry, vsys.kernel);
  const parent = EduMediatedParent.open(sys, address, { onInterrupt: (at) => { physicalMsiAt = at; } });
  let mediatedRate: number;
  try {
    registry.addParent('edu', parent);
    vsys.sysfs.write(`/sys/class/mdev_bus/${address}/mdev_supported_types/edu-mediated/create`, UUID);
    const vgpu = openPciDevice(vsys, UUID);
    try {
      await transferLoop(vgpu, 2);
      const onMsi = (): void => { latencies.push((performance.now() - physicalMsiAt) * 1000); };
      mediatedRate = await transferLoop(vgpu, transfers, onMsi);
    } finally {
      vgpu.close();
    }
  } finally {
    registry.removeParent(address);
    parent.close();
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    transfers, direct: directRate, mediated: mediatedRate, ratio: mediatedRate / directRate,
    latencyMedianUs: at(0.5), latencyP99Us: at(0.99),
  };
}

const ROUNDS = 5;

export async function run(): Promise<void> {
  const address = process.env['VGPU_TEST_DEVICE'] ?? '0000:00:04.0';
  const sys = openSys({ mock: { devices: [createEduDevice(address)] } });
  const transfers = sys.kind === 'native' ? 40 : 400;
  // Each round measures direct, then mediated (the one edu cannot serve both at once).
  const rounds: MediatedDmaFigures[] = [];
  for (let round = 0; round < ROUNDS; round++) rounds.push(await measureMediatedDma(sys, address, transfers));
  const mb = (pick: (f: MediatedDmaFigures) => number) => spread(rounds.map((f) => pick(f) / 1e6));
  title(`mediated edu (${sys.kind} parent ${address}, ${ROUNDS} rounds of ${transfers} transfers of ${EDU_DMA_MAX} bytes each way, each awaited by MSI; median, ratio of medians, min..max)`);
  reportSpread('DMA direct on the physical edu', mb((f) => f.direct), 'MB/s');
  reportSpread('DMA through a mediated vGPU', mb((f) => f.mediated), 'MB/s', 'direct', mb((f) => f.direct));
  report('MSI: physical -> vGPU listener, median of rounds\' medians', spread(rounds.map((f) => f.latencyMedianUs)).median, 'us');
  report('MSI: physical -> vGPU listener, worst round\'s p99', Math.max(...rounds.map((f) => f.latencyP99Us)), 'us');
  if (sys.kind === 'mock') {
    note(`mock kernel: the simulated edu completes a transfer on a 1 ms timer, so either side is capped near ${(EDU_DMA_MAX / 1e3).toFixed(1)} MB/s (${EDU_DMA_MAX} bytes a millisecond);`
      + ' the ratio shows what mediation adds on top, not a device\'s throughput');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
