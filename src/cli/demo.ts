// `vgpu demo [pci-address]`: a guided walk through the edu device (the mock kernel's
// simulated edu unless VGPU_SYS=native) with the VFIO client API: device info, regions,
// registers, a DMA round trip through the IOMMU and an MSI, then everything closed.
import { inspect } from 'node:util';
import { openSys } from '../sys/index.js';
import { createEduDevice } from '../sys/mock/devices/edu.js';
import type { Mapping, SysLayer } from '../sys/types.js';
import { pciIrq } from '../uapi/constants.js';
import { openPciDevice, pciCommand, type Container, type Device, type Region } from '../vfio/index.js';
import { EDU_DMA_BUFFER, eduDma, eduFactorial, eduRegs } from './edu-driver.js';

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
  return 0;
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
