// A simulated physical GPU, the parent simgpu's vGPUs are carved from: modelled on one
// GPU of the proposal's Tesla M60 (8 GiB of framebuffer). Its framebuffer is carved
// into equal slices, one per vGPU, at offsets type size x slot, as a GPU driver
// partitions VRAM. Each slice's pages are a sparse memfd made when the slice is carved
// and closed when it is freed: untouched pages cost nothing, and a freed slice is
// scrubbed by construction, so a new vGPU never sees its predecessor's pixels (a single
// board-wide memfd would need hole punching, which the addon does not offer, to scrub).
//
// The proposal's narrowing: once a vGPU of one type lives on a board, only that type
// can be created there (every other type's available_instances is 0) until all are
// removed, as the example's supported-types list showed only "GRID M60-4Q" after one
// 4Q was created. A type is offered when its framebuffer fits the board: an 8 GiB
// board offers every type up to the 8 GiB "8Q", whose slice is larger than one
// ArrayBuffer may be on Node 20 (4 GiB). Nothing needs such a view: the core reaches a
// slice through read/write and mapped windows (MemoryBacking), and so does the engine.
import { addon } from '../../addon/addon.js';
import { sysError } from '../../addon/errors.js';
import { createSharedMemory, type SharedMemory } from '../../device/memory.js';
import type { VgpuModel, VgpuParent, VgpuType } from '../../vgpu/vendor.js';
import { SIMGPU_PROFILES, simGpuType, type SimGpuType } from './types.js';
import { SimGpuVgpu } from './vgpu.js';

const GiB = 1024 ** 3;

export interface SimGpuBoardOptions {
  /** The parent's name; default "simgpu0". */
  name?: string;
  /** Framebuffer bytes; default 8 GiB (one M60 GPU). Only touched pages use memory. */
  framebufferSize?: number;
  /** Bytes a command moves per event-loop turn; default 1 MiB. */
  bytesPerStep?: number;
}

interface Tenant {
  readonly slot: number;
  readonly memory: SharedMemory;
}

export class SimGpuBoard implements VgpuParent {
  readonly name: string;
  readonly framebufferSize: number;
  readonly types: readonly SimGpuType[];
  private readonly bytesPerStep: number;
  private readonly pageSize = addon().pageSize;
  private readonly tenants = new Map<SimGpuVgpu, Tenant>();
  /** The type every live vGPU has, while any lives. */
  private liveType: SimGpuType | undefined;

  constructor(options: SimGpuBoardOptions = {}) {
    this.name = options.name ?? 'simgpu0';
    this.framebufferSize = options.framebufferSize ?? 8 * GiB;
    this.bytesPerStep = options.bytesPerStep ?? 1024 * 1024;
    if (!/^[A-Za-z0-9_.:-]+$/.test(this.name)) throw new TypeError(`simgpu board name ${JSON.stringify(this.name)} is not a sysfs name`);
    if (!Number.isSafeInteger(this.framebufferSize) || this.framebufferSize <= 0) {
      throw new TypeError(`framebufferSize must be a positive integer, got ${this.framebufferSize}`);
    }
    if (!Number.isSafeInteger(this.bytesPerStep) || this.bytesPerStep <= 0) {
      throw new TypeError(`bytesPerStep must be a positive integer, got ${this.bytesPerStep}`);
    }
    this.types = SIMGPU_PROFILES
      .filter((p) => p.framebuffer <= this.framebufferSize)
      .map((p) => simGpuType(p, this.framebufferSize));
  }

  /** The live vGPUs, in creation order. */
  get vgpus(): readonly SimGpuVgpu[] {
    return [...this.tenants.keys()];
  }

  /** Framebuffer bytes given to live vGPUs. */
  get framebufferUsed(): number {
    return this.tenants.size * (this.liveType?.profile.framebuffer ?? 0);
  }

  type(name: string): SimGpuType | undefined {
    return this.types.find((t) => t.name === name);
  }

  availableInstances(type: VgpuType): number {
    const t = this.own(type);
    if (!t) return 0;
    if (this.liveType && this.liveType !== t) return 0;
    return t.maxInstances - this.tenants.size;
  }

  createVgpu(type: VgpuType, uuid: string): VgpuModel {
    const t = this.own(type);
    if (!t) throw sysError('EINVAL', 'create', undefined, `${this.name} offers no type ${type.name}`);
    if (this.availableInstances(t) <= 0) throw sysError('ENOSPC', 'create', undefined, `${this.name} has no room for a ${t.displayName}`);
    const slot = this.freeSlot();
    const boardOffset = slot * t.profile.framebuffer;
    const memory = createSharedMemory(`${this.name}-fb-${boardOffset.toString(16)}`, t.profile.framebuffer);
    let vgpu: SimGpuVgpu;
    try {
      vgpu = new SimGpuVgpu({ uuid, type: t, framebuffer: memory, boardOffset, pageSize: this.pageSize, bytesPerStep: this.bytesPerStep });
    } catch (err) {
      memory.close();
      throw err;
    }
    this.tenants.set(vgpu, { slot, memory });
    this.liveType = t;
    return vgpu;
  }

  removeVgpu(vgpu: VgpuModel): void {
    const tenant = vgpu instanceof SimGpuVgpu ? this.tenants.get(vgpu) : undefined;
    if (!tenant) throw sysError('ENODEV', 'remove', undefined, `the vGPU is not on ${this.name}`);
    (vgpu as SimGpuVgpu).release(); // the core never removes an open vGPU; stop work regardless
    this.tenants.delete(vgpu as SimGpuVgpu);
    tenant.memory.close();
    if (this.tenants.size === 0) this.liveType = undefined;
  }

  /** The board's type object for `type` (the registry hands back what `types` holds). */
  private own(type: VgpuType): SimGpuType | undefined {
    return this.types.find((t) => t === type || t.name === type.name);
  }

  private freeSlot(): number {
    const used = new Set([...this.tenants.values()].map((t) => t.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    return slot;
  }
}
