// A display mdev opened with raw VFIO ioctls (an mdev-only container: TYPE1v2 with no
// IOMMU behind it), and what the display parity does to it: dispi mode registers in the
// MMIO BAR, VFIO_DEVICE_QUERY_GFX_PLANE, and the EDID region's registers and blob,
// every offset taken from GET_REGION_INFO.
import type { SysLayer } from '../../src/sys/types.js';
import { ioctls, vfio_device_gfx_plane_info, vfio_region_info, regionTypes as RT, decodeRegionType, findCap } from '../../src/uapi/index.js';
import { attempt, type Outcome } from '../conformance/outcome.js';
import { int32Arg, le, fromLe } from '../conformance/abi.js';
import { linkTarget } from './sysfs-observe.js';

const TYPE1v2 = 3;
const REGION_INFO_CAP_TYPE = 2;
/** vfio_region_info and one type capability: mbochs refuses an argsz above its struct (EINVAL). */
export const REGION_INFO_WITH_TYPE = 48;
/** The dispi registers in the MMIO BAR (bochs' layout, mbochs' and ours). */
export const DISPI_BASE = 0x500;
export const FRAMEBUFFER_BAR = 0;
export const MMIO_BAR = 2;

export class DisplayDevice {
  readonly container: number;
  readonly group: number;
  readonly device: number;
  readonly mmio: bigint;
  readonly edid: bigint;
  readonly edidIndex: number;

  constructor(readonly sys: SysLayer, uuid: string) {
    const groupNode = linkTarget(sys, `/sys/bus/mdev/devices/${uuid}/iommu_group`).split('/').pop()!;
    const opened: number[] = [];
    try {
      this.container = sys.open('/dev/vfio/vfio');
      opened.push(this.container);
      this.group = sys.open(`/dev/vfio/${groupNode}`);
      opened.push(this.group);
      sys.ioctl(this.group, ioctls.VFIO_GROUP_SET_CONTAINER, int32Arg(this.container));
      sys.ioctl(this.container, ioctls.VFIO_SET_IOMMU, TYPE1v2);
      this.device = sys.ioctl(this.group, ioctls.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${uuid}\0`));
      opened.push(this.device);
      this.mmio = this.regionInfo(MMIO_BAR).info.offset;
      const edid = this.findEdidRegion();
      this.edidIndex = edid.index;
      this.edid = edid.offset;
    } catch (err) {
      for (const fd of opened.reverse()) sys.close(fd);
      throw err;
    }
  }

  close(): void {
    this.sys.close(this.device);
    this.sys.close(this.group);
    this.sys.close(this.container);
  }

  regionInfo(index: number, argsz = vfio_region_info.size) {
    const buf = vfio_region_info.encode({ argsz, index }, Math.max(argsz, 256));
    const outcome = attempt(() => this.sys.ioctl(this.device, ioctls.VFIO_DEVICE_GET_REGION_INFO, buf));
    return { outcome, info: vfio_region_info.decode(buf), buf };
  }

  /** The region whose type capability says GFX / EDID. */
  private findEdidRegion(): { index: number; offset: bigint } {
    for (let index = 9; index < 32; index++) {
      const { outcome, info, buf } = this.regionInfo(index, REGION_INFO_WITH_TYPE);
      if (!('ret' in outcome)) break;
      const cap = info.cap_offset ? findCap(buf, info.cap_offset, REGION_INFO_CAP_TYPE) : undefined;
      if (!cap) continue;
      const t = decodeRegionType(buf, cap.offset);
      if (t.type === RT.VFIO_REGION_TYPE_GFX && t.subtype === RT.VFIO_REGION_SUBTYPE_GFX_EDID) return { index, offset: info.offset };
    }
    throw new Error('the device has no EDID region');
  }

  // ---- dispi ----

  setDispi(index: number, value: number): void {
    this.sys.pwrite(this.device, le(value, 2), this.mmio + BigInt(DISPI_BASE + index * 2));
  }

  dispi(index: number): number {
    const b = new Uint8Array(2);
    this.sys.pread(this.device, b, this.mmio + BigInt(DISPI_BASE + index * 2));
    return fromLe(b);
  }

  /** Programs a mode as a guest driver does: disable, the geometry, then enable. */
  setMode(m: { xres: number; yres: number; bpp?: number; virtWidth?: number; xOffset?: number; yOffset?: number; enable?: number }): void {
    this.setDispi(4, 0);
    this.setDispi(1, m.xres);
    this.setDispi(2, m.yres);
    this.setDispi(3, m.bpp ?? 32);
    this.setDispi(6, m.virtWidth ?? 0);
    this.setDispi(8, m.xOffset ?? 0);
    this.setDispi(9, m.yOffset ?? 0);
    // ENABLED | LFB_ENABLED | NOCLEARMEM: keeps the framebuffer as it is.
    this.setDispi(4, m.enable ?? 0xc1);
  }

  reset(): Outcome {
    return attempt(() => this.sys.ioctl(this.device, ioctls.VFIO_DEVICE_RESET));
  }

  // ---- QUERY_GFX_PLANE ----

  query(flags: number, opts: { planeType?: number; argsz?: number } = {}) {
    const buf = vfio_device_gfx_plane_info.encode({ argsz: opts.argsz ?? vfio_device_gfx_plane_info.size, flags, drm_plane_type: opts.planeType ?? 1 });
    const outcome = attempt(() => this.sys.ioctl(this.device, ioctls.VFIO_DEVICE_QUERY_GFX_PLANE, buf));
    return { outcome, plane: vfio_device_gfx_plane_info.decode(buf) };
  }

  // ---- the EDID region ----

  edidReg(offset: number): number {
    const b = new Uint8Array(4);
    this.sys.pread(this.device, b, this.edid + BigInt(offset));
    return fromLe(b);
  }

  setEdidReg(offset: number, value: number, width: 1 | 2 | 4 = 4): Outcome {
    return attempt(() => this.sys.pwrite(this.device, le(value, width), this.edid + BigInt(offset)));
  }

  /** Blob bytes through the region, 4 at a time (the way mbochs' read loop takes them). */
  edidBlob(blobOffset: number, at: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.sys.pread(this.device, out, this.edid + BigInt(blobOffset + at));
    return out;
  }

  writeEdidBlob(blobOffset: number, at: number, bytes: Uint8Array): Outcome {
    return attempt(() => this.sys.pwrite(this.device, bytes, this.edid + BigInt(blobOffset + at)));
  }

  /** The EDID as the MMIO BAR mirrors it at 0x000. */
  mirror(at: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.sys.pread(this.device, out, this.mmio + BigInt(at));
    return out;
  }
}
