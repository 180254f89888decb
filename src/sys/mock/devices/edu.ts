// QEMU's `edu` educational PCI device (hw/misc/edu.c, QEMU 7.2), simulated: the same
// identity, config space, BAR0 registers, factorial unit, DMA engine and interrupts,
// so tests written against it run unchanged on a real kernel inside a QEMU guest.
//
// BAR0 (1 MiB, 32-bit memory): 0x00 id 0x010000ed; 0x04 liveness (reads ~written);
// 0x08 factorial; 0x20 status (bit 0 computing, bit 7 interrupt on factorial done);
// 0x24 interrupt status; 0x60 raise; 0x64 acknowledge; 0x80/0x88/0x90/0x98 DMA source,
// destination, count, command (bit 0 start, bit 1 direction: 0 RAM -> device, 1
// device -> RAM, bit 2 interrupt 0x100 when done). The DMA buffer is 4 KiB at device
// address 0x40000; RAM addresses are masked to 28 bits.
//
// Access sizes: QEMU declares the region valid for 4- and 8-byte accesses only, so its
// memory core answers 1- and 2-byte accesses itself: reads 0, writes dropped. vfio-pci
// (6.1, 6.12) never issues 8-byte accesses, so 8-byte registers are reached 4 bytes at
// a time: a 4-byte write at 0x80 sets the whole 64-bit register, 0x84 reads ~0.
//
// Differences from QEMU, on purpose: work finishes on short host timers instead of a
// thread and a 100 ms virtual timer; a DMA QEMU 7.2 would abort the whole process for
// (outside the buffer, ending exactly at 0x41000, or count 0) copies nothing, records
// the reason in `lastDmaError`, and completes like a good one.
import { PciConfigSpace } from '../../../device/pci/config-space.js';
import { buildConfigSpace } from '../../../device/pci/config-builder.js';
import type { PciFunctionHost, PciFunctionModel } from '../pci/model.js';
import { createVfioPciDevice, type VfioPciDevice } from '../pci/vfio-pci.js';
import type { MmioSize, PciBarSpec, PciIdentity } from '../../../device/pci/types.js';

export const EDU_IDENTITY: PciIdentity = {
  vendor: 0x1234, // PCI_VENDOR_ID_QEMU
  device: 0x11e8,
  subsystemVendor: 0x1af4, // PCI_SUBVENDOR_ID_REDHAT_QUMRANET, QEMU's default
  subsystemDevice: 0x1100, // PCI_SUBDEVICE_ID_QEMU
  classCode: 0x00ff00, // PCI_CLASS_OTHERS
  revision: 0x10,
};

export const EDU_ID = 0x010000ed;
export const EDU_STATUS_COMPUTING = 0x01;
export const EDU_STATUS_IRQFACT = 0x80;
export const EDU_FACT_IRQ = 0x00000001;
export const EDU_DMA_IRQ = 0x00000100;
export const EDU_DMA_RUN = 0x1;
export const EDU_DMA_TO_PCI = 0x2;
export const EDU_DMA_IRQ_ON_DONE = 0x4;
export const EDU_DMA_START = 0x40000;
export const EDU_DMA_SIZE = 4096;
export const EDU_DMA_MASK = (1n << 28n) - 1n;

export const EduReg = {
  ID: 0x00, LIVENESS: 0x04, FACTORIAL: 0x08, STATUS: 0x20, IRQ_STATUS: 0x24, IRQ_RAISE: 0x60, IRQ_ACK: 0x64,
  DMA_SRC: 0x80, DMA_DST: 0x88, DMA_COUNT: 0x90, DMA_CMD: 0x98,
} as const;

const BAR0: PciBarSpec = {
  index: 0,
  size: 1 << 20,
  kind: 'memory32',
  // Where SeaBIOS puts it in the guest the real-kernel tests use; nothing depends on it.
  address: 0xfea00000n,
  // Every register lies in the first 0xa0 bytes; the rest of the BAR reads ~0.
  registerWindow: 0x1000,
};

/** How long the simulated engines take (QEMU: a thread, and a 100 ms virtual timer). */
const FACTORIAL_DELAY_MS = 0;
const DMA_DELAY_MS = 1;

/** n! modulo 2^32, as edu's 32-bit loop computes it; from 34! on it is 0. */
export function eduFactorial(n: number): number {
  n >>>= 0;
  if (n >= 34) return 0;
  let ret = 1;
  for (let v = n; v > 0; v--) ret = Math.imul(ret, v) >>> 0;
  return ret;
}

export class EduModel implements PciFunctionModel {
  readonly identity = EDU_IDENTITY;
  readonly config: PciConfigSpace;
  readonly bars = [BAR0] as const;
  readonly express = false;
  readonly resettable = false;

  private host: PciFunctionHost | undefined;
  private addr4 = 0;
  private fact = 0;
  private status = 0;
  private irqStatus = 0;
  private dmaSrc = 0n;
  private dmaDst = 0n;
  private dmaCnt = 0n;
  private dmaCmd = 0n;
  /** The device's internal DMA buffer (device addresses 0x40000..0x40fff). */
  readonly dmaBuffer = new Uint8Array(EDU_DMA_SIZE);
  /** Why the last DMA copied nothing (where QEMU 7.2 would have aborted), if it did. */
  lastDmaError: string | undefined;

  constructor() {
    this.config = buildConfigSpace({
      identity: EDU_IDENTITY,
      bars: this.bars,
      interruptPin: 1,
      // What SeaBIOS programs for 00:04.0 INTA on q35 (PIRQA, IRQ 10) and Linux reads back.
      interruptLine: 10,
      // SeaBIOS enables I/O, memory and SERR; Linux leaves it so.
      command: 0x0103,
      // msi_init(pdev, 0, 1, true, false): one vector, 64-bit, no per-vector mask, at 0x40.
      msi: { vectors: 1, address64: true, perVectorMask: false },
    });
  }

  attach(host: PciFunctionHost): void {
    this.host = host;
  }

  mmioRead(bar: number, offset: number, size: MmioSize): number {
    if (bar !== 0 || size !== 4) return 0; // rejected by QEMU's memory core: reads 0
    return this.register(offset);
  }

  mmioPeek(bar: number, offset: number): number {
    return bar === 0 ? this.register(offset) : 0;
  }

  mmioWrite(bar: number, offset: number, size: MmioSize, value: number): void {
    if (bar !== 0 || size !== 4) return; // rejected by QEMU's memory core: dropped
    const val = value >>> 0;
    switch (offset) {
      case EduReg.LIVENESS:
        this.addr4 = ~val >>> 0;
        break;
      case EduReg.FACTORIAL:
        if (this.status & EDU_STATUS_COMPUTING) break;
        this.fact = val;
        this.status = (this.status | EDU_STATUS_COMPUTING) >>> 0;
        this.later(FACTORIAL_DELAY_MS, () => this.factorialDone());
        break;
      case EduReg.STATUS:
        this.status = (val & EDU_STATUS_IRQFACT ? this.status | EDU_STATUS_IRQFACT : this.status & ~EDU_STATUS_IRQFACT) >>> 0;
        break;
      case EduReg.IRQ_RAISE:
        this.raiseIrq(val);
        break;
      case EduReg.IRQ_ACK:
        this.lowerIrq(val);
        break;
      case EduReg.DMA_SRC:
        if (!this.dmaRunning()) this.dmaSrc = BigInt(val);
        break;
      case EduReg.DMA_DST:
        if (!this.dmaRunning()) this.dmaDst = BigInt(val);
        break;
      case EduReg.DMA_COUNT:
        if (!this.dmaRunning()) this.dmaCnt = BigInt(val);
        break;
      case EduReg.DMA_CMD:
        if (!(val & EDU_DMA_RUN) || this.dmaRunning()) break;
        this.dmaCmd = BigInt(val);
        this.later(DMA_DELAY_MS, () => this.dmaTimer());
        break;
    }
  }

  reset(): void {
    // edu has no reset (no FLR, no PM capability, on the root bus).
  }

  /** A 4-byte read of a register: edu answers ~0 where it has none. */
  private register(offset: number): number {
    switch (offset) {
      case EduReg.ID: return EDU_ID;
      case EduReg.LIVENESS: return this.addr4;
      case EduReg.FACTORIAL: return this.fact;
      case EduReg.STATUS: return this.status;
      case EduReg.IRQ_STATUS: return this.irqStatus;
      case EduReg.DMA_SRC: return low32(this.dmaSrc);
      case EduReg.DMA_DST: return low32(this.dmaDst);
      case EduReg.DMA_COUNT: return low32(this.dmaCnt);
      case EduReg.DMA_CMD: return low32(this.dmaCmd);
      default: return 0xffffffff;
    }
  }

  private dmaRunning(): boolean {
    return (this.dmaCmd & BigInt(EDU_DMA_RUN)) !== 0n;
  }

  private factorialDone(): void {
    this.fact = eduFactorial(this.fact);
    this.status = (this.status & ~EDU_STATUS_COMPUTING) >>> 0;
    if (this.status & EDU_STATUS_IRQFACT) this.raiseIrq(EDU_FACT_IRQ);
    this.host?.registersChanged(0);
  }

  private dmaTimer(): void {
    if (!this.dmaRunning()) return;
    const cnt = this.dmaCnt;
    const toPci = (this.dmaCmd & BigInt(EDU_DMA_TO_PCI)) !== 0n;
    const devAddr = toPci ? this.dmaSrc : this.dmaDst;
    const ramAddr = (toPci ? this.dmaDst : this.dmaSrc) & EDU_DMA_MASK;
    const range = checkRange(devAddr, cnt);
    this.lastDmaError = range;
    if (range === undefined && this.host) {
      const at = Number(devAddr - BigInt(EDU_DMA_START));
      const window = this.dmaBuffer.subarray(at, at + Number(cnt));
      if (toPci) this.host.dma.write(ramAddr, window);
      else this.host.dma.read(ramAddr, window);
    }
    this.dmaCmd &= ~BigInt(EDU_DMA_RUN);
    if (this.dmaCmd & BigInt(EDU_DMA_IRQ_ON_DONE)) this.raiseIrq(EDU_DMA_IRQ);
    this.host?.registersChanged(0);
  }

  private raiseIrq(val: number): void {
    this.irqStatus = (this.irqStatus | val) >>> 0;
    if (!this.irqStatus) return;
    if (this.config.msiEnabled()) this.host?.msiNotify(0);
    else this.host?.setIntx(true);
  }

  private lowerIrq(val: number): void {
    this.irqStatus = (this.irqStatus & ~val) >>> 0;
    if (!this.irqStatus && !this.config.msiEnabled()) this.host?.setIntx(false);
  }

  private later(ms: number, fn: () => void): void {
    setTimeout(fn, ms).unref();
  }
}

/**
 * QEMU 7.2's edu_check_range for a transfer of `cnt` bytes at device address `addr`:
 * start inside the buffer, count > 0, and the end strictly before the buffer's end.
 * Returns why it fails, or undefined when QEMU would go on.
 */
function checkRange(addr: bigint, cnt: bigint): string | undefined {
  const start = BigInt(EDU_DMA_START);
  const end2 = start + BigInt(EDU_DMA_SIZE);
  const end1 = BigInt.asUintN(64, addr + cnt);
  const within = (x: bigint): boolean => start <= x && x < end2;
  if (within(addr) && end1 > addr && within(end1)) return undefined;
  return `EDU: DMA range 0x${addr.toString(16)}+0x${cnt.toString(16)} out of bounds (QEMU 7.2 aborts here)`;
}

function low32(v: bigint): number {
  return Number(v & 0xffff_ffffn);
}

/** A simulated edu at a PCI address (e.g. "0000:00:04.0"), bound to vfio-pci. */
export function createEduDevice(address: string): VfioPciDevice {
  return createVfioPciDevice(address, new EduModel());
}
