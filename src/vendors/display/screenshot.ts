// What a VMM does to show a vGPU's display (QEMU's vfio display for region planes),
// through the VFIO client only: probe that the device offers region planes, query the
// primary plane, map the plane's part of the region it names, and convert its pixels.
// screenshotPng() encodes them as a PNG with pngjs.
import { PNG } from 'pngjs';
import { sysError } from '../../addon/errors.js';
import type { SysLayer } from '../../sys/types.js';
import { flags as F } from '../../uapi/constants.js';
import { vfio_device_gfx_plane_info } from '../../uapi/structs.js';
import { vfioIoctl } from '../../vfio/ioctl.js';
import { Device, openPciDevice } from '../../vfio/index.js';
import { DRM_FORMAT_XRGB8888, DrmPlaneType } from './dispi.js';

/** A plane as QUERY_GFX_PLANE reports it. */
export interface GfxPlane {
  drmFormat: number;
  width: number;
  height: number;
  stride: number;
  size: number;
  regionIndex: number;
}

/** An image in RGBA8 rows, as PNG encoders take it. */
export interface RgbaImage {
  width: number;
  height: number;
  /** width * height * 4 bytes. */
  data: Uint8Array;
}

function planeBuffer(flags: number): Uint8Array {
  return vfio_device_gfx_plane_info.encode({ argsz: vfio_device_gfx_plane_info.size, flags, drm_plane_type: DrmPlaneType.PRIMARY });
}

/** QUERY_GFX_PLANE with PROBE|REGION: whether the device offers region planes. */
export function offersRegionPlanes(device: Device): boolean {
  try {
    vfioIoctl(device.sys, device.fd, 'VFIO_DEVICE_QUERY_GFX_PLANE', planeBuffer(F.VFIO_GFX_PLANE_TYPE_PROBE | F.VFIO_GFX_PLANE_TYPE_REGION));
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'EINVAL' || (err as { code?: string }).code === 'ENOTTY') return false;
    throw err;
  }
}

/** The primary plane, or undefined while the display is off (a zeroed format and size). */
export function queryPrimaryPlane(device: Device): GfxPlane | undefined {
  const buf = planeBuffer(F.VFIO_GFX_PLANE_TYPE_REGION);
  vfioIoctl(device.sys, device.fd, 'VFIO_DEVICE_QUERY_GFX_PLANE', buf);
  const p = vfio_device_gfx_plane_info.decode(buf);
  if (p.drm_format === 0 || p.size === 0 || p.width === 0 || p.height === 0) return undefined;
  return { drmFormat: p.drm_format, width: p.width, height: p.height, stride: p.stride, size: p.size, regionIndex: p.region_index };
}

/** Copies the plane's pixels out of its region (through an mmap, unmapped again) as RGBA. */
export function capturePlane(device: Device, plane: GfxPlane): RgbaImage {
  if (plane.drmFormat !== DRM_FORMAT_XRGB8888) {
    throw sysError('EINVAL', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `drm format 0x${plane.drmFormat.toString(16)} is not XRGB8888`);
  }
  const { width, height, stride } = plane;
  if (stride < width * 4 || stride * height > plane.size) {
    throw sysError('EINVAL', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `stride ${stride} and size ${plane.size} do not hold ${width}x${height}`);
  }
  const region = device.region(plane.regionIndex);
  const page = device.sys.pageSize;
  const mapping = region.mmap({ offset: 0, size: Math.ceil(plane.size / page) * page });
  const data = new Uint8Array(width * height * 4);
  try {
    const src = mapping.bytes;
    for (let y = 0; y < height; y++) {
      let s = y * stride;
      let d = y * width * 4;
      for (let x = 0; x < width; x++, s += 4, d += 4) {
        // XRGB8888 is little-endian 0x00RRGGBB: bytes B, G, R, X.
        data[d] = src[s + 2]!;
        data[d + 1] = src[s + 1]!;
        data[d + 2] = src[s]!;
        data[d + 3] = 0xff;
      }
    }
  } finally {
    mapping.unmap();
  }
  return { width, height, data };
}

/** The image as a PNG (8-bit RGB, no alpha). */
export function encodePng(image: RgbaImage): Buffer {
  const png = new PNG({ width: image.width, height: image.height });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return PNG.sync.write(png, { colorType: 2 });
}

/**
 * What the vGPU displays, as a PNG. `target` is an open client Device (left open) or a
 * vGPU's UUID (opened for the capture and closed again; EBUSY while someone else has its
 * group open). ENODATA while the display is off; EOPNOTSUPP for a device without
 * region planes.
 */
export function screenshotPng(sys: SysLayer, target: Device | string): Buffer {
  if (target instanceof Device) return capture(target);
  const handle = openPciDevice(sys, target);
  try {
    return capture(handle.device);
  } finally {
    handle.close();
  }
}

function capture(device: Device): Buffer {
  if (!offersRegionPlanes(device)) throw sysError('EOPNOTSUPP', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `${device.name} offers no region plane`);
  const plane = queryPrimaryPlane(device);
  if (!plane) throw sysError('ENODATA', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `${device.name}'s display is off`);
  return encodePng(capturePlane(device, plane));
}
