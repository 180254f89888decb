// What a VMM does to show a vGPU's display (QEMU's vfio display), through the VFIO
// client only: probe that the device offers region planes, query the primary plane, map
// the plane's part of the region it names, and convert its pixels. screenshotPng()
// encodes them as a PNG with pngjs.
//
// A device with dma-buf planes only (the kernel's mbochs) is queried and exported the
// same way (queryPrimaryDmabuf, exportDmabuf), but its pixels cannot be read here: the
// export is a read-only fd, and mmap of a read-only file drops VM_SHARED, which mbochs
// requires (EINVAL); QEMU hands such a dma-buf to the GPU instead. mbochs also has the
// bochs dispi registers, so its picture is read as a vfio-user device's is (below).
//
// vfio-user has no QUERY_GFX_PLANE (the ioctl is ENOTTY there): for such a transport the
// plane is read from the device's bochs dispi registers instead, as a VMM's own
// bochs-display model would, which gives the same plane for any mode the device shows.
import { PNG } from 'pngjs';
import { isSysError, sysError } from '../../addon/errors.js';
import type { SysLayer } from '../../sys/types.js';
import { flags as F } from '../../uapi/constants.js';
import { vfio_device_gfx_plane_info } from '../../uapi/structs.js';
import { vfioIoctl } from '../../vfio/ioctl.js';
import { Device, openDevice } from '../../vfio/index.js';
import {
  DISPI_ID0, DISPI_REG_COUNT, DisplayMmio, DispiReg, DRM_FORMAT_XRGB8888, DrmPlaneType, FRAMEBUFFER_BAR, MMIO_BAR, dispiOffset,
} from './dispi.js';
import { scanoutMode } from './plane.js';

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

function offersPlanes(device: Device, type: number): boolean {
  try {
    vfioIoctl(device.sys, device.fd, 'VFIO_DEVICE_QUERY_GFX_PLANE', planeBuffer(F.VFIO_GFX_PLANE_TYPE_PROBE | type));
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'EINVAL' || (err as { code?: string }).code === 'ENOTTY') return false;
    throw err;
  }
}

/** QUERY_GFX_PLANE with PROBE|REGION: whether the device offers region planes. */
export function offersRegionPlanes(device: Device): boolean {
  return offersPlanes(device, F.VFIO_GFX_PLANE_TYPE_REGION);
}

/** QUERY_GFX_PLANE with PROBE|DMABUF: whether the device offers dma-buf planes. */
export function offersDmabufPlanes(device: Device): boolean {
  return offersPlanes(device, F.VFIO_GFX_PLANE_TYPE_DMABUF);
}

/** A dma-buf plane: its id names it to GET_GFX_DMABUF. */
export interface DmabufPlane extends Omit<GfxPlane, 'regionIndex'> {
  dmabufId: number;
}

/**
 * The primary plane as a dma-buf, or undefined while the display is off. mbochs (6.1 to
 * 6.12) makes the dma-buf of a mode it has not shown before but answers that first query
 * ENOMEM, keeping it; the next query finds it, as QEMU's next display refresh does. So an
 * ENOMEM is asked once more, and a second one stands.
 */
export function queryPrimaryDmabuf(device: Device): DmabufPlane | undefined {
  const query = (): Uint8Array => {
    const buf = planeBuffer(F.VFIO_GFX_PLANE_TYPE_DMABUF);
    vfioIoctl(device.sys, device.fd, 'VFIO_DEVICE_QUERY_GFX_PLANE', buf);
    return buf;
  };
  let buf: Uint8Array;
  try {
    buf = query();
  } catch (err) {
    if (!isSysError(err, 'ENOMEM')) throw err;
    buf = query();
  }
  const p = vfio_device_gfx_plane_info.decode(buf);
  if (p.drm_format === 0 || p.size === 0 || p.width === 0 || p.height === 0) return undefined;
  return { drmFormat: p.drm_format, width: p.width, height: p.height, stride: p.stride, size: p.size, dmabufId: p.dmabuf_id };
}

/** GET_GFX_DMABUF: a new fd of the plane's dma-buf (the caller closes it). */
export function exportDmabuf(device: Device, dmabufId: number): number {
  const id = new Uint8Array(4);
  new DataView(id.buffer).setUint32(0, dmabufId, true);
  return vfioIoctl(device.sys, device.fd, 'VFIO_DEVICE_GET_GFX_DMABUF', id);
}


/** The primary plane, or undefined while the display is off (a zeroed format and size). */
export function queryPrimaryPlane(device: Device): GfxPlane | undefined {
  const buf = planeBuffer(F.VFIO_GFX_PLANE_TYPE_REGION);
  vfioIoctl(device.sys, device.fd, 'VFIO_DEVICE_QUERY_GFX_PLANE', buf);
  const p = vfio_device_gfx_plane_info.decode(buf);
  if (p.drm_format === 0 || p.size === 0 || p.width === 0 || p.height === 0) return undefined;
  return { drmFormat: p.drm_format, width: p.width, height: p.height, stride: p.stride, size: p.size, regionIndex: p.region_index };
}

/**
 * The primary plane as the dispi registers describe it, for a device reached without
 * QUERY_GFX_PLANE; undefined while nothing is displayable; EOPNOTSUPP for a device that
 * is no bochs dispi display. The registers are only read; the framebuffer's size bounds
 * the mode, as in QUERY_GFX_PLANE.
 */
export function dispiPlane(device: Device): GfxPlane | undefined {
  const mmio = device.regions.get(MMIO_BAR);
  const framebuffer = device.regions.get(FRAMEBUFFER_BAR);
  const none = (): Error => sysError('EOPNOTSUPP', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `${device.name} offers no region plane`);
  if (!device.info.pci || !mmio || mmio.size < DisplayMmio.SIZE || !framebuffer || !framebuffer.mmappable) throw none();
  if ((mmio.read16(dispiOffset(DispiReg.ID)) & 0xfff0) !== DISPI_ID0) throw none();
  const vbe = Array.from({ length: DISPI_REG_COUNT }, (_, index) => mmio.read16(dispiOffset(index)));
  const mode = scanoutMode(vbe, { framebufferSize: framebuffer.size, pageSize: device.sys.pageSize });
  if (!mode) return undefined;
  return { drmFormat: DRM_FORMAT_XRGB8888, width: mode.width, height: mode.height, stride: mode.stride, size: mode.size, regionIndex: FRAMEBUFFER_BAR };
}

/** Copies the plane's pixels out of its region (through an mmap, unmapped again) as RGBA. */
export function capturePlane(device: Device, plane: GfxPlane): RgbaImage {
  checkPlane(plane);
  const { width, height, stride } = plane;
  const region = device.region(plane.regionIndex);
  const page = device.sys.pageSize;
  const mapping = region.mmap({ offset: 0, size: Math.ceil(plane.size / page) * page });
  try {
    return xrgbToRgba(mapping.bytes, width, height, stride);
  } finally {
    mapping.unmap();
  }
}

/** A plane this capture can convert: XRGB8888 rows that fit in its size. */
function checkPlane(plane: Omit<GfxPlane, 'regionIndex'>): void {
  if (plane.drmFormat !== DRM_FORMAT_XRGB8888) {
    throw sysError('EINVAL', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `drm format 0x${plane.drmFormat.toString(16)} is not XRGB8888`);
  }
  const { width, height, stride } = plane;
  if (stride < width * 4 || stride * height > plane.size) {
    throw sysError('EINVAL', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `stride ${stride} and size ${plane.size} do not hold ${width}x${height}`);
  }
}

/** XRGB8888 rows `stride` bytes apart as packed RGBA rows. */
export function xrgbToRgba(src: Uint8Array, width: number, height: number, stride: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
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
  return { width, height, data };
}

/** The image as a PNG (8-bit RGB, no alpha). */
export function encodePng(image: RgbaImage): Buffer {
  const png = new PNG({ width: image.width, height: image.height });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return PNG.sync.write(png, { colorType: 2 });
}

/**
 * What the vGPU displays, as a PNG. `target` is an open client Device (left open), a
 * vGPU's UUID or the path of its vfio-user socket (opened for the capture and closed
 * again; EBUSY while someone else holds the device). ENODATA while the display is off;
 * EOPNOTSUPP for a device without region planes or dispi registers.
 */
export function screenshotPng(sys: SysLayer, target: Device | string): Buffer {
  if (target instanceof Device) return capture(target);
  const handle = openDevice(sys, target);
  try {
    return capture(handle.device);
  } finally {
    handle.close();
  }
}

function capture(device: Device): Buffer {
  const plane = offersRegionPlanes(device) ? queryPrimaryPlane(device) : dispiPlane(device);
  if (!plane) throw sysError('ENODATA', 'screenshot', 'VFIO_DEVICE_QUERY_GFX_PLANE', `${device.name}'s display is off`);
  return encodePng(capturePlane(device, plane));
}
