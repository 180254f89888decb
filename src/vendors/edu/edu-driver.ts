// A tiny user-space driver for QEMU's `edu` PCI device over the VFIO client API: its
// register map and the few waits its operations need. The same code drives the mock
// kernel's simulated edu and the real one in a QEMU guest (the demo and the e2e test).
import type { Region } from '../../vfio/region.js';

/** BAR0 registers (QEMU hw/misc/edu.c, docs/specs/edu.rst). */
export const eduRegs = {
  ID: 0x00,
  LIVENESS: 0x04,
  FACTORIAL: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_COUNT: 0x90,
  DMA_CMD: 0x98,
} as const;

export const EDU_ID = 0x010000ed;
export const EDU_VENDOR = 0x1234;
export const EDU_DEVICE = 0x11e8;
/** The device's internal DMA buffer, in its own address space. */
export const EDU_DMA_BUFFER = 0x40000n;
/** QEMU 7.2 aborts on a transfer that reaches the buffer's end: stay one byte short. */
export const EDU_DMA_MAX = 4095;
/** edu's DMA mask is 28 bits: IOVAs must lie below 256 MiB. */
export const EDU_DMA_LIMIT = 1n << 28n;

export const eduStatus = { COMPUTING: 0x1, IRQ_AFTER_FACTORIAL: 0x80 } as const;
export const eduDmaCmd = { START: 0x1, TO_RAM: 0x2, IRQ: 0x4 } as const;
/** The IRQ_STATUS bit a DMA with eduDmaCmd.IRQ raises. */
export const EDU_IRQ_DMA = 0x100;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` without blocking the event loop (the mock device completes asynchronously). */
export async function pollUntil(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`edu: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(1);
  }
}

/** n! computed by the device (mod 2^32), waiting on STATUS bit 0. */
export async function eduFactorial(bar0: Region, n: number, timeoutMs = 10_000): Promise<number> {
  bar0.write32(eduRegs.FACTORIAL, n);
  await pollUntil(() => (bar0.read32(eduRegs.STATUS) & eduStatus.COMPUTING) === 0, timeoutMs, 'the factorial');
  return bar0.read32(eduRegs.FACTORIAL);
}

export interface EduTransfer {
  /** Source and destination: an IOVA on the RAM side, an EDU_DMA_BUFFER address on the device side. */
  src: bigint;
  dst: bigint;
  count: number;
  /** true: device buffer -> RAM; false: RAM -> device buffer. */
  toRam: boolean;
  /** Ask for interrupt 0x100 on completion. */
  irq?: boolean;
}

/**
 * Starts one DMA transfer and waits until the device clears the start bit. Registers
 * are written 4 bytes at a time: vfio-pci on x86 (6.1, 6.12) splits an 8-byte pwrite
 * into 4-byte accesses anyway, and edu ignores the upper halves at 0x84/0x8c/0x94.
 */
export async function eduDma(bar0: Region, t: EduTransfer, timeoutMs = 10_000): Promise<void> {
  if (t.count < 1 || t.count > EDU_DMA_MAX) throw new RangeError(`edu DMA count must be 1..${EDU_DMA_MAX}, got ${t.count}`);
  for (const address of [t.src, t.dst]) {
    if (address < 0n || address >= EDU_DMA_LIMIT) throw new RangeError(`edu DMA address 0x${address.toString(16)} lies outside its 28-bit DMA mask`);
  }
  bar0.write32(eduRegs.DMA_SRC, Number(t.src));
  bar0.write32(eduRegs.DMA_DST, Number(t.dst));
  bar0.write32(eduRegs.DMA_COUNT, t.count);
  bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | (t.toRam ? eduDmaCmd.TO_RAM : 0) | (t.irq ? eduDmaCmd.IRQ : 0));
  await pollUntil(() => (bar0.read32(eduRegs.DMA_CMD) & eduDmaCmd.START) === 0, timeoutMs, 'the DMA transfer');
}
