// `vgpu demo [pci-address]`: a guided walk through the edu device (the mock kernel's
// simulated edu unless VGPU_SYS=native) with the VFIO client API: device info, regions,
// registers, a DMA round trip through the IOMMU and an MSI, then everything closed.
// Then the vGPU core on the mock kernel: a simulated GPU board (simgpu) and its types,
// a vGPU created through the mdev sysfs ABI, opened with the same client, a command
// batch run by the vGPU through DMA tracking, its MSI, and the vGPU removed again.
import { posix } from 'node:path';
import { inspect } from 'node:util';
import { createMockSys, openSys, type MockSysLayer } from '../sys/index.js';
import { createEduDevice } from '../sys/mock/devices/edu.js';
import type { Mapping, SysLayer } from '../sys/types.js';
import { pciIrq } from '../uapi/constants.js';
import { Group, openPciDevice, pciCommand, type Container, type Device, type Region } from '../vfio/index.js';
import { attachMockKernel, VgpuRegistry, type RegisteredParent } from '../vgpu/index.js';
import { SimGpuBoard, SimGpuOp, simgpuDriver } from '../vendors/simgpu/index.js';
import { SimGpuGuest } from '../vendors/simgpu/guest.js';
import { EDU_DMA_BUFFER, eduDma, eduFactorial, eduRegs } from '../vendors/edu/edu-driver.js';
import { resolve } from 'node:path';
import { runDisplayDemo } from '../vendors/display/index.js';

const show = (o: unknown): string => inspect(o, { colors: process.stdout.isTTY, depth: 4 });
const hex = (n: number | bigint, digits = 0): string => `0x${n.toString(16).padStart(digits, '0')}`;

export async function runDemo(args: string[]): Promise<number> {
  const address = args[0] ?? '0000:00:04.0';
  const sys = openSys({ mock: { devices: [createEduDevice(address)] } });
  const say = (line = ''): void => { process.stdout.write(`${line}\n`); };
  say(`fd layer: ${sys.kind === 'mock' ? 'mock kernel (simulated devices)' : 'native (the real /dev/vfio)'}`);

  const handle = openPciDevice(sys, address);
  const memory: Mapping[] = [];
  try {
    const { device, container } = handle;
    say(`\n${show(handle)}`);
    const iommu = container.iommuInfo();
    say(`IOMMU page sizes ${hex(iommu.pageSizes)}, ${iommu.dmaAvail ?? '?'} DMA mappings available, IOVA ranges ${(iommu.iovaRanges ?? []).map((r) => `${hex(r.start)}-${hex(r.end)}`).join(' ')}`);
    const regions = [...device.regions.values()];
    say('\nregions:');
    for (const region of regions.filter((r) => r.size > 0)) say(`  ${region.summary()} (fd offset ${hex(region.offset)})`);
    say(`  unimplemented: ${regions.filter((r) => r.size === 0).map((r) => r.name).join(', ')}`);
    say(`irqs: ${device.irqs.infos.map((i) => `${i.name} ${i.count}`).join(', ')}`);
    say(`\n${show(device.config)}`);

    device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
    const bar0 = device.bar(0);
    say(`\nBAR0 id register: ${hex(bar0.read32(eduRegs.ID), 8)}`);
    bar0.write32(eduRegs.LIVENESS, 0x12345678);
    say(`liveness: wrote 0x12345678, read back ${hex(bar0.read32(eduRegs.LIVENESS), 8)} (its bitwise NOT)`);
    say(`factorial: 10! = ${await eduFactorial(bar0, 10)}`);

    await dmaRoundTrip(sys, handle.container, bar0, memory, say);
    await interrupt(device, bar0, say);
  } finally {
    handle.close();
    for (const m of memory) sys.munmap(m);
  }
  say('\nclosed the device, the group and the container');
  await vgpuWalk(sys.kind === 'mock' ? sys as MockSysLayer : createMockSys({ devices: [] }), say);
  return 0;
}

/** The vGPU core end to end: types, create, open, a command and its MSI, remove. */
async function vgpuWalk(sys: MockSysLayer, say: (line?: string) => void): Promise<void> {
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  attachMockKernel(registry, sys.kernel);
  const board = new SimGpuBoard();
  const parent = registry.addParent(simgpuDriver.name, board);
  const typesDir = `/sys/class/mdev_bus/${board.name}/mdev_supported_types`;
  say(`\n== vGPU core (mock kernel): board ${board.name}, ${board.framebufferSize / 2 ** 30} GiB framebuffer, driver ${simgpuDriver.name} ==`);
  say(`${typesDir}:`);
  for (const t of parent.typeList()) {
    const a = t.attributes;
    const fbMiB = `${Number(a['framebuffer']) / 2 ** 20}M`;
    say(`  ${t.id.padEnd(10)} ${t.name.padEnd(12)} framebuffer ${fbMiB.padStart(5)}  heads ${a['heads']}  ${a['resolution']!.padEnd(9)}  available_instances ${t.availableInstances()}`);
  }

  const uuid = 'c0b26072-dd1b-4340-84fe-bf338c510818'; // the proposal's example UUID
  sys.sysfs.write(`${typesDir}/simgpu-4Q/create`, uuid);
  const node = `/sys/bus/mdev/devices/${uuid}`;
  say(`\necho ${uuid} > .../simgpu-4Q/create`);
  say(`  ${node} -> ${sys.sysfs.readlink(node)}`);
  const group = Group.numberOf(sys, uuid);
  say(`  mdev_type -> ${posix.basename(sys.sysfs.readlink(`${node}/mdev_type`))}, IOMMU group ${group}: /dev/vfio/${group}`);
  say(`  still offered: ${offered(parent)} (the proposal's narrowing: one type per board)`);

  const guest = SimGpuGuest.open(sys, uuid);
  try {
    say(`\nopened with the VFIO client, as the edu above:\n${show(guest.device)}`);
    say(`  ${show(guest.device.config)}`);
    // Small buffers: pinned pages count against RLIMIT_MEMLOCK, which may be 64 KiB.
    const size = 16 * 1024;
    const src = guest.allocate(size, 0x100000n);
    const dst = guest.allocate(size, 0x200000n);
    const fb = guest.mapFramebuffer(0, 4096);
    const msis = guest.device.irqs.on(pciIrq.VFIO_PCI_MSI_IRQ_INDEX, 0, (n) => say(`  MSI: eventfd signalled (count ${n})`));
    say('\nsubmit: FILL 16 KiB of guest memory with 0xc0ffee00, COPY it, BLIT 64 bytes to the framebuffer, FENCE 0x2a');
    const result = await guest.submit([
      { op: SimGpuOp.FILL, length: size, dst: src.iova, src: 0xc0ffee00n },
      { op: SimGpuOp.COPY, length: size, dst: dst.iova, src: src.iova },
      { op: SimGpuOp.BLIT_TO_FB, length: 64, dst: 0n, src: dst.iova },
      { op: SimGpuOp.FENCE, length: 8, dst: dst.iova + BigInt(size - 8), src: 0x2an },
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    msis.close();
    say(`  done: ${result.completed} commands completed, fence ${hex(result.fence)}, ${result.error ? `error ${show(result.error)}` : 'no error'}`);
    say(`  guest memory at iova ${hex(dst.iova)}: ${bytesText(dst.bytes.subarray(0, 8))}...; framebuffer (BAR1 mmap): ${bytesText(fb.bytes.subarray(0, 8))}...`);
  } finally {
    guest.close();
  }
  say('\nclosed; echo 1 > .../remove');
  sys.sysfs.write(`${node}/remove`, '1');
  say(`  ${node} exists: ${sys.sysfs.exists(node)}; capacity restored: ${offered(parent)}`);

  say('\n== display vGPU (mbochs-like): mode registers, framebuffer mmap, QUERY_GFX_PLANE, screenshot ==');
  say(runDisplayDemo(sys, registry, resolve(DISPLAY_SCREENSHOT)));
}

/** Where `npm start` saves the display vGPU's screenshot (git-ignored). */
const DISPLAY_SCREENSHOT = 'vgpu-display.png';

function offered(parent: RegisteredParent): string {
  return parent.typeList().filter((t) => t.availableInstances() > 0).map((t) => `${t.id} ${t.availableInstances()}`).join(', ');
}

function bytesText(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

async function dmaRoundTrip(
  sys: SysLayer, container: Container, bar0: Region, memory: Mapping[], say: (line?: string) => void,
): Promise<void> {
  const src = sys.allocate(sys.pageSize);
  const dst = sys.allocate(sys.pageSize);
  memory.push(src, dst);
  const message = new TextEncoder().encode('Hello through the IOMMU, from vfio-vgpu!');
  new Uint8Array(src.buffer).set(message);
  const a = container.map({ iova: 0x100000, memory: src, read: true, write: false });
  const b = container.map({ iova: 0x200000, memory: dst, read: false, write: true });
  say(`\nDMA: ${show(a)} (device may read)`);
  say(`     ${show(b)} (device may write)`);
  await eduDma(bar0, { src: a.iova, dst: EDU_DMA_BUFFER, count: message.byteLength, toRam: false });
  await eduDma(bar0, { src: EDU_DMA_BUFFER, dst: b.iova, count: message.byteLength, toRam: true });
  const back = new TextDecoder().decode(new Uint8Array(dst.buffer, 0, message.byteLength));
  say(`     RAM -> device buffer -> RAM: "${back}"`);
  const { count, bytes } = container.dmaSummary();
  say(`     ${count} live mappings, ${bytes} bytes; unmapAll() removed ${container.unmapAll()} bytes`);
}

async function interrupt(device: Device, bar0: Region, say: (line?: string) => void): Promise<void> {
  const [fd] = device.irqs.enable(pciIrq.VFIO_PCI_MSI_IRQ_INDEX);
  const delivered = device.irqs.once(pciIrq.VFIO_PCI_MSI_IRQ_INDEX, 0, 5000);
  bar0.write32(eduRegs.IRQ_RAISE, 0x42);
  const count = await delivered;
  say(`\nMSI: raised 0x42, eventfd ${fd} signalled (count ${count}), interrupt status ${hex(bar0.read32(eduRegs.IRQ_STATUS))}`);
  bar0.write32(eduRegs.IRQ_ACK, 0x42);
  say(`     acknowledged, interrupt status ${hex(bar0.read32(eduRegs.IRQ_STATUS))}`);
  say(`     ${show(device.irqs)}`);
  device.irqs.disable(pciIrq.VFIO_PCI_MSI_IRQ_INDEX);
}
