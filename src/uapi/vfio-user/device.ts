// Device description and control: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO,
// DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS, DEVICE_GET_REGION_IO_FDS, DEVICE_FEATURE.
// (DEVICE_RESET has no body either way.) Where the spec reuses a <linux/vfio.h> struct
// byte for byte, the codec of structs.ts is reused.
import { type Cap, type CapRef, chainCaps, walkCaps } from '../caps.js';
import { flags as vfioFlags } from '../constants.js';
import { defineStruct, type StructValue } from '../struct.js';
import { vfio_device_feature, vfio_irq_info, vfio_irq_set, vfio_region_info } from '../structs.js';
import { vfioUserIoFdTypes } from './constants.js';
import type { VfioUserBody } from './header.js';
import { expectLength, invalid } from './invalid.js';

/**
 * DEVICE_GET_INFO request and reply, 16 bytes. Not the kernel's vfio_device_info, which
 * has a cap_offset (20 bytes): QEMU 10.1 receives the reply in a 32-byte buffer, header
 * included, and fails a longer one. It also refuses more than 100 regions or 50 irqs.
 *   0 u32 argsz        request: the reply size accepted (16); reply: 16
 *   4 u32 flags        VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI
 *   8 u32 num_regions
 *  12 u32 num_irqs
 */
export const vfio_user_device_info = defineStruct('vfio_user_device_info', 16, {
  argsz: ['u32', 0], flags: ['u32', 4], num_regions: ['u32', 8], num_irqs: ['u32', 12],
});

/**
 * DEVICE_GET_REGION_IO_FDS request, and the reply's fixed part, 16 bytes.
 *   0 u32 argsz   request: the reply size accepted; reply: the size of the full reply
 *   4 u32 flags   0
 *   8 u32 index   region
 *  12 u32 count   request: 0; reply: sub-regions (they follow when argsz allowed them)
 */
export const vfio_user_region_io_fds = defineStruct('vfio_user_region_io_fds', 16, {
  argsz: ['u32', 0], flags: ['u32', 4], index: ['u32', 8], count: ['u32', 12],
});

/**
 * A sub-region of the reply, 40 bytes; the last field is datamatch for an ioeventfd,
 * user_data for an ioregionfd.
 *   0 u64 offset     within the region
 *   8 u64 size       0: any access size
 *  16 u32 fd_index   into the reply's fds (may be shared)
 *  20 u32 type       vfioUserIoFdTypes
 *  24 u32 flags      vfioUserIoFdFlags
 *  28 u32 padding
 *  32 u64 datamatch | user_data
 */
export const vfio_user_sub_region_ioeventfd = defineStruct('vfio_user_sub_region_ioeventfd', 40, {
  offset: ['u64', 0], size: ['u64', 8], fd_index: ['u32', 16], type: ['u32', 20], flags: ['u32', 24],
  padding: ['u32', 28], datamatch: ['u64', 32],
});
export const vfio_user_sub_region_ioregionfd = defineStruct('vfio_user_sub_region_ioregionfd', 40, {
  offset: ['u64', 0], size: ['u64', 8], fd_index: ['u32', 16], type: ['u32', 20], flags: ['u32', 24],
  padding: ['u32', 28], user_data: ['u64', 32],
});

export type DeviceInfo = StructValue<typeof vfio_user_device_info.fields>;
export type RegionInfo = StructValue<typeof vfio_region_info.fields>;
export type IrqInfo = StructValue<typeof vfio_irq_info.fields>;
export type IrqSetHead = StructValue<typeof vfio_irq_set.fields>;
export type RegionIoFdsHead = StructValue<typeof vfio_user_region_io_fds.fields>;

export type SubRegionIoFd =
  | ({ kind: 'ioeventfd' } & Omit<StructValue<typeof vfio_user_sub_region_ioeventfd.fields>, 'type' | 'padding'>)
  | ({ kind: 'ioregionfd' } & Omit<StructValue<typeof vfio_user_sub_region_ioregionfd.fields>, 'type' | 'padding'>);

export interface IrqSet extends IrqSetHead {
  /** DATA_BOOL: one byte per interrupt (a subarray of the body); otherwise empty. */
  data: Uint8Array;
}

export interface RegionInfoReply {
  info: RegionInfo;
  /** Capabilities, their offsets relative to the body (feed them to caps.ts's decoders). */
  caps: CapRef[];
}

export interface RegionIoFdsReply extends RegionIoFdsHead {
  subRegions: SubRegionIoFd[];
  /** False when argsz exceeded what the client accepted: count is set, entries absent. */
  complete: boolean;
}

export interface DeviceFeature {
  argsz: number;
  flags: number;
  /** Feature data (a subarray of the body). */
  data: Uint8Array;
}

// --- DEVICE_GET_INFO

/** The request: argsz alone (QEMU sends 16), every other field 0. */
export function encodeDeviceInfoRequest(argsz = vfio_user_device_info.size): Uint8Array {
  return vfio_user_device_info.encode({ argsz });
}

export function encodeDeviceInfo(info: Omit<DeviceInfo, 'argsz'>, argsz = vfio_user_device_info.size): Uint8Array {
  return vfio_user_device_info.encode({ ...info, argsz });
}

export function decodeDeviceInfo(body: Uint8Array): DeviceInfo {
  expectLength(body, vfio_user_device_info.size, 'VFIO_USER_DEVICE_GET_INFO', true);
  return vfio_user_device_info.decode(body);
}

// --- DEVICE_GET_REGION_INFO: struct vfio_region_info, 32 bytes, then capabilities

export function encodeRegionInfoRequest(index: number, argsz = vfio_region_info.size): Uint8Array {
  return vfio_region_info.encode({ argsz, index });
}

/**
 * The reply: argsz always says what the full reply needs; the capabilities (chained
 * after the struct, offsets from its start) are included only if `clientArgsz` allows
 * them, as the spec's "Message sizes" asks. QEMU sizes its buffer from its argsz and
 * fails a longer reply.
 */
export function encodeRegionInfoReply(info: Omit<RegionInfo, 'argsz' | 'cap_offset'>, caps: readonly Cap[], clientArgsz: number): Uint8Array {
  const chain = chainCaps(caps, vfio_region_info.size);
  const argsz = vfio_region_info.size + chain.byteLength;
  const withCaps = caps.length > 0 && clientArgsz >= argsz;
  const flags = withCaps ? info.flags | vfioFlags.VFIO_REGION_INFO_FLAG_CAPS : info.flags & ~vfioFlags.VFIO_REGION_INFO_FLAG_CAPS;
  const out = vfio_region_info.encode({ ...info, argsz, flags, cap_offset: withCaps ? vfio_region_info.size : 0 },
    withCaps ? argsz : vfio_region_info.size);
  if (withCaps) out.set(chain, vfio_region_info.size);
  return out;
}

/** Request or reply; a reply's capability chain is walked and bounds-checked. */
export function decodeRegionInfo(body: Uint8Array): RegionInfoReply {
  expectLength(body, vfio_region_info.size, 'VFIO_USER_DEVICE_GET_REGION_INFO', true);
  const info = vfio_region_info.decode(body);
  if ((info.flags & vfioFlags.VFIO_REGION_INFO_FLAG_CAPS) === 0 || info.cap_offset === 0) return { info, caps: [] };
  if (info.cap_offset < vfio_region_info.size) throw invalid(`VFIO_USER_DEVICE_GET_REGION_INFO: cap_offset ${info.cap_offset} lies inside the struct`);
  try {
    return { info, caps: walkCaps(body, info.cap_offset) };
  } catch (err) {
    throw invalid(`VFIO_USER_DEVICE_GET_REGION_INFO: ${(err as Error).message}`);
  }
}

// --- DEVICE_GET_IRQ_INFO: struct vfio_irq_info, 16 bytes both ways

export function encodeIrqInfoRequest(index: number, argsz = vfio_irq_info.size): Uint8Array {
  return vfio_irq_info.encode({ argsz, index });
}

export function encodeIrqInfo(info: Omit<IrqInfo, 'argsz'>): Uint8Array {
  return vfio_irq_info.encode({ ...info, argsz: vfio_irq_info.size });
}

export function decodeIrqInfo(body: Uint8Array): IrqInfo {
  expectLength(body, vfio_irq_info.size, 'VFIO_USER_DEVICE_GET_IRQ_INFO', true);
  return vfio_irq_info.decode(body);
}

// --- DEVICE_SET_IRQS: struct vfio_irq_set, 20 bytes, then DATA_BOOL bytes. Eventfds
// travel as fds (QEMU sends at most max_msg_fds per message, and none to de-assign).

export function encodeIrqSet(set: Omit<IrqSetHead, 'argsz'>, bools?: Uint8Array): VfioUserBody {
  const data = bools ?? new Uint8Array(0);
  const isBool = (set.flags & vfioFlags.VFIO_IRQ_SET_DATA_BOOL) !== 0;
  if (isBool ? data.byteLength !== set.count : data.byteLength !== 0) {
    throw new RangeError(`SET_IRQS: ${isBool ? `DATA_BOOL needs ${set.count} bytes` : 'only DATA_BOOL carries data'}`);
  }
  return [vfio_irq_set.encode({ ...set, argsz: vfio_irq_set.size + data.byteLength }), data];
}

export function decodeIrqSet(body: Uint8Array): IrqSet {
  expectLength(body, vfio_irq_set.size, 'VFIO_USER_DEVICE_SET_IRQS', true);
  const head = vfio_irq_set.decode(body);
  const dataBytes = (head.flags & vfioFlags.VFIO_IRQ_SET_DATA_BOOL) !== 0 ? head.count : 0;
  expectLength(body, vfio_irq_set.size + dataBytes, 'VFIO_USER_DEVICE_SET_IRQS');
  return { ...head, data: body.subarray(vfio_irq_set.size) };
}

// --- DEVICE_GET_REGION_IO_FDS

export function encodeRegionIoFdsRequest(index: number, argsz: number): Uint8Array {
  return vfio_user_region_io_fds.encode({ argsz, flags: 0, index, count: 0 });
}

export function decodeRegionIoFdsRequest(body: Uint8Array): RegionIoFdsHead {
  expectLength(body, vfio_user_region_io_fds.size, 'VFIO_USER_DEVICE_GET_REGION_IO_FDS', true);
  return vfio_user_region_io_fds.decode(body);
}

const SUB_REGION_SIZE = vfio_user_sub_region_ioeventfd.size;
const T = vfioUserIoFdTypes;

/** The reply; without room in `clientArgsz` it carries count and argsz but no entries. */
export function encodeRegionIoFdsReply(index: number, subRegions: readonly SubRegionIoFd[], clientArgsz: number): Uint8Array {
  const argsz = vfio_user_region_io_fds.size + subRegions.length * SUB_REGION_SIZE;
  const fits = clientArgsz >= argsz;
  const out = vfio_user_region_io_fds.encode({ argsz, flags: 0, index, count: subRegions.length },
    fits ? argsz : vfio_user_region_io_fds.size);
  if (!fits) return out;
  subRegions.forEach((s, i) => {
    const at = vfio_user_region_io_fds.size + i * SUB_REGION_SIZE;
    if (s.kind === 'ioeventfd') vfio_user_sub_region_ioeventfd.write(out, { ...s, type: T.VFIO_USER_IO_FD_TYPE_IOEVENTFD, padding: 0 }, at);
    else vfio_user_sub_region_ioregionfd.write(out, { ...s, type: T.VFIO_USER_IO_FD_TYPE_IOREGIONFD, padding: 0 }, at);
  });
  return out;
}

function decodeSubRegion(body: Uint8Array, at: number): SubRegionIoFd {
  const { type, padding: _padding, ...eventfd } = vfio_user_sub_region_ioeventfd.decode(body, at);
  if (type === T.VFIO_USER_IO_FD_TYPE_IOEVENTFD) return { kind: 'ioeventfd', ...eventfd };
  if (type === T.VFIO_USER_IO_FD_TYPE_IOREGIONFD) {
    const { datamatch, ...rest } = eventfd;
    return { kind: 'ioregionfd', ...rest, user_data: datamatch };
  }
  throw invalid(`VFIO_USER_DEVICE_GET_REGION_IO_FDS reply: sub-region type ${type} is unknown`);
}

/**
 * The spec says entry i lies at i * ((argsz - 32) / count) and that 40 bytes "is not to
 * be relied on"; the fixed part is 16 bytes, not 32 (libvfio-user's argsz is 16 + 40 *
 * count), so the stride is taken as (argsz - 16) / count, and must be at least 40.
 */
export function decodeRegionIoFdsReply(body: Uint8Array): RegionIoFdsReply {
  const what = 'VFIO_USER_DEVICE_GET_REGION_IO_FDS reply';
  expectLength(body, vfio_user_region_io_fds.size, what, true);
  const head = vfio_user_region_io_fds.decode(body);
  if (head.count === 0) {
    expectLength(body, vfio_user_region_io_fds.size, what);
    return { ...head, subRegions: [], complete: true };
  }
  if (body.byteLength === vfio_user_region_io_fds.size && head.argsz > body.byteLength) {
    return { ...head, subRegions: [], complete: false };
  }
  const stride = (head.argsz - vfio_user_region_io_fds.size) / head.count;
  if (!Number.isInteger(stride) || stride < SUB_REGION_SIZE) {
    throw invalid(`${what}: argsz ${head.argsz} does not hold ${head.count} sub-regions of ${SUB_REGION_SIZE} bytes or more`);
  }
  expectLength(body, head.argsz, what);
  const subRegions: SubRegionIoFd[] = [];
  for (let i = 0; i < head.count; i++) subRegions.push(decodeSubRegion(body, vfio_user_region_io_fds.size + i * stride));
  return { ...head, subRegions, complete: true };
}

// --- DEVICE_FEATURE: struct vfio_device_feature, 8 bytes, then the feature's data

export function encodeDeviceFeature(flags: number, data: Uint8Array = new Uint8Array(0), argsz?: number): VfioUserBody {
  return [vfio_device_feature.encode({ argsz: argsz ?? vfio_device_feature.size + data.byteLength, flags }), data];
}

export function decodeDeviceFeature(body: Uint8Array): DeviceFeature {
  expectLength(body, vfio_device_feature.size, 'VFIO_USER_DEVICE_FEATURE', true);
  return { ...vfio_device_feature.decode(body), data: body.subarray(vfio_device_feature.size) };
}
