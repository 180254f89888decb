// What the device is: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO, DEVICE_GET_IRQ_INFO and
// DEVICE_GET_REGION_IO_FDS, answered from the backend's ioctls (the kernel's layouts)
// and reshaped for vfio-user.
//
// Region info: the kernel answer's mmap offset (index << 40 of a device fd) means
// nothing to a vfio-user client, which maps an fd sent with the reply. A region is
// offered as mappable only when the backend has a file for it (regionFile) and the
// client accepts fds: then `offset` is the file's base, the fd goes with the reply
// (when the whole reply fits the client's argsz, as libvfio-user does) and the sparse
// mmap capability lists the areas the file covers. Otherwise MMAP is cleared, the
// sparse capability dropped and offset is 0; the region stays reachable through
// REGION_READ/WRITE. Other capabilities pass through as the device reports them.
import { sysError } from '../../../addon/errors.js';
import { capIds, flags as VF } from '../../../uapi/constants.js';
import { sparseMmapCap, walkCaps, type Cap } from '../../../uapi/caps.js';
import { ioctls } from '../../../uapi/ioctls.js';
import { vfio_device_info, vfio_irq_info, vfio_region_info } from '../../../uapi/structs.js';
import {
  decodeDeviceInfo, decodeIrqInfo, decodeRegionIoFdsRequest, encodeDeviceInfo, encodeIrqInfo, encodeRegionInfoReply,
  encodeRegionIoFdsReply, vfio_user_device_info, vfio_user_region_io_fds,
} from '../../../uapi/vfio-user/index.js';
import type { Session } from '../session.js';
import type { CommandSpec } from './types.js';

/** A first buffer for the backend's region info; larger answers are asked again. */
const REGION_INFO_FIRST_TRY = 1024;
/** Region info larger than this (capabilities included) is refused, not allocated. */
const REGION_INFO_MAX = 64 * 1024;

function einval(op: string, detail: string): never {
  throw sysError('EINVAL', 'vfio-user', op, detail);
}

/** GET_INFO of the backend, in the kernel's layout (20 bytes). */
function backendDeviceInfo(session: Session): { flags: number; num_regions: number; num_irqs: number } {
  const buf = vfio_device_info.encode({ argsz: vfio_device_info.size });
  session.backend.ioctl(ioctls.VFIO_DEVICE_GET_INFO, buf);
  const info = vfio_device_info.decode(buf);
  session.numRegions = info.num_regions;
  return info;
}

/** Region `index` must exist (index < num_regions): EINVAL otherwise. */
export function checkRegionIndex(session: Session, index: number, op: string): void {
  const count = session.numRegions ?? backendDeviceInfo(session).num_regions;
  if (index >= count) einval(op, `region ${index} does not exist (the device has ${count})`);
}

/** The backend's region info in the kernel's layout, capabilities included. */
export function backendRegionInfo(session: Session, index: number): Uint8Array {
  let size = REGION_INFO_FIRST_TRY;
  for (;;) {
    const buf = vfio_region_info.encode({ argsz: size, index }, size);
    session.backend.ioctl(ioctls.VFIO_DEVICE_GET_REGION_INFO, buf);
    const needed = vfio_region_info.decode(buf).argsz;
    if (needed <= size) return buf.subarray(0, Math.max(needed, vfio_region_info.size));
    if (needed > REGION_INFO_MAX) throw sysError('EIO', 'vfio-user', 'VFIO_USER_DEVICE_GET_REGION_INFO', `the device's region info is ${needed} bytes`);
    size = needed;
  }
}

/** Each capability's bytes: from its offset to the next one's (or the end), as chains lay them out. */
function splitCaps(buf: Uint8Array, first: number): { id: number; bytes: Uint8Array }[] {
  const refs = walkCaps(buf, first);
  const starts = refs.map((r) => r.offset).sort((a, b) => a - b);
  return refs.map((r) => {
    const end = starts.find((s) => s > r.offset) ?? buf.byteLength;
    return { id: r.id, bytes: buf.slice(r.offset, end) };
  });
}

export const deviceGetInfo: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const request = decodeDeviceInfo(body);
    if (request.argsz < vfio_user_device_info.size) einval('VFIO_USER_DEVICE_GET_INFO', `argsz ${request.argsz}`);
    const info = backendDeviceInfo(session);
    // vfio-user defines RESET and PCI only (no CAPS: the reply has no cap_offset).
    const flags = info.flags & (VF.VFIO_DEVICE_FLAGS_RESET | VF.VFIO_DEVICE_FLAGS_PCI);
    return { body: encodeDeviceInfo({ flags, num_regions: info.num_regions, num_irqs: info.num_irqs }) };
  },
};

export const deviceGetRegionInfo: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const op = 'VFIO_USER_DEVICE_GET_REGION_INFO';
    if (body.byteLength < vfio_region_info.size) einval(op, `body is ${body.byteLength} bytes, expected at least ${vfio_region_info.size}`);
    const request = vfio_region_info.decode(body);
    if (request.argsz < vfio_region_info.size) einval(op, `argsz ${request.argsz}`);
    checkRegionIndex(session, request.index, op);
    const kernel = backendRegionInfo(session, request.index);
    const info = vfio_region_info.decode(kernel);
    const caps = (info.flags & VF.VFIO_REGION_INFO_FLAG_CAPS) && info.cap_offset ? splitCaps(kernel, info.cap_offset) : [];
    const kept: Cap[] = caps.filter((c) => c.id !== capIds.VFIO_REGION_INFO_CAP_SPARSE_MMAP).map((c) => c.bytes);
    let flags = info.flags & ~(VF.VFIO_REGION_INFO_FLAG_MMAP | VF.VFIO_REGION_INFO_FLAG_CAPS);
    let offset = 0n;
    let fds: number[] = [];
    const file = info.flags & VF.VFIO_REGION_INFO_FLAG_MMAP && session.negotiated.clientMaxMsgFds >= 1
      ? session.backend.regionFile?.(request.index) : undefined;
    if (file && file.areas.length) {
      flags |= VF.VFIO_REGION_INFO_FLAG_MMAP;
      offset = file.offset;
      fds = [file.fd];
      const whole = file.areas.length === 1 && file.areas[0]!.offset === 0n && file.areas[0]!.size === info.size;
      if (!whole) kept.unshift(sparseMmapCap(file.areas));
    }
    const reply = encodeRegionInfoReply({ flags, index: request.index, size: info.size, offset }, kept, request.argsz);
    const fits = request.argsz >= vfio_region_info.decode(reply).argsz;
    return { body: reply, fds: fits ? fds : [] };
  },
};

export const deviceGetIrqInfo: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const request = decodeIrqInfo(body);
    if (request.argsz < vfio_irq_info.size) einval('VFIO_USER_DEVICE_GET_IRQ_INFO', `argsz ${request.argsz}`);
    const buf = vfio_irq_info.encode({ argsz: vfio_irq_info.size, index: request.index });
    session.backend.ioctl(ioctls.VFIO_DEVICE_GET_IRQ_INFO, buf);
    const info = vfio_irq_info.decode(buf);
    return { body: encodeIrqInfo({ flags: info.flags, index: info.index, count: info.count }) };
  },
};

/** Our devices have no ioeventfd or ioregionfd sub-regions: a valid request gets count 0 and no fds. */
export const deviceGetRegionIoFds: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const op = 'VFIO_USER_DEVICE_GET_REGION_IO_FDS';
    const request = decodeRegionIoFdsRequest(body);
    if (request.flags !== 0 || request.count !== 0) einval(op, 'flags and count must be 0');
    if (request.argsz < vfio_user_region_io_fds.size) einval(op, `argsz ${request.argsz}`);
    checkRegionIndex(session, request.index, op);
    return { body: encodeRegionIoFdsReply(request.index, [], request.argsz) };
  },
};

export const deviceReset: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    if (body.byteLength !== 0) einval('VFIO_USER_DEVICE_RESET', `body is ${body.byteLength} bytes, expected none`);
    session.backend.ioctl(ioctls.VFIO_DEVICE_RESET, undefined);
    return {};
  },
};
