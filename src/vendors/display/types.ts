// The display vGPU's types, modelled on the kernel's mdpy and mbochs samples: each type
// is a framebuffer size and the largest mode it offers (mdpy's vga/xga/hd: in its EDID
// and GETCAPS, as mbochs' max_x/max_y; the plane shows any mode the framebuffer holds),
// and a parent carves instances out of one video-memory pool, as mbochs does from its 256 MB.
import type { VgpuType } from '../../vgpu/vendor.js';

const MiB = 1024 * 1024;

export interface DisplayProfile {
  /** The type's name in the driver: the type id is "display-<name>". */
  readonly name: string;
  /** Framebuffer (BAR0) bytes: a power of two. */
  readonly framebuffer: number;
  readonly maxWidth: number;
  readonly maxHeight: number;
}

export const DISPLAY_PROFILES: readonly DisplayProfile[] = [
  { name: 'vga', framebuffer: 4 * MiB, maxWidth: 640, maxHeight: 480 },
  { name: 'xga', framebuffer: 16 * MiB, maxWidth: 1024, maxHeight: 768 },
  { name: 'hd', framebuffer: 32 * MiB, maxWidth: 1920, maxHeight: 1080 },
];

/** mbochs' default pool: 256 MB of video memory for all of a parent's vGPUs. */
export const DEFAULT_VIDEO_MEMORY = 256 * MiB;

export interface DisplayType extends VgpuType {
  readonly profile: DisplayProfile;
}

export function displayType(profile: DisplayProfile): DisplayType {
  const resolution = `${profile.maxWidth}x${profile.maxHeight}`;
  return {
    name: profile.name,
    displayName: `display-${profile.name}`,
    // The shape of mbochs' description, with the largest mode as mdpy's types name it.
    description: `virtual display, ${profile.framebuffer / MiB} MB video memory, up to ${resolution}`,
    attributes: { framebuffer: String(profile.framebuffer), resolution, bpp: '32' },
    profile,
  };
}
