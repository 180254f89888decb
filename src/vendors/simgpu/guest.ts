// A guest-side driver for simgpu: what a driver inside a VM would do, over the VFIO
// client API only (src/vfio), so tests and the demo reach the vGPU exactly as QEMU and
// a guest would. It takes any device handle: a vGPU opened by UUID through VFIO, or by
// the path of its vfio-user socket. It enables memory and bus mastering (the vGPU does
// no DMA without it), maps DMA memory with the handle's DMA target, sets up the command
// ring in that memory, submits commands, waits for the MSI, and maps the framebuffer (BAR1).
import { sysError } from '../../addon/errors.js';
import type { Mapping, SysLayer } from '../../sys/types.js';
import { pciIrq } from '../../uapi/constants.js';
import { openDevice, pciCommand, type Device, type DeviceHandle, type DmaMapping, type Region, type RegionMapping } from '../../vfio/index.js';
import {
  SIMGPU_COMMAND_SIZE, SIMGPU_ID, SimGpuInt, SimGpuOp, SimGpuReg, SimGpuStatus, encodeCommand, type SimGpuCommand,
} from './registers.js';

const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;

export interface SimGpuGuestOptions {
  /** Ring entries (a power of two, 2..4096); default 256. */
  ringEntries?: number;
  /** Where the ring lives in IOVA space; default 0x10000000. */
  ringIova?: bigint;
  /** How long submit() waits for the interrupt; default 10 s. */
  timeoutMs?: number;
}

/** What the vGPU's identity registers say. */
export interface SimGpuDeviceInfo {
  typeId: number;
  framebufferSize: number;
  heads: number;
  maxWidth: number;
  maxHeight: number;
}

/** Guest memory mapped for the device: `bytes` is the guest's view, `iova` the device's. */
export interface GuestBuffer {
  readonly iova: bigint;
  readonly bytes: Uint8Array;
  /** Unmaps the buffer from the device's DMA space, keeping the memory: returns the bytes unmapped. */
  unmapDma(): bigint;
  /** Unmaps it from the device's DMA space (if still mapped) and frees the memory. Idempotent. */
  release(): void;
}

export interface SubmitResult {
  /** INT_STATUS as the interrupt left it (acknowledged afterwards). */
  intStatus: number;
  /** COMPLETED after the run. */
  completed: number;
  /** FENCE after the run. */
  fence: number;
  /** Set when the engine halted: which command failed and why. */
  error?: { code: number; index: number; errno: number };
}

/** Waits, one event-loop turn at a time, until `done()`; ETIMEDOUT after timeoutMs. */
async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw sysError('ETIMEDOUT', 'poll', undefined, `simgpu: condition not met within ${timeoutMs} ms`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** A buffer's memory and its DMA mapping on the current handle: what a move replaces. */
interface BufferBacking {
  memory: Mapping;
  /** Undefined for memory never mapped (a move of a buffer the guest had unmapped). */
  mapping: DmaMapping | undefined;
  mapped: boolean;
  readonly size: number;
  readonly read: boolean;
  readonly write: boolean;
}

/**
 * A move of the guest to another handle of the same vGPU type (a migration's target):
 * prepared while the source still runs (the guest's memory allocated and DMA-mapped on
 * the target at the same IOVAs), completed once the source is stopped and the target
 * holds the device state (the memory's bytes copied, the guest switched over, its
 * interrupt bound on the target), or aborted (the target's copies freed).
 */
export interface GuestMove {
  /** Copies the guest memory and switches the guest to the target handle; returns the bytes copied. */
  complete(): number;
  abort(): void;
}

export class SimGpuGuest {
  bar0: Region;
  readonly info: SimGpuDeviceInfo;
  private readonly ringEntries: number;
  private readonly timeoutMs: number;
  private readonly ring: GuestBuffer;
  private readonly buffers = new Set<GuestBuffer>();
  /** The last submit, which the next one waits for. */
  private previous: Promise<unknown> = Promise.resolve();
  /** Pending interrupt waits, failed by close(). */
  private readonly waiters = new Set<(err?: Error) => void>();
  private closed = false;

  private readonly backings = new Map<GuestBuffer, BufferBacking>();

  private constructor(public handle: DeviceHandle, options: SimGpuGuestOptions) {
    this.ringEntries = options.ringEntries ?? 256;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const { device } = handle;
    device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
    this.bar0 = device.bar(0);
    const id = this.bar0.read32(SimGpuReg.ID);
    if (id !== SIMGPU_ID) throw sysError('ENODEV', 'probe', undefined, `${device.name} is not a simgpu (id 0x${id.toString(16)})`);
    this.info = {
      typeId: this.bar0.read32(SimGpuReg.TYPE_ID),
      framebufferSize: this.bar0.read32(SimGpuReg.FB_SIZE_LO) + this.bar0.read32(SimGpuReg.FB_SIZE_HI) * 2 ** 32,
      heads: this.bar0.read32(SimGpuReg.HEADS),
      maxWidth: this.bar0.read32(SimGpuReg.MAX_RES) >>> 16,
      maxHeight: this.bar0.read32(SimGpuReg.MAX_RES) & 0xffff,
    };
    this.ring = this.allocate(this.ringEntries * SIMGPU_COMMAND_SIZE, options.ringIova ?? 0x1000_0000n, { write: false });
    this.programRing();
    this.bar0.write32(SimGpuReg.INT_ENABLE, SimGpuInt.DONE | SimGpuInt.ERROR);
    device.irqs.enable(MSI);
  }

  /**
   * Opens the vGPU `name` and brings it up: a UUID through VFIO on `sys` (its own group
   * and a new container), or the path of its vfio-user socket.
   */
  static open(sys: SysLayer, name: string, options: SimGpuGuestOptions = {}): SimGpuGuest {
    return SimGpuGuest.attach(openDevice(sys, name), options);
  }

  /** Brings up the simgpu behind an open handle, which the guest then owns (closed with it, or now if this fails). */
  static attach(handle: DeviceHandle, options: SimGpuGuestOptions = {}): SimGpuGuest {
    try {
      return new SimGpuGuest(handle, options);
    } catch (err) {
      handle.close();
      throw err;
    }
  }

  get device(): Device {
    return this.handle.device;
  }

  /** The handle's fd layer, which guest memory comes from. */
  get sys(): SysLayer {
    return this.handle.sys;
  }

  /**
   * Maps `size` bytes of new guest memory at `iova` for the device (VFIO_IOMMU_MAP_DMA,
   * or VFIO_USER_DMA_MAP).
   * `read`/`write` are the device's permissions (both by default).
   */
  allocate(size: number, iova: bigint, access: { read?: boolean; write?: boolean } = {}): GuestBuffer {
    const read = access.read ?? true;
    const write = access.write ?? true;
    const first = this.backingOn(this.handle, size, iova, read, write, true);
    let live = true;
    // A move replaces the backing: every use looks the current one up.
    const current = (): BufferBacking => this.backings.get(buffer) ?? first;
    const unmapDma = (): bigint => {
      const backing = current();
      if (!backing.mapped || this.handle.dma.closed) return 0n;
      backing.mapped = false;
      return backing.mapping?.unmap() ?? 0n;
    };
    const buffer: GuestBuffer = {
      iova,
      get bytes() {
        return new Uint8Array(current().memory.buffer, 0, size);
      },
      unmapDma,
      release: () => {
        if (!live) return;
        live = false;
        const backing = current();
        this.buffers.delete(buffer);
        try {
          unmapDma();
        } finally {
          this.backings.delete(buffer);
          this.sys.munmap(backing.memory);
        }
      },
    };
    this.buffers.add(buffer);
    this.backings.set(buffer, first);
    return buffer;
  }

  /** New zeroed memory from `handle`'s fd layer, DMA-mapped at `iova` on it when `map`. */
  private backingOn(handle: DeviceHandle, size: number, iova: bigint, read: boolean, write: boolean, map: boolean): BufferBacking {
    const memory: Mapping = handle.sys.allocate(size);
    // Every page written before the pin: Linux 6.1's type1 pins a read-only mapping of
    // untouched anonymous memory as the shared zero page, which the device would then
    // read while the guest's later writes (the ring's commands) land in fresh pages.
    new Uint8Array(memory.buffer, 0, size).fill(0);
    if (!map) return { memory, mapping: undefined, mapped: false, size, read, write };
    try {
      const mapping = handle.dma.map({ iova, memory, read, write });
      return { memory, mapping, mapped: true, size, read, write };
    } catch (err) {
      handle.sys.munmap(memory);
      throw err;
    }
  }

  /** Every buffer's bytes, in IOVA order: the guest's memory as the device sees it. */
  memorySnapshot(): Uint8Array {
    const buffers = [...this.buffers].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
    return Buffer.concat(buffers.map((b) => b.bytes));
  }

  /**
   * Resolves once every batch submitted so far has settled: the guest has nothing in
   * flight (what a VMM waits for before it stops the device).
   */
  async idle(): Promise<void> {
    await this.previous;
  }

  /**
   * Prepares the guest's move to `target`, another handle of a vGPU of the same type:
   * its memory is allocated and DMA-mapped there now. See GuestMove; nothing changes for
   * the guest until complete(), which must run with the guest idle and the source device
   * stopped.
   */
  prepareMove(target: DeviceHandle): GuestMove {
    const moved = new Map<GuestBuffer, BufferBacking>();
    const abort = (): void => {
      for (const b of moved.values()) {
        try {
          if (b.mapped && !target.dma.closed) b.mapping?.unmap();
        } finally {
          target.sys.munmap(b.memory);
        }
      }
      moved.clear();
    };
    try {
      for (const [buffer, b] of this.backings) moved.set(buffer, this.backingOn(target, b.size, buffer.iova, b.read, b.write, b.mapped));
    } catch (err) {
      abort();
      throw err;
    }
    let done = false;
    return {
      abort: () => {
        if (!done) abort();
        done = true;
      },
      complete: () => {
        if (done) throw new Error('this move is over');
        done = true;
        let bytes = 0;
        for (const [buffer, next] of moved) {
          const old = this.backings.get(buffer)!;
          new Uint8Array(next.memory.buffer, 0, next.size).set(new Uint8Array(old.memory.buffer, 0, old.size));
          bytes += next.size;
        }
        const source = this.handle;
        this.handle = target;
        this.bar0 = target.device.bar(0);
        target.device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
        target.device.irqs.enable(MSI);
        for (const [buffer, next] of moved) {
          const old = this.backings.get(buffer)!;
          this.backings.set(buffer, next);
          source.sys.munmap(old.memory);
        }
        // The source handle stays open (its device stopped) for the caller to close.
        return bytes;
      },
    };
  }

  /**
   * Writes the commands into the ring, rings the doorbell and waits for the interrupt.
   * On an error the engine's report is returned and the ring emptied (the commands
   * after the failing one are dropped). `whileRunning` runs once the engine has moved
   * bytes of the first command (or finished), while the batch is still in flight.
   * Closing the guest while a submit waits rejects it with ECANCELED. Batches submitted
   * together run one after the other.
   */
  submit(commands: readonly SimGpuCommand[], options: { whileRunning?: () => void } = {}): Promise<SubmitResult> {
    // One batch at a time: the next starts when the previous has settled.
    const run = this.previous.then(() => this.run(commands, options), () => this.run(commands, options));
    this.previous = run.catch(() => undefined);
    return run;
  }

  private async run(commands: readonly SimGpuCommand[], options: { whileRunning?: () => void }): Promise<SubmitResult> {
    if (this.closed) throw sysError('EBADF', 'submit', undefined, 'the simgpu guest is closed');
    if (commands.length >= this.ringEntries) throw new RangeError(`at most ${this.ringEntries - 1} commands fit the ring`);
    const bar0 = this.bar0;
    let tail = bar0.read32(SimGpuReg.RING_TAIL);
    for (const cmd of commands) {
      encodeCommand(cmd, this.ring.bytes.subarray(tail * SIMGPU_COMMAND_SIZE, (tail + 1) * SIMGPU_COMMAND_SIZE));
      tail = (tail + 1) % this.ringEntries;
    }
    bar0.write32(SimGpuReg.RING_TAIL, tail);
    let interrupt = this.nextInterrupt();
    interrupt.catch(() => undefined); // awaited below; handled even if whileRunning throws first
    bar0.write32(SimGpuReg.DOORBELL, 1);
    if (options.whileRunning) {
      await until(() => bar0.read32(SimGpuReg.PROGRESS) > 0 || (bar0.read32(SimGpuReg.STATUS) & SimGpuStatus.BUSY) === 0, this.timeoutMs);
      options.whileRunning();
    }
    await interrupt;
    let intStatus = bar0.read32(SimGpuReg.INT_STATUS);
    while ((intStatus & (SimGpuInt.DONE | SimGpuInt.ERROR)) === 0) {
      interrupt = this.nextInterrupt();
      await interrupt;
      intStatus = bar0.read32(SimGpuReg.INT_STATUS);
    }
    const result: SubmitResult = { intStatus, completed: bar0.read32(SimGpuReg.COMPLETED), fence: bar0.read32(SimGpuReg.FENCE) };
    if (intStatus & SimGpuInt.ERROR) {
      result.error = { code: bar0.read32(SimGpuReg.ERROR_CODE), index: bar0.read32(SimGpuReg.ERROR_INDEX), errno: bar0.read32(SimGpuReg.ERROR_ERRNO) };
    }
    bar0.write32(SimGpuReg.INT_STATUS, intStatus);
    if (result.error) this.programRing();
    return result;
  }

  fill(dst: bigint, length: number, pattern: number): Promise<SubmitResult> {
    return this.submit([{ op: SimGpuOp.FILL, length, dst, src: BigInt(pattern >>> 0) }]);
  }

  copy(dst: bigint, src: bigint, length: number): Promise<SubmitResult> {
    return this.submit([{ op: SimGpuOp.COPY, length, dst, src }]);
  }

  blitToFramebuffer(fbOffset: number, src: bigint, length: number): Promise<SubmitResult> {
    return this.submit([{ op: SimGpuOp.BLIT_TO_FB, length, dst: BigInt(fbOffset), src }]);
  }

  fence(dst: bigint, value: bigint): Promise<SubmitResult> {
    return this.submit([{ op: SimGpuOp.FENCE, length: 8, dst, src: value }]);
  }

  /** mmap of part of the framebuffer (BAR1); unmapped when the device closes. */
  mapFramebuffer(offset = 0, size = Math.min(this.info.framebufferSize, 1 << 20)): RegionMapping {
    return this.device.bar(1).mmap({ offset, size });
  }

  /** Closes the handle (device, group and container, or the vfio-user connection), then frees the guest memory. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fail of [...this.waiters]) fail(sysError('ECANCELED', 'poll', undefined, 'the simgpu guest was closed'));
    try {
      this.handle.close();
    } finally {
      for (const b of [...this.buffers]) b.release();
    }
  }

  /** Resolves at the next MSI (listening starts now); ETIMEDOUT, or ECANCELED when the guest closes. */
  private nextInterrupt(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        listener.close();
        this.waiters.delete(finish);
        if (err) reject(err);
        else resolve();
      };
      const listener = this.device.irqs.on(MSI, 0, () => finish());
      const timer = setTimeout(() => finish(sysError('ETIMEDOUT', 'poll', undefined, `no simgpu interrupt within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiters.add(finish);
    });
  }

  /** Points the engine at the ring (which also resets HEAD and TAIL). */
  private programRing(): void {
    this.bar0.write32(SimGpuReg.RING_BASE_LO, Number(this.ring.iova & 0xffff_ffffn));
    this.bar0.write32(SimGpuReg.RING_BASE_HI, Number(this.ring.iova >> 32n));
    this.bar0.write32(SimGpuReg.RING_SIZE, this.ringEntries);
  }
}
