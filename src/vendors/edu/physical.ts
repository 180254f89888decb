// The physical edu under the mediated driver, opened through the VFIO client: its
// factorial unit and its DMA engine, each shared by the vGPUs through a FIFO (one job
// at a time: edu has one of each), and its MSI, which completes the job in flight.
//
// A vGPU's DMA runs on the physical engine against the vGPU user's own pages: they are
// pinned through the user's DmaSpace (so only what the user mapped can be reached),
// mapped into the physical container with VFIO_IOMMU_MAP_DMA at IOVAs the driver
// allocates below edu's 28-bit mask, and unmapped and unpinned when the transfer ends
// or when the user unmaps them first.
//
// The device's 4 KiB buffer is virtualized as a GPU's context is: the physical buffer
// holds one vGPU's contents at a time (the owner); switching to another vGPU saves the
// owner's bytes into its shadow page (only if a transfer changed them) and restores the
// next one's, both by DMA between the buffer and shadow pages the driver maps once. A
// vGPU therefore never sees another's bytes, and a vGPU working alone pays nothing.
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { addon } from '../../addon/addon.js';
import type { DmaSpace } from '../../device/backend.js';
import type { Mapping } from '../../sys/types.js';
import { pciIrq } from '../../uapi/constants.js';
import type { DmaMapping, IrqListener, PciDeviceHandle, Region } from '../../vfio/index.js';
import { pciCommand } from '../../vfio/index.js';
import {
  EDU_DMA_BUFFER, EDU_DMA_LIMIT, EDU_DMA_MAX, EDU_IRQ_DMA, eduDmaCmd, eduRegs, eduStatus,
} from './edu-driver.js';
import { IovaAllocator, type IovaRange } from './iova-allocator.js';

/** The IRQ_STATUS bit a factorial raises when STATUS bit 7 is set. */
export const EDU_IRQ_FACTORIAL = 0x1;
const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
const IOMMU_READ = 1;
const IOMMU_WRITE = 2;
/** Bytes of the buffer a transfer can reach: byte 4095 never is (QEMU 7.2 aborts first). */
const BUFFER_BYTES = EDU_DMA_MAX;
/** First IOVA the driver hands out: the shadow pages come first. */
const IOVA_BASE = 0x100000n;
/** A missed or early MSI is caught by this periodic look at the registers. */
const WATCHDOG_MS = 500;
/** How long dmaUnmap waits for a real transfer to finish before pulling its mapping. */
const DRAIN_MS = 3000;

const errno = (e: unknown): number => {
  const n = (e as { errno?: unknown } | undefined)?.errno;
  return typeof n === 'number' && n > 0 ? n : constants.errno.EIO;
};

/** One vGPU's device buffer: its shadow page and whether the physical copy is newer. */
export class BufferContext {
  /** The physical buffer holds writes the shadow lacks. */
  dirty = false;
  /** The buffer must read as zeros at its next restore (a new vGPU, or a reset). */
  fresh = true;
  constructor(readonly slot: number, readonly shadow: Uint8Array, readonly shadowIova: bigint) {}
}

/** A vGPU DMA command, its device-side range already checked. */
export interface DmaRequest {
  readonly context: BufferContext;
  /** The vGPU user's DMA space: pins come from there. */
  readonly dma: DmaSpace;
  /** The RAM-side IOVA in the vGPU user's address space (masked to 28 bits). */
  readonly ramIova: bigint;
  /** The device-side address, inside 0x40000..0x40ffe. */
  readonly deviceAddress: bigint;
  readonly count: number;
  /** Buffer -> RAM (the user's pages are written). */
  readonly toRam: boolean;
  /** Bus Master Enable of the vGPU, read when the job starts. */
  busMaster(): boolean;
  /** Called once: 0, or the errno the command failed with. */
  done(errno: number): void;
}

interface FactorialRequest {
  readonly context: BufferContext;
  readonly n: number;
  readonly done: (result: number) => void;
}

/** The vGPU job holding pins and physical mappings. */
interface ActiveJob {
  readonly request: DmaRequest;
  pinned: { iova: bigint; npage: number } | undefined;
  range: IovaRange | undefined;
  mappings: DmaMapping[];
  /** The physical engine was given the job's addresses. */
  programmed: boolean;
  finished: boolean;
}

interface PhysicalTransfer {
  src: bigint;
  dst: bigint;
  count: number;
  toRam: boolean;
}

export interface PhysicalEduOptions {
  /** Called first thing on each physical MSI, with performance.now() (for the bench). */
  onInterrupt?: (at: number) => void;
}

/** A Mapping over a pinned page view: the VFIO client maps `view` by its buffer and offset. */
function mappingOf(view: Uint8Array): Mapping {
  const buffer = view.buffer as ArrayBuffer;
  return { buffer, address: addon().addressOf(view) - BigInt(view.byteOffset), length: buffer.byteLength };
}

export class PhysicalEdu {
  readonly bar0: Region;
  private readonly pageSize: bigint;
  private readonly allocator: IovaAllocator;
  private readonly shadowMemory: Mapping;
  private readonly shadowMapping: DmaMapping;
  private readonly listener: IrqListener;
  private readonly watchdog: NodeJS.Timeout;
  private readonly freeSlots: number[];

  private readonly factorials: FactorialRequest[] = [];
  private factorialRunning: FactorialRequest | undefined;
  private readonly requests: DmaRequest[] = [];
  private active: ActiveJob | undefined;
  private running = false;
  private transferWaiter: (() => void) | undefined;
  private owner: BufferContext | undefined;
  private closed = false;
  /** Transfers the physical engine ran, by purpose (for tests and the bench). */
  readonly counts = { vgpu: 0, save: 0, restore: 0, factorial: 0, interrupts: 0 };

  constructor(readonly handle: PciDeviceHandle, readonly slots: number, private readonly options: PhysicalEduOptions = {}) {
    const { device, container } = handle;
    const sys = container.sys;
    this.pageSize = BigInt(sys.pageSize);
    this.bar0 = device.bar(0);
    device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
    this.freeSlots = Array.from({ length: slots }, (_, i) => i);
    this.shadowMemory = sys.allocate(sys.pageSize * slots);
    try {
      this.shadowMapping = container.map({ iova: IOVA_BASE, memory: this.shadowMemory });
      this.allocator = new IovaAllocator(IOVA_BASE + this.pageSize * BigInt(slots), EDU_DMA_LIMIT, this.pageSize);
      device.irqs.enable(MSI);
      this.listener = device.irqs.on(MSI, 0, () => this.onInterrupt());
      this.listener.unref();
      // Factorials end with interrupt 0x1, so nothing polls the physical device.
      this.bar0.write32(eduRegs.STATUS, eduStatus.IRQ_AFTER_FACTORIAL);
      this.bar0.write32(eduRegs.IRQ_ACK, 0xffffffff);
    } catch (err) {
      sys.munmap(this.shadowMemory);
      throw err;
    }
    this.watchdog = setInterval(() => this.checkRegisters(), WATCHDOG_MS).unref();
  }

  /** A buffer context for a new vGPU; undefined when every slot is taken. */
  createContext(): BufferContext | undefined {
    const slot = this.freeSlots.shift();
    if (slot === undefined) return undefined;
    const size = Number(this.pageSize);
    const shadow = new Uint8Array(this.shadowMemory.buffer, slot * size, size);
    return new BufferContext(slot, shadow, IOVA_BASE + BigInt(slot) * this.pageSize);
  }

  /** The vGPU is gone: its work is dropped and its slot reused (zeroed at its next restore). */
  destroyContext(context: BufferContext): void {
    this.stop(context);
    if (this.owner === context) this.owner = undefined;
    this.freeSlots.push(context.slot);
    this.freeSlots.sort((a, b) => a - b);
  }

  /** The vGPU reset or closed: its work stops, its pins are dropped, its buffer reads zeros again. */
  resetContext(context: BufferContext): void {
    this.stop(context);
    context.fresh = true;
    context.dirty = false;
    if (this.owner === context) this.owner = undefined;
  }

  factorial(context: BufferContext, n: number, done: (result: number) => void): void {
    this.factorials.push({ context, n, done });
    this.nextFactorial();
  }

  dma(request: DmaRequest): void {
    this.requests.push(request);
    void this.run();
  }

  /**
   * The vGPU's user is unmapping [iova, iova + length): a job holding pins there gives
   * them up now. A transfer already on the real engine is waited for first (it runs
   * on QEMU's side); on the mock, the mapping is pulled and the IOMMU blocks the rest.
   */
  dmaUnmap(context: BufferContext, iova: bigint, length: bigint): void {
    const job = this.active;
    if (!job?.pinned || job.request.context !== context) return;
    const { iova: start, npage } = job.pinned;
    const end = start + BigInt(npage) * this.pageSize;
    if (end <= iova || start >= iova + length) return;
    this.cancel(job);
  }

  /** Unmaps and frees everything; the vGPUs must be gone. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.active) this.cancel(this.active);
    this.requests.length = 0;
    this.factorials.length = 0;
    this.transferWaiter?.();
    try {
      this.listener.close();
      this.shadowMapping.unmap();
    } finally {
      this.handle.close();
      this.handle.container.sys.munmap(this.shadowMemory);
    }
  }

  private stop(context: BufferContext): void {
    for (let i = this.requests.length - 1; i >= 0; i--) if (this.requests[i]!.context === context) this.requests.splice(i, 1);
    for (let i = this.factorials.length - 1; i >= 0; i--) if (this.factorials[i]!.context === context) this.factorials.splice(i, 1);
    if (this.active?.request.context === context) this.cancel(this.active);
  }

  /**
   * Takes a job's pins and mappings away now. A transfer the real engine is running is
   * waited for (it completes on QEMU's side, so it counts as done); one the mock's
   * engine runs completes on this very event loop, so it is cut off: the IOMMU then
   * blocks whatever of it is left.
   */
  private cancel(job: ActiveJob): void {
    const finished = job.programmed && this.handle.container.sys.kind === 'native' && this.drain();
    this.release(job);
    if (finished && !job.request.toRam) job.request.context.dirty = true;
    this.finish(job, finished ? 0 : constants.errno.ECANCELED);
  }

  /** Waits, blocking (dma_unmap must not return before), until the engine is idle; false on time-out. */
  private drain(): boolean {
    const deadline = performance.now() + DRAIN_MS;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      if ((this.bar0.read32(eduRegs.DMA_CMD) & eduDmaCmd.START) === 0) return true;
      if (performance.now() >= deadline) return false;
      Atomics.wait(nap, 0, 0, 1);
    }
  }

  private nextFactorial(): void {
    if (this.factorialRunning || this.closed) return;
    const next = this.factorials.shift();
    if (!next) return;
    this.factorialRunning = next;
    this.counts.factorial++;
    this.bar0.write32(eduRegs.FACTORIAL, next.n);
  }

  private factorialDone(): void {
    const request = this.factorialRunning;
    if (!request || (this.bar0.read32(eduRegs.STATUS) & eduStatus.COMPUTING) !== 0) return;
    this.factorialRunning = undefined;
    const result = this.bar0.read32(eduRegs.FACTORIAL);
    // A request whose vGPU reset meanwhile is no longer queued anywhere: its result is dropped.
    request.done(result);
    this.nextFactorial();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.requests.shift(); next && !this.closed; next = this.requests.shift()) await this.serve(next);
    } finally {
      this.running = false;
    }
  }

  private async serve(request: DmaRequest): Promise<void> {
    const job: ActiveJob = { request, pinned: undefined, range: undefined, mappings: [], programmed: false, finished: false };
    if (!request.busMaster()) return this.finish(job, constants.errno.EPERM);
    const first = request.ramIova - (request.ramIova % this.pageSize);
    const last = request.ramIova + BigInt(request.count) - 1n;
    const npage = Number((last - (last % this.pageSize) - first) / this.pageSize) + 1;
    let views: Uint8Array[];
    try {
      // Only what the vGPU's user mapped, with the access the transfer needs, pins.
      views = request.dma.pin(first, npage, request.toRam ? IOMMU_WRITE : IOMMU_READ);
    } catch (err) {
      return this.finish(job, errno(err));
    }
    job.pinned = { iova: first, npage };
    this.active = job;
    try {
      await this.switchTo(request.context);
      if (job.finished) return; // unmapped or reset while the buffer was switched
      const range = (job.range = this.allocator.allocate(npage));
      views.forEach((view, i) => {
        job.mappings.push(this.handle.container.map({
          iova: range.iova + BigInt(i) * this.pageSize, memory: mappingOf(view), offset: view.byteOffset,
          size: view.byteLength, read: !request.toRam, write: request.toRam,
        }));
      });
      const ram = range.iova + (request.ramIova - first);
      job.programmed = true;
      this.counts.vgpu++;
      const transfer = request.toRam
        ? { src: request.deviceAddress, dst: ram, count: request.count, toRam: true }
        : { src: ram, dst: request.deviceAddress, count: request.count, toRam: false };
      await this.transfer(transfer);
      if (!request.toRam) request.context.dirty = true;
      this.release(job);
      this.finish(job, 0);
    } catch (err) {
      this.release(job);
      this.finish(job, errno(err));
    } finally {
      if (this.active === job) this.active = undefined;
    }
  }

  /** Makes the physical buffer hold `context`'s bytes. */
  private async switchTo(context: BufferContext): Promise<void> {
    if (this.owner === context) return;
    const previous = this.owner;
    this.owner = undefined;
    if (previous?.dirty && !previous.fresh) {
      this.counts.save++;
      await this.transfer({ src: EDU_DMA_BUFFER, dst: previous.shadowIova, count: BUFFER_BYTES, toRam: true });
      previous.dirty = false;
    }
    // Zeroed here, not at reset: a save into this slot may have been in flight then.
    if (context.fresh) context.shadow.fill(0);
    context.fresh = false;
    this.counts.restore++;
    await this.transfer({ src: context.shadowIova, dst: EDU_DMA_BUFFER, count: BUFFER_BYTES, toRam: false });
    if (!context.fresh) this.owner = context;
  }

  /** Runs one transfer on the physical engine and waits for its interrupt. */
  private transfer(t: PhysicalTransfer): Promise<void> {
    if (this.closed) return Promise.reject(Object.assign(new Error('edu-mediated: the parent is closed'), { errno: constants.errno.ENODEV }));
    return new Promise((resolve) => {
      this.transferWaiter = resolve;
      this.bar0.write32(eduRegs.DMA_SRC, Number(t.src));
      this.bar0.write32(eduRegs.DMA_DST, Number(t.dst));
      this.bar0.write32(eduRegs.DMA_COUNT, t.count);
      this.bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.IRQ | (t.toRam ? eduDmaCmd.TO_RAM : 0));
    });
  }

  private transferDone(): void {
    const waiter = this.transferWaiter;
    if (!waiter || (this.bar0.read32(eduRegs.DMA_CMD) & eduDmaCmd.START) !== 0) return;
    this.transferWaiter = undefined;
    waiter();
  }

  private onInterrupt(): void {
    this.options.onInterrupt?.(performance.now());
    this.counts.interrupts++;
    if (this.closed) return;
    const status = this.bar0.read32(eduRegs.IRQ_STATUS);
    if (status !== 0) this.bar0.write32(eduRegs.IRQ_ACK, status);
    if (status & EDU_IRQ_FACTORIAL) this.factorialDone();
    if (status & EDU_IRQ_DMA) this.transferDone();
  }

  /** The interrupt is the normal path; this catches one that never came. */
  private checkRegisters(): void {
    if (this.closed) return;
    if (this.factorialRunning) this.factorialDone();
    if (this.transferWaiter) this.transferDone();
  }

  /** Unmaps the job's pages from the physical container, then unpins them. Idempotent. */
  private release(job: ActiveJob): void {
    for (const m of job.mappings.splice(0)) {
      try {
        m.unmap();
      } catch {
        // The container is gone (closed): nothing is mapped any more.
      }
    }
    if (job.range) this.allocator.free(job.range);
    job.range = undefined;
    const pinned = job.pinned;
    job.pinned = undefined;
    if (pinned) {
      try {
        job.request.dma.unpin(pinned.iova, pinned.npage);
      } catch {
        // The session ended: the core has dropped the pins already.
      }
    }
  }

  private finish(job: ActiveJob, error: number): void {
    if (job.finished) return;
    job.finished = true;
    job.request.done(error);
  }
}
