// A simgpu workload: the user of a vGPU in a migration, what a guest's GPU driver keeps
// doing while the VMM moves its device. Each step is one batch: FILL a source buffer
// with the step's pattern, COPY it to a destination buffer, BLIT that into the
// framebuffer slot of the step, and FENCE the step's number; then the guest checks
// its memory (the destination holds the pattern, the fence the number). The
// framebuffer's expected contents are kept, so that after a move every slot written
// before, during and after it can be checked byte for byte.
import { sysError } from '../../addon/errors.js';
import type { GuestBuffer, SimGpuGuest } from './guest.js';
import { SimGpuOp } from './registers.js';

/** Bytes each step moves (one framebuffer slot). */
export const WORKLOAD_CHUNK = 64 * 1024;
const SRC_IOVA = 0x2000_0000n;
const DST_IOVA = 0x2010_0000n;
const FENCE_IOVA = 0x2020_0000n;

/** The 32-bit pattern of step n. */
export function stepPattern(n: number): number {
  return Math.imul(0x9e3779b9, n + 1) >>> 0;
}

function holdsPattern(bytes: Uint8Array, pattern: number): boolean {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return words.every((w) => w === pattern);
}

export class SimGpuWorkload {
  readonly slots: number;
  /** Steps completed and checked. */
  steps = 0;
  /** What went wrong, in the guest's words; empty while all is well. */
  readonly failures: string[] = [];
  private readonly src: GuestBuffer;
  private readonly dst: GuestBuffer;
  private readonly fence: GuestBuffer;
  /** The pattern of the last step blitted to each slot (undefined: never written). */
  private readonly framebuffer: (number | undefined)[];
  private loop: Promise<void> | undefined;
  private stopping = false;

  constructor(readonly guest: SimGpuGuest, slots = 16) {
    if (guest.info.framebufferSize < slots * WORKLOAD_CHUNK) throw new RangeError(`${slots} slots of ${WORKLOAD_CHUNK} bytes do not fit the framebuffer`);
    this.slots = slots;
    this.framebuffer = new Array<number | undefined>(slots).fill(undefined);
    this.src = guest.allocate(WORKLOAD_CHUNK, SRC_IOVA, { write: true });
    this.dst = guest.allocate(WORKLOAD_CHUNK, DST_IOVA);
    this.fence = guest.allocate(4096, FENCE_IOVA);
  }

  /** Framebuffer bytes the workload writes: slots * WORKLOAD_CHUNK from offset 0. */
  get framebufferSpan(): number {
    return this.slots * WORKLOAD_CHUNK;
  }

  /** One step: the batch, then the guest's checks. */
  async step(): Promise<void> {
    const n = this.steps;
    const pattern = stepPattern(n);
    const slot = n % this.slots;
    const result = await this.guest.submit([
      { op: SimGpuOp.FILL, length: WORKLOAD_CHUNK, dst: this.src.iova, src: BigInt(pattern) },
      { op: SimGpuOp.COPY, length: WORKLOAD_CHUNK, dst: this.dst.iova, src: this.src.iova },
      { op: SimGpuOp.BLIT_TO_FB, length: WORKLOAD_CHUNK, dst: BigInt(slot * WORKLOAD_CHUNK), src: this.dst.iova },
      { op: SimGpuOp.FENCE, length: 8, dst: this.fence.iova, src: BigInt(n + 1) },
    ]);
    if (result.error) {
      this.failures.push(`step ${n}: the engine halted (code ${result.error.code} at command ${result.error.index}, errno ${result.error.errno})`);
      return;
    }
    if (!holdsPattern(this.dst.bytes, pattern)) this.failures.push(`step ${n}: the destination buffer does not hold 0x${pattern.toString(16)}`);
    const fence = new DataView(this.fence.bytes.buffer, this.fence.bytes.byteOffset, 8).getBigUint64(0, true);
    if (fence !== BigInt(n + 1)) this.failures.push(`step ${n}: the fence reads ${fence}, not ${n + 1}`);
    this.framebuffer[slot] = pattern;
    this.steps++;
  }

  /** Runs `count` steps one after the other. */
  async run(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.step();
  }

  /** Starts stepping in the background until stop(). */
  start(): void {
    if (this.loop) throw sysError('EBUSY', 'workload', undefined, 'the workload already runs');
    this.stopping = false;
    this.loop = (async () => {
      while (!this.stopping) await this.step();
    })();
  }

  /** Stops the background loop after the step in flight, with the guest idle. */
  async stop(): Promise<void> {
    this.stopping = true;
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    await this.guest.idle();
  }

  /**
   * The framebuffer against what the steps wrote: `read(offset, length)` gives the
   * device's bytes. Returns the slots that differ.
   */
  checkFramebuffer(read: (offset: number, length: number) => Uint8Array): number[] {
    const bad: number[] = [];
    for (let slot = 0; slot < this.slots; slot++) {
      const pattern = this.framebuffer[slot];
      if (pattern === undefined) continue;
      if (!holdsPattern(read(slot * WORKLOAD_CHUNK, WORKLOAD_CHUNK), pattern)) bad.push(slot);
    }
    return bad;
  }
}
