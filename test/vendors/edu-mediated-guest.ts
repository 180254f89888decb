// A guest driver for a mediated edu vGPU, as a VM's driver would use it: the vGPU opened
// through the VFIO client by UUID, its own container with the guest's memory mapped,
// edu's register helpers, and MSI for completions. Shared by the mock tests and the
// real-kernel e2e test.
import type { Mapping, SysLayer } from '../../src/sys/types.js';
import { pciIrq } from '../../src/uapi/constants.js';
import { openPciDevice, pciCommand, type DmaMapping, type PciDeviceHandle, type Region } from '../../src/vfio/index.js';
import {
  EDU_DMA_BUFFER, EDU_IRQ_DMA, eduDmaCmd, eduFactorial, eduRegs, eduStatus, EDU_MEDIATED_DMA_ERROR,
} from '../../src/vendors/edu/index.js';

export const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;

export class EduGuest {
  readonly handle: PciDeviceHandle;
  readonly bar0: Region;
  readonly memory: Mapping;
  readonly mapping: DmaMapping;
  /** MSIs counted by a listener that stays for the guest's life. */
  interrupts = 0n;

  /** Opens the vGPU and maps `pages` pages of fresh memory at `iova` in its container. */
  constructor(readonly sys: SysLayer, readonly uuid: string, readonly iova: bigint, pages = 2) {
    this.handle = openPciDevice(sys, uuid);
    this.handle.device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
    this.bar0 = this.handle.device.bar(0);
    this.memory = sys.allocate(pages * sys.pageSize);
    this.mapping = this.handle.container.map({ iova, memory: this.memory });
    this.handle.device.irqs.enable(MSI);
    this.handle.device.irqs.on(MSI, 0, (n) => { this.interrupts += n; });
  }

  get bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  /**
   * One transfer, waiting for its MSI: RAM at `iova` (this guest's IOVA space) and the
   * buffer at EDU_DMA_BUFFER + `offset`. Returns DMA_ERROR (0: done).
   */
  async dma(iova: bigint, offset: number, count: number, toRam: boolean, timeoutMs = 20_000): Promise<number> {
    const { bar0 } = this;
    const device = EDU_DMA_BUFFER + BigInt(offset);
    const done = this.handle.device.irqs.once(MSI, 0, timeoutMs);
    bar0.write32(eduRegs.DMA_SRC, Number(toRam ? device : iova));
    bar0.write32(eduRegs.DMA_DST, Number(toRam ? iova : device));
    bar0.write32(eduRegs.DMA_COUNT, count);
    bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.IRQ | (toRam ? eduDmaCmd.TO_RAM : 0));
    await done;
    if ((bar0.read32(eduRegs.DMA_CMD) & eduDmaCmd.START) !== 0) throw new Error(`${this.uuid}: MSI before the DMA ended`);
    const status = bar0.read32(eduRegs.IRQ_STATUS);
    if ((status & EDU_IRQ_DMA) === 0) throw new Error(`${this.uuid}: IRQ_STATUS 0x${status.toString(16)} lacks the DMA bit`);
    bar0.write32(eduRegs.IRQ_ACK, EDU_IRQ_DMA);
    return bar0.read32(EDU_MEDIATED_DMA_ERROR);
  }

  /** Fills `count` bytes at this guest's memory offset with a pattern seeded by `seed`. */
  fill(offset: number, count: number, seed: number): Uint8Array {
    const view = this.bytes.subarray(offset, offset + count);
    for (let i = 0; i < count; i++) view[i] = (i * 31 + seed * 7 + 1) & 0xff;
    return view.slice();
  }

  /** RAM -> buffer -> RAM elsewhere; returns what came back. */
  async roundTrip(seed: number, count: number, bufferOffset = 0): Promise<{ sent: Uint8Array; back: Uint8Array }> {
    const page = this.sys.pageSize;
    const sent = this.fill(0, count, seed);
    this.bytes.fill(0, page, page + count);
    const errors = [
      await this.dma(this.iova, bufferOffset, count, false),
      await this.dma(this.iova + BigInt(page), bufferOffset, count, true),
    ];
    if (errors.some((e) => e !== 0)) throw new Error(`${this.uuid}: DMA_ERROR ${errors.join(', ')}`);
    return { sent, back: this.bytes.slice(page, page + count) };
  }

  /** n! through the vGPU, completion by MSI (STATUS bit 7). */
  async factorialIrq(n: number, timeoutMs = 20_000): Promise<number> {
    const { bar0 } = this;
    bar0.write32(eduRegs.STATUS, eduStatus.IRQ_AFTER_FACTORIAL);
    const done = this.handle.device.irqs.once(MSI, 0, timeoutMs);
    bar0.write32(eduRegs.FACTORIAL, n);
    await done;
    bar0.write32(eduRegs.IRQ_ACK, 0x1);
    bar0.write32(eduRegs.STATUS, 0);
    return bar0.read32(eduRegs.FACTORIAL);
  }

  /** n! polling STATUS, as the plain edu helper does. */
  factorialPoll(n: number): Promise<number> {
    return eduFactorial(this.bar0, n, 20_000);
  }

  close(): void {
    try {
      this.handle.close();
    } finally {
      this.sys.munmap(this.memory);
    }
  }
}

/** n! mod 2^32, as edu computes it. */
export function factorial32(n: number): number {
  let r = 1;
  for (let i = 2; i <= n; i++) r = Math.imul(r, i) >>> 0;
  return r >>> 0;
}
