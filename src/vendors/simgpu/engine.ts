// simgpu's command engine: the ring registers of BAR0 and the work they start. A
// doorbell schedules the engine; it runs one step per event-loop turn (setImmediate),
// so work is asynchronous and serialized per vGPU: fetch the command at HEAD from the
// ring in guest memory, pin the guest memory the command names, move up to
// `bytesPerStep` bytes, and when the command is done unpin, advance HEAD, and go on
// until HEAD reaches TAIL. Then INT_STATUS.DONE is set and the interrupt raised.
//
// Errors never reach the host: a bad command, Bus Master Enable clear in COMMAND, or a
// failed pin (the IOVA is not mapped, or mapped without the access) halts the engine
// with ERROR_CODE/INDEX/ERRNO set and raises INT_STATUS.ERROR; nothing is copied for a
// command whose pins failed, because every pin is taken before the first byte moves. The ring stays pinned while the
// engine runs and is unpinned when it stops, so a remap of the ring between runs is
// followed. When the user unmaps memory a running command holds pinned (dmaUnmap), the
// pins are dropped at once and the command fails with DMA_UNMAPPED (what it already
// wrote stays written). BLIT_TO_FB maps just the framebuffer pages it writes, for the
// command's lifetime: the window is unmapped when the command ends, fails or is stopped.
import { isSysError } from '../../addon/errors.js';
import type { DmaSpace } from '../../device/backend.js';
import {
  SIMGPU_COMMAND_SIZE, SIMGPU_MAX_TRANSFER, SIMGPU_RING_MAX, SIMGPU_RING_MIN, SimGpuError, SimGpuInt, SimGpuOp,
  SimGpuReg, SimGpuStatus, decodeCommand, type SimGpuCommand,
} from './registers.js';
import type { MemoryBacking } from '../../vgpu/vendor.js';
import { MappedWindow, PinnedRange, bufferWindow, copyBetween, fillPattern, readFrom, writeInto, type ByteWindow } from './pinned.js';

const IOMMU_READ = 1;
const IOMMU_WRITE = 2;
const EIO = 5;

/** What the engine reaches outside itself. */
export interface EngineHost {
  /** The open session's DMA space, or undefined while the device is closed. */
  dma(): DmaSpace | undefined;
  /** Raises the vGPU's interrupt (vector 0: MSI when enabled, else INTx). */
  raise(): void;
  /** COMMAND's Bus Master Enable, live: no DMA while it is clear. */
  busMaster(): boolean;
  /** The vGPU's framebuffer (BAR1's memory). */
  readonly framebuffer: MemoryBacking;
  readonly pageSize: number;
  /** Bytes a command moves per event-loop turn. */
  readonly bytesPerStep: number;
}

interface Job {
  readonly cmd: SimGpuCommand;
  readonly index: number;
  readonly src: ByteWindow | undefined;
  readonly dst: ByteWindow | undefined;
  readonly pins: PinnedRange[];
  /** The framebuffer pages a BLIT_TO_FB writes, mapped while it lives. */
  readonly window: MappedWindow | undefined;
  done: number;
  /** Set by dmaUnmap: the job's memory is gone. */
  unmapped: boolean;
}

/** A failure that halts the engine. */
class EngineFault {
  constructor(readonly code: number, readonly errno = 0) {}
}

export class SimGpuEngine {
  private ringBase = 0n;
  private ringSize = 0;
  private head = 0;
  private tail = 0;
  private running = false;
  private halted = false;
  private errorCode = 0;
  private errorIndex = 0;
  private errorErrno = 0;
  private intStatus = 0;
  private intEnable = 0;
  private fence = 0;
  private completed = 0;
  private ring: PinnedRange | undefined;
  private job: Job | undefined;
  private timer: NodeJS.Immediate | undefined;
  /** Quiesced for migration: no step runs, pins and the job stay as they are. */
  private paused = false;
  private readonly entry = new Uint8Array(SIMGPU_COMMAND_SIZE);

  constructor(private readonly host: EngineHost) {}

  /** Whether a register offset (4-byte aligned) belongs to the engine. */
  static owns(offset: number): boolean {
    return offset >= SimGpuReg.STATUS && offset <= SimGpuReg.PROGRESS;
  }

  read(offset: number): number {
    switch (offset) {
      case SimGpuReg.STATUS: return (this.running ? SimGpuStatus.BUSY : 0) | (this.halted ? SimGpuStatus.HALTED : 0);
      case SimGpuReg.ERROR_CODE: return this.errorCode;
      case SimGpuReg.ERROR_INDEX: return this.errorIndex;
      case SimGpuReg.ERROR_ERRNO: return this.errorErrno;
      case SimGpuReg.INT_STATUS: return this.intStatus;
      case SimGpuReg.INT_ENABLE: return this.intEnable;
      case SimGpuReg.RING_BASE_LO: return Number(this.ringBase & 0xffff_ffffn);
      case SimGpuReg.RING_BASE_HI: return Number(this.ringBase >> 32n);
      case SimGpuReg.RING_SIZE: return this.ringSize;
      case SimGpuReg.RING_HEAD: return this.head;
      case SimGpuReg.RING_TAIL: return this.tail;
      case SimGpuReg.FENCE: return this.fence;
      case SimGpuReg.COMPLETED: return this.completed;
      case SimGpuReg.PROGRESS: return this.job?.done ?? 0;
      default: return 0;
    }
  }

  /** A write of `value` to the bytes of the register selected by `byteMask`. */
  write(offset: number, value: number, byteMask: number): void {
    const merge = (old: number): number => ((old & ~byteMask) | (value & byteMask)) >>> 0;
    switch (offset) {
      case SimGpuReg.INT_STATUS: this.acknowledge(value & byteMask); break;
      case SimGpuReg.INT_ENABLE: this.intEnable = merge(this.intEnable) & (SimGpuInt.DONE | SimGpuInt.ERROR); break;
      case SimGpuReg.RING_BASE_LO:
        if (!this.running) this.setRing(BigInt(merge(Number(this.ringBase & 0xffff_ffffn))) | (this.ringBase & ~0xffff_ffffn), this.ringSize);
        break;
      case SimGpuReg.RING_BASE_HI:
        if (!this.running) this.setRing((BigInt(merge(Number(this.ringBase >> 32n))) << 32n) | (this.ringBase & 0xffff_ffffn), this.ringSize);
        break;
      case SimGpuReg.RING_SIZE: if (!this.running) this.setRing(this.ringBase, merge(this.ringSize)); break;
      case SimGpuReg.RING_TAIL: this.tail = merge(this.tail); break;
      case SimGpuReg.DOORBELL: this.doorbell(); break;
      default: break; // read-only or unused
    }
  }

  /** The device was opened or reset: power-on state, no pins, no work. */
  reset(): void {
    this.stop();
    this.paused = false;
    this.ringBase = 0n;
    this.ringSize = 0;
    this.head = 0;
    this.tail = 0;
    this.halted = false;
    this.errorCode = 0;
    this.errorIndex = 0;
    this.errorErrno = 0;
    this.intStatus = 0;
    this.intEnable = 0;
    this.fence = 0;
    this.completed = 0;
  }

  /** Stops work and drops every pin (release, reset). Registers keep their values. */
  stop(): void {
    if (this.timer) clearImmediate(this.timer);
    this.timer = undefined;
    this.dropJob();
    this.ring?.unpin();
    this.ring = undefined;
    this.running = false;
  }

  /** The user is unmapping [iova, iova + length): drop every pin there; the job holding them fails. */
  dmaUnmap(iova: bigint, length: bigint): void {
    if (this.job?.pins.some((p) => p.overlaps(iova, length))) {
      for (const p of this.job.pins) p.unpin();
      this.job.unmapped = true;
    }
    if (this.ring?.overlaps(iova, length)) {
      this.ring.unpin();
      this.ring = undefined; // fetched again (through the new mapping, if any) at the next command
    }
  }

  // ---- migration ----

  /** Quiesce: no more steps (so no DMA, no interrupt) until unpause; the job keeps its pins. */
  pause(): void {
    this.paused = true;
    if (this.timer) clearImmediate(this.timer);
    this.timer = undefined;
  }

  unpause(): void {
    this.paused = false;
    if (this.running) this.schedule();
  }

  /**
   * The engine's state in three pieces: its registers, the ring (with the progress of
   * the command in flight) and the interrupt status. Little-endian u32s.
   */
  save(): { registers: Uint8Array; ring: Uint8Array; interrupts: Uint8Array } {
    const u32s = (values: number[]): Uint8Array => {
      const out = new Uint8Array(values.length * 4);
      const dv = new DataView(out.buffer);
      values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
      return out;
    };
    return {
      registers: u32s([this.intEnable, this.errorCode, this.errorIndex, this.errorErrno, this.fence, this.completed]),
      ring: u32s([Number(this.ringBase & 0xffff_ffffn), Number(this.ringBase >> 32n), this.ringSize, this.head, this.tail,
        this.running ? 1 : 0, this.halted ? 1 : 0, this.job ? 1 : 0, this.job?.done ?? 0]),
      interrupts: u32s([this.intStatus]),
    };
  }

  /**
   * Checks saved state (throws an Error saying what is wrong) and returns its load: the
   * registers, the ring and the interrupt status; a ring that was running has its pins
   * taken again here, through this device's DMA (the command in flight carries on from
   * the bytes it had done). A pin that fails halts the engine as any DMA fault does.
   */
  prepareLoad(saved: { registers?: Uint8Array; ring?: Uint8Array; interrupts?: Uint8Array }): () => void {
    const read = (bytes: Uint8Array | undefined, name: string, count: number): number[] => {
      if (!bytes || bytes.byteLength !== count * 4) throw new Error(`the ${name} section must be ${count * 4} bytes`);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return Array.from({ length: count }, (_, i) => dv.getUint32(i * 4, true));
    };
    const [intEnable, errorCode, errorIndex, errorErrno, fence, completed] = read(saved.registers, 'registers', 6) as [number, number, number, number, number, number];
    const [baseLo, baseHi, ringSize, head, tail, running, halted, hasJob, jobDone] = read(saved.ring, 'ring', 9) as [number, number, number, number, number, number, number, number, number];
    const [intStatus] = read(saved.interrupts, 'interrupts', 1) as [number];
    if (running > 1 || halted > 1 || hasJob > 1 || (hasJob && !running)) throw new Error('the ring section has bad flags');
    if (ringSize > SIMGPU_RING_MAX || (ringSize !== 0 && (head >= ringSize || tail >= ringSize))) throw new Error('the ring section has a bad ring');
    if (jobDone > SIMGPU_MAX_TRANSFER) throw new Error('the ring section has a bad progress');
    if ((intEnable & ~(SimGpuInt.DONE | SimGpuInt.ERROR)) !== 0 || (intStatus & ~(SimGpuInt.DONE | SimGpuInt.ERROR)) !== 0) {
      throw new Error('the interrupt bits are not simgpu\'s');
    }
    return () => {
      this.stop();
      this.ringBase = (BigInt(baseHi) << 32n) | BigInt(baseLo);
      this.ringSize = ringSize;
      this.head = head;
      this.tail = tail;
      this.halted = halted === 1;
      this.intEnable = intEnable;
      this.errorCode = errorCode;
      this.errorIndex = errorIndex;
      this.errorErrno = errorErrno;
      this.fence = fence;
      this.completed = completed;
      this.intStatus = intStatus;
      this.running = running === 1;
      if (!hasJob) return;
      // Pins re-established on this side: the ring, and what the command in flight names.
      const dma = this.host.dma();
      try {
        if (!dma) throw new EngineFault(SimGpuError.DMA_FAULT, EIO);
        const job = this.fetch(dma);
        job.done = Math.min(jobDone, job.cmd.length);
        this.job = job;
      } catch (err) {
        this.halt(err instanceof EngineFault ? err : internalFault(err));
      }
    };
  }

  /** Pins held now (for tests and diagnostics). */
  get pinnedRanges(): number {
    return (this.ring?.isPinned ? 1 : 0) + (this.job?.pins.filter((p) => p.isPinned).length ?? 0);
  }

  private setRing(base: bigint, size: number): void {
    this.ringBase = base;
    this.ringSize = size;
    this.head = 0;
    this.tail = 0;
  }

  private acknowledge(bits: number): void {
    this.intStatus &= ~bits;
    if (bits & SimGpuInt.ERROR) this.halted = false;
  }

  private doorbell(): void {
    if (this.halted || this.running || !this.host.dma()) return;
    this.running = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.paused) return;
    this.timer ??= setImmediate(() => {
      this.timer = undefined;
      this.step();
    });
  }

  private step(): void {
    const dma = this.host.dma();
    if (!this.running || !dma || this.paused) return;
    try {
      if (!this.job && this.head === this.tail) {
        this.finish();
        return;
      }
      // As a real device: no DMA, not even the ring fetch, without Bus Master Enable.
      if (!this.host.busMaster()) throw new EngineFault(SimGpuError.NO_BUS_MASTER);
      this.job ??= this.fetch(dma);
      this.advance(this.job);
    } catch (err) {
      this.halt(err instanceof EngineFault ? err : internalFault(err));
      return;
    }
    this.schedule();
  }

  /** Reads the command at HEAD and pins what it names. */
  private fetch(dma: DmaSpace): Job {
    if (!(this.ringSize >= SIMGPU_RING_MIN && this.ringSize <= SIMGPU_RING_MAX && (this.ringSize & (this.ringSize - 1)) === 0) ||
        this.ringBase % BigInt(SIMGPU_COMMAND_SIZE) !== 0n || this.tail >= this.ringSize) {
      throw new EngineFault(SimGpuError.BAD_RING);
    }
    this.ring ??= this.pin(dma, this.ringBase, this.ringSize * SIMGPU_COMMAND_SIZE, IOMMU_READ);
    const cmd = decodeCommand(readFromInto(this.ring, this.head * SIMGPU_COMMAND_SIZE, this.entry));
    const pins: PinnedRange[] = [];
    const job = (src: ByteWindow | undefined, dst: ByteWindow | undefined, window?: MappedWindow): Job =>
      ({ cmd, index: this.head, src, dst, pins, window, done: 0, unmapped: false });
    try {
      switch (cmd.op) {
        case SimGpuOp.NOP:
          return job(undefined, undefined);
        case SimGpuOp.FILL:
          checkLength(cmd.length);
          pins.push(this.pin(dma, cmd.dst, cmd.length, IOMMU_WRITE));
          return job(undefined, pins[0]);
        case SimGpuOp.COPY: {
          checkLength(cmd.length);
          const len = BigInt(cmd.length);
          if (cmd.length > 0 && cmd.src < cmd.dst + len && cmd.dst < cmd.src + len) throw new EngineFault(SimGpuError.OVERLAP);
          pins.push(this.pin(dma, cmd.src, cmd.length, IOMMU_READ));
          pins.push(this.pin(dma, cmd.dst, cmd.length, IOMMU_WRITE));
          return job(pins[0], pins[1]);
        }
        case SimGpuOp.BLIT_TO_FB: {
          checkLength(cmd.length);
          const fb = this.host.framebuffer;
          if (cmd.dst + BigInt(cmd.length) > BigInt(fb.size)) throw new EngineFault(SimGpuError.FB_RANGE);
          pins.push(this.pin(dma, cmd.src, cmd.length, IOMMU_READ));
          if (cmd.length === 0) return job(pins[0], bufferWindow(new Uint8Array(0)));
          const window = MappedWindow.map(fb, this.host.pageSize, Number(cmd.dst), cmd.length);
          return job(pins[0], window, window);
        }
        case SimGpuOp.FENCE:
          if (cmd.length !== 0 && cmd.length !== 8) throw new EngineFault(SimGpuError.BAD_LENGTH);
          pins.push(this.pin(dma, cmd.dst, 8, IOMMU_WRITE));
          return job(undefined, pins[0]);
        default:
          throw new EngineFault(SimGpuError.BAD_OPCODE);
      }
    } catch (err) {
      for (const p of pins) p.unpin();
      throw err;
    }
  }

  /** Moves up to bytesPerStep bytes of the job; completes it when all are done. */
  private advance(job: Job): void {
    if (job.unmapped) throw new EngineFault(SimGpuError.DMA_UNMAPPED);
    const { cmd } = job;
    if (cmd.op === SimGpuOp.FENCE) {
      const value = new Uint8Array(8);
      new DataView(value.buffer).setBigUint64(0, cmd.src, true);
      writeInto(job.dst!, 0, value);
      this.fence = Number(cmd.src & 0xffff_ffffn);
    } else if (cmd.op !== SimGpuOp.NOP) {
      const n = Math.min(this.host.bytesPerStep, cmd.length - job.done);
      if (cmd.op === SimGpuOp.FILL) fillPattern(job.dst!, job.done, n, Number(cmd.src & 0xffff_ffffn), 0);
      else copyBetween(job.src!, job.done, job.dst!, job.done, n);
      job.done += n;
      if (job.done < cmd.length) return;
    }
    this.dropJob();
    this.completed = (this.completed + 1) >>> 0;
    this.head = (this.head + 1) % this.ringSize;
  }

  private pin(dma: DmaSpace, iova: bigint, length: number, prot: number): PinnedRange {
    try {
      return PinnedRange.pin(dma, this.host.pageSize, iova, length, prot);
    } catch (err) {
      throw new EngineFault(SimGpuError.DMA_FAULT, isSysError(err) ? err.errno : EIO);
    }
  }

  private finish(): void {
    this.ring?.unpin();
    this.ring = undefined;
    this.running = false;
    this.signal(SimGpuInt.DONE);
  }

  private halt(fault: EngineFault): void {
    const index = this.job?.index ?? this.head;
    this.dropJob();
    this.ring?.unpin();
    this.ring = undefined;
    this.running = false;
    this.halted = true;
    this.errorCode = fault.code;
    this.errorErrno = fault.errno;
    this.errorIndex = index;
    // The failing command is consumed: after the acknowledgement the ring goes on.
    if (this.ringSize > 0 && fault.code !== SimGpuError.BAD_RING) this.head = (index + 1) % this.ringSize;
    this.signal(SimGpuInt.ERROR);
  }

  private dropJob(): void {
    const job = this.job;
    if (!job) return;
    this.job = undefined;
    for (const p of job.pins) p.unpin();
    job.window?.unmap();
  }

  /** Framebuffer windows mapped now (for tests and diagnostics). */
  get mappedWindows(): number {
    return this.job?.window?.isMapped ? 1 : 0;
  }

  private signal(bit: number): void {
    this.intStatus |= bit;
    if (!(this.intEnable & bit)) return;
    try {
      this.host.raise();
    } catch (err) {
      // Delivery is the core's business; a failure there must not stop the engine.
      process.emitWarning(`simgpu: raising the interrupt failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** A defect in the engine halts this vGPU alone, never the host process. */
function internalFault(err: unknown): EngineFault {
  process.emitWarning(`simgpu engine: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  return new EngineFault(SimGpuError.INTERNAL, EIO);
}

function checkLength(length: number): void {
  if (length > SIMGPU_MAX_TRANSFER) throw new EngineFault(SimGpuError.BAD_LENGTH);
}

function readFromInto(src: ByteWindow, at: number, into: Uint8Array): Uint8Array {
  into.set(readFrom(src, at, into.byteLength));
  return into;
}
