// A display parent: mbochs' shape. It offers every type (vga, xga, hd) and carves each
// vGPU's framebuffer out of one video-memory pool (256 MB by default), so creating a
// type narrows what is left of all of them: available_instances is free / framebuffer.
import { addon } from '../../addon/addon.js';
import { sysError } from '../../addon/errors.js';
import { createSharedMemory } from '../../device/memory.js';
import type { VgpuModel, VgpuParent, VgpuType } from '../../vgpu/vendor.js';
import { DEFAULT_VIDEO_MEMORY, DISPLAY_PROFILES, displayType, type DisplayType } from './types.js';
import { DisplayVgpu } from './vgpu.js';

export interface DisplayParentOptions {
  /** The parent's name; default "display0". */
  name?: string;
  /** The video-memory pool in bytes; default 256 MiB. */
  videoMemory?: number;
}

export class DisplayParent implements VgpuParent {
  readonly name: string;
  readonly types: readonly DisplayType[];
  readonly videoMemory: number;
  private readonly live = new Set<DisplayVgpu>();

  constructor(options: DisplayParentOptions = {}) {
    this.name = options.name ?? 'display0';
    this.videoMemory = options.videoMemory ?? DEFAULT_VIDEO_MEMORY;
    if (!Number.isSafeInteger(this.videoMemory) || this.videoMemory < 0) throw new RangeError(`video memory ${this.videoMemory}`);
    this.types = DISPLAY_PROFILES.map(displayType);
  }

  /** Bytes of the pool not given to a vGPU. */
  get videoMemoryFree(): number {
    let used = 0;
    for (const v of this.live) used += v.type.profile.framebuffer;
    return this.videoMemory - used;
  }

  /** The live vGPUs, in creation order. */
  get vgpus(): readonly DisplayVgpu[] {
    return [...this.live];
  }

  availableInstances(type: VgpuType): number {
    const t = this.own(type);
    return t ? Math.floor(this.videoMemoryFree / t.profile.framebuffer) : 0;
  }

  createVgpu(type: VgpuType, uuid: string): VgpuModel {
    const t = this.own(type);
    if (!t) throw sysError('EINVAL', 'create', undefined, `${this.name} offers no type ${type.name}`);
    if (this.availableInstances(t) <= 0) throw sysError('ENOSPC', 'create', undefined, `${this.name} has no video memory left for a ${t.displayName}`);
    const memory = createSharedMemory(`${this.name}-${uuid}-vram`, t.profile.framebuffer);
    let vgpu: DisplayVgpu;
    try {
      vgpu = new DisplayVgpu(uuid, t, memory, addon().pageSize);
    } catch (err) {
      memory.close();
      throw err;
    }
    this.live.add(vgpu);
    return vgpu;
  }

  removeVgpu(vgpu: VgpuModel): void {
    if (!(vgpu instanceof DisplayVgpu) || !this.live.has(vgpu)) throw sysError('ENODEV', 'remove', undefined, `the vGPU is not on ${this.name}`);
    this.live.delete(vgpu);
    vgpu.framebuffer.close();
  }

  private own(type: VgpuType): DisplayType | undefined {
    return this.types.find((t) => t === type || t.name === type.name);
  }
}
