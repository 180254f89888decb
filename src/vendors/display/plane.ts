// VFIO_DEVICE_QUERY_GFX_PLANE for the display vGPU, a region-type plane as the kernel's
// mdpy sample offers (no dma-buf): the uapi's probe rules (PROBE|REGION 0, PROBE with
// anything else EINVAL; a query must ask REGION alone), argsz up to region_index, and
// a disabled display answered with success and a zeroed format, size, width and height.
// Which modes are displayable follows mbochs' check of the dispi registers
// (mbochs_check_framebuffer): the type's largest mode bounds what the EDID and GETCAPS
// offer, not what is shown; only the video memory bounds that.
import { sysError } from '../../addon/errors.js';
import { flags as F } from '../../uapi/constants.js';
import { vfio_device_gfx_plane_info } from '../../uapi/structs.js';
import { DISPLAY_BPP, DispiEnable, DispiReg, DRM_FORMAT_XRGB8888, DrmPlaneType, FRAMEBUFFER_BAR } from './dispi.js';

/** offsetofend(struct vfio_device_gfx_plane_info, region_index): what goes in and out. */
export const GFX_PLANE_MINSZ = 60;

/** A displayable mode: what the plane reports. */
export interface ScanoutMode {
  width: number;
  height: number;
  stride: number;
  /** stride * height rounded up to whole pages (the uapi asks for a page-aligned size). */
  size: number;
}

export interface ModeLimits {
  readonly framebufferSize: number;
  readonly pageSize: number;
}

/**
 * The mode the dispi registers describe, or undefined when nothing is displayable:
 * not enabled, a depth other than 32, smaller than 64x64 (as mbochs), panned (a region
 * plane has no offset field, so it always starts at BAR0 offset 0), or running past the
 * framebuffer.
 */
export function scanoutMode(vbe: ArrayLike<number>, limits: ModeLimits): ScanoutMode | undefined {
  if (!(vbe[DispiReg.ENABLE]! & DispiEnable.ENABLED)) return undefined;
  if (vbe[DispiReg.BPP] !== DISPLAY_BPP) return undefined;
  const width = vbe[DispiReg.XRES]!;
  const height = vbe[DispiReg.YRES]!;
  if (width < 64 || height < 64) return undefined;
  if (vbe[DispiReg.X_OFFSET] !== 0 || vbe[DispiReg.Y_OFFSET] !== 0) return undefined;
  const stride = Math.max(vbe[DispiReg.VIRT_WIDTH]!, width) * 4;
  const bytes = stride * height;
  if (bytes > limits.framebufferSize) return undefined;
  const size = Math.ceil(bytes / limits.pageSize) * limits.pageSize;
  return { width, height, stride, size };
}

/** Answers QUERY_GFX_PLANE in `arg` for the current mode. */
export function queryGfxPlane(arg: number | Uint8Array | undefined, mode: () => ScanoutMode | undefined): number {
  const op = 'VFIO_DEVICE_QUERY_GFX_PLANE';
  if (!(arg instanceof Uint8Array) || arg.byteLength < GFX_PLANE_MINSZ) {
    throw sysError('EFAULT', 'ioctl', op, 'the argument must be a vfio_device_gfx_plane_info buffer');
  }
  const full = new Uint8Array(vfio_device_gfx_plane_info.size);
  full.set(arg.subarray(0, GFX_PLANE_MINSZ));
  const plane = vfio_device_gfx_plane_info.decode(full);
  if (plane.argsz < GFX_PLANE_MINSZ) throw sysError('EINVAL', 'ioctl', op, `argsz ${plane.argsz}`);
  const { VFIO_GFX_PLANE_TYPE_PROBE: PROBE, VFIO_GFX_PLANE_TYPE_REGION: REGION } = F;
  if (plane.flags & PROBE) {
    if (plane.flags === (PROBE | REGION)) return 0;
    throw sysError('EINVAL', 'ioctl', op, 'only region planes are offered (no dma-buf)');
  }
  if (plane.flags !== REGION) throw sysError('EINVAL', 'ioctl', op, `flags 0x${plane.flags.toString(16)}`);
  const m = plane.drm_plane_type === DrmPlaneType.PRIMARY ? mode() : undefined;
  vfio_device_gfx_plane_info.write(full, {
    drm_format: m ? DRM_FORMAT_XRGB8888 : 0,
    drm_format_mod: 0n,
    width: m?.width ?? 0,
    height: m?.height ?? 0,
    stride: m?.stride ?? 0,
    size: m?.size ?? 0,
    x_pos: 0, y_pos: 0, x_hot: 0, y_hot: 0,
    region_index: FRAMEBUFFER_BAR,
  });
  arg.set(full.subarray(0, GFX_PLANE_MINSZ));
  return 0;
}
