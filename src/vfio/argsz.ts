// The argsz protocol of the VFIO info ioctls (DEVICE_GET_INFO, GET_REGION_INFO,
// IOMMU_GET_INFO): call with the struct's base size; when the capability chain does
// not fit, the kernel writes the size it needs into argsz and returns 0, and the
// caller retries with a buffer that big (what QEMU and rust-vmm do).
import type { SysLayer } from '../sys/types.js';
import { sysError } from '../addon/errors.js';
import type { IoctlName } from '../uapi/ioctls.js';
import { walkCaps, type CapRef } from '../uapi/caps.js';
import { vfioIoctl } from './ioctl.js';

/** No VFIO info struct with its caps comes near this; a bigger argsz is a broken kernel. */
const MAX_ARGSZ = 1 << 20;
/** The chain can only grow between calls if the state changes under us; give up soon. */
const MAX_ATTEMPTS = 4;

export interface InfoQuery {
  name: IoctlName;
  /** sizeof the info struct (argsz starts here). */
  baseSize: number;
  /** Fills the input fields other than argsz (e.g. the region index). */
  prepare?: (buf: Uint8Array) => void;
}

/** Runs an info ioctl until argsz fits; returns the buffer the kernel filled. */
export function queryInfo(sys: SysLayer, fd: number, query: InfoQuery): Uint8Array {
  let size = query.baseSize;
  for (let attempt = 1; ; attempt++) {
    const buf = new Uint8Array(size);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, size, true);
    query.prepare?.(buf);
    vfioIoctl(sys, fd, query.name, buf);
    const needed = dv.getUint32(0, true);
    if (needed <= size) return buf;
    if (needed > MAX_ARGSZ || attempt >= MAX_ATTEMPTS) {
      throw sysError('EOVERFLOW', 'ioctl', query.name, `kernel asked for argsz ${needed} after ${attempt} calls`);
    }
    size = needed;
  }
}

/** The capabilities of a filled info buffer, or none when the CAPS flag or cap_offset is unset. */
export function capsOf(buf: Uint8Array, hasCapsFlag: boolean, capOffset: number): CapRef[] {
  if (!hasCapsFlag || capOffset === 0) return [];
  return walkCaps(buf, capOffset);
}
