// Device-specific regions of a vGPU (index 9 and up, after vfio-pci's fixed nine), as
// vfio-pci reports its own (the IGD OpRegion, the NVLink2 RAM): GET_REGION_INFO gives
// the region's flags and size at index << 40 with a VFIO_REGION_INFO_CAP_TYPE chained
// after the struct (or, when argsz is too small for the chain, argsz raised to what
// it needs and cap_offset 0), and reads and writes are clipped at the region's end
// (EINVAL at or past it) and reach the vendor's handler in naturally aligned pieces.
import { sysError } from '../../addon/errors.js';
import { chainCaps, regionTypeCap } from '../../uapi/caps.js';
import { flags as F, pciRegion } from '../../uapi/constants.js';
import { vfio_region_info } from '../../uapi/structs.js';
import type { VgpuRegion } from '../vendor.js';
import { readPieces, writePieces } from './bar-dispatch.js';

/** The index of a model's regions[0]. */
export const FIRST_DEVICE_REGION = pciRegion.VFIO_PCI_NUM_REGIONS;

const OP = 'VFIO_DEVICE_GET_REGION_INFO';

export class DeviceRegions {
  constructor(private readonly regions: readonly VgpuRegion[]) {}

  /** How many regions the device has in all (GET_INFO's num_regions). */
  get numRegions(): number {
    return FIRST_DEVICE_REGION + this.regions.length;
  }

  /** The region at `index`, when it is one of these. */
  region(index: number): VgpuRegion | undefined {
    return index >= FIRST_DEVICE_REGION ? this.regions[index - FIRST_DEVICE_REGION] : undefined;
  }

  /** Whether a GET_REGION_INFO buffer asks for one of these regions (else vfio-pci's code answers). */
  claims(buf: Uint8Array): boolean {
    if (buf.byteLength < vfio_region_info.size) return false;
    const { argsz, index } = vfio_region_info.decode(buf);
    return argsz >= vfio_region_info.size && this.region(index) !== undefined;
  }

  /** GET_REGION_INFO for a region claims() accepted. */
  getInfo(buf: Uint8Array): number {
    const minsz = vfio_region_info.size;
    const info = vfio_region_info.decode(buf);
    const region = this.region(info.index);
    if (!region) throw sysError('EINVAL', 'ioctl', OP, `no region ${info.index}`);
    let flags = F.VFIO_REGION_INFO_FLAG_CAPS;
    if (region.readable) flags |= F.VFIO_REGION_INFO_FLAG_READ;
    if (region.writable) flags |= F.VFIO_REGION_INFO_FLAG_WRITE;
    const chain = chainCaps([regionTypeCap(region.type, region.subtype)], minsz);
    let argsz = info.argsz;
    let capOffset = 0;
    if (argsz < minsz + chain.byteLength) {
      argsz = minsz + chain.byteLength;
    } else {
      if (buf.byteLength < minsz + chain.byteLength) throw sysError('EFAULT', 'ioctl', OP, 'argsz is larger than the buffer');
      buf.set(chain, minsz);
      capOffset = minsz;
    }
    vfio_region_info.write(buf, {
      argsz, flags, index: info.index, cap_offset: capOffset, size: BigInt(region.size),
      offset: BigInt(info.index) << 40n,
    });
    return 0;
  }

  /** pread/pwrite of region `index` at `pos`: bytes done. */
  rw(index: number, buf: Uint8Array, pos: number, iswrite: boolean): number {
    const syscall = iswrite ? 'pwrite' : 'pread';
    const region = this.region(index);
    if (!region) throw sysError('EINVAL', syscall, undefined, `no region ${index}`);
    if (pos >= region.size) throw sysError('EINVAL', syscall, undefined, `offset 0x${pos.toString(16)} is past region ${index}'s ${region.size} bytes`);
    if (iswrite ? !region.writable : !region.readable) {
      throw sysError('EINVAL', syscall, undefined, `region ${index} is not ${iswrite ? 'writable' : 'readable'}`);
    }
    const count = Math.min(buf.byteLength, region.size - pos);
    if (iswrite) writePieces(region.handler, pos, buf, 0, count);
    else readPieces(region.handler, pos, buf, 0, count);
    return count;
  }
}

/** Throws an Error naming the first region a core could not serve. */
export function checkDeviceRegions(regions: readonly VgpuRegion[], fail: (what: string) => never): void {
  regions.forEach((r, i) => {
    const where = `region ${FIRST_DEVICE_REGION + i}`;
    if (!Number.isSafeInteger(r.size) || r.size < 4) fail(`${where} size ${r.size} is not an integer >= 4`);
    for (const [name, v] of [['type', r.type], ['subtype', r.subtype]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) fail(`${where} ${name} ${v} is not a u32`);
    }
    if (typeof r.handler?.read !== 'function' || typeof r.handler.write !== 'function') fail(`${where} has no handler`);
  });
}
