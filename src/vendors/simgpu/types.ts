// simgpu's vGPU types, modelled on the 2016 proposal's example: an NVIDIA Tesla M60
// whose driver offered "GRID M60-0B" ... "GRID M60-8Q" (its VGPU_IDs 11..18). The
// figures follow NVIDIA's published M60 profiles (framebuffer, display heads, maximum
// resolution); "B" profiles are business desktops, "Q" ones workstation graphics.
// How many of a type fit on a board is derived from the board's framebuffer.
import type { VgpuType } from '../../vgpu/vendor.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A profile of the catalogue, before a board sizes it. */
export interface SimGpuProfile {
  /** The type's name inside the driver: the type id is "simgpu-<name>". */
  readonly name: string;
  /** Framebuffer bytes: a power of two, so it can be a BAR. */
  readonly framebuffer: number;
  readonly heads: number;
  readonly maxWidth: number;
  readonly maxHeight: number;
  /** The proposal's VGPU_ID; the vGPU shows it as its PCI subsystem device id. */
  readonly id: number;
}

export const SIMGPU_PROFILES: readonly SimGpuProfile[] = [
  { name: '0B', framebuffer: 512 * MiB, heads: 2, maxWidth: 2560, maxHeight: 1600, id: 11 },
  { name: '0Q', framebuffer: 512 * MiB, heads: 2, maxWidth: 2560, maxHeight: 1600, id: 12 },
  { name: '1B', framebuffer: 1 * GiB, heads: 4, maxWidth: 2560, maxHeight: 1600, id: 13 },
  { name: '1Q', framebuffer: 1 * GiB, heads: 2, maxWidth: 4096, maxHeight: 2160, id: 14 },
  { name: '2B', framebuffer: 2 * GiB, heads: 4, maxWidth: 2560, maxHeight: 1600, id: 15 },
  { name: '2Q', framebuffer: 2 * GiB, heads: 4, maxWidth: 4096, maxHeight: 2160, id: 16 },
  { name: '4Q', framebuffer: 4 * GiB, heads: 4, maxWidth: 4096, maxHeight: 2160, id: 17 },
  { name: '8Q', framebuffer: 8 * GiB, heads: 4, maxWidth: 4096, maxHeight: 2160, id: 18 },
];

/** A type as one board offers it: the profile plus what the board can hold of it. */
export interface SimGpuType extends VgpuType {
  readonly profile: SimGpuProfile;
  /** Instances an empty board holds: board framebuffer / type framebuffer. */
  readonly maxInstances: number;
}

/** Sizes in MiB, as NVIDIA's type descriptions write them ("framebuffer=1024M"). */
export function sizeText(bytes: number): string {
  return `${bytes / MiB}M`;
}

/** The type of `profile` on a board with `boardFramebuffer` bytes. */
export function simGpuType(profile: SimGpuProfile, boardFramebuffer: number): SimGpuType {
  const maxInstances = Math.floor(boardFramebuffer / profile.framebuffer);
  const resolution = `${profile.maxWidth}x${profile.maxHeight}`;
  return {
    name: profile.name,
    displayName: `GRID M60-${profile.name}`,
    // The shape NVIDIA's vGPU driver gives its mdev `description` attribute.
    description: `num_heads=${profile.heads}, framebuffer=${sizeText(profile.framebuffer)}, max_resolution=${resolution}, max_instance=${maxInstances}`,
    attributes: {
      framebuffer: String(profile.framebuffer),
      heads: String(profile.heads),
      resolution,
      max_instances: String(maxInstances),
    },
    profile,
    maxInstances,
  };
}
