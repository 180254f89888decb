// VFIO_USER_REGION_READ and VFIO_USER_REGION_WRITE: the backend's read/write at the
// region's offset (from its region info) plus `offset`. A region that does not exist,
// an offset at or past the region's end, or a count above our max_data_xfer_size is
// EINVAL; everything else is the backend's answer (its errno, or fewer bytes done at
// the region's end: the reply's count says how many). Count 0 does nothing.
import { sysError } from '../../../addon/errors.js';
import { vfio_region_info } from '../../../uapi/structs.js';
import {
  decodeRegionAccess, decodeRegionAccessHead, encodeRegionReadReply, encodeRegionWriteReply,
} from '../../../uapi/vfio-user/index.js';
import type { Session } from '../session.js';
import { backendRegionInfo, checkRegionIndex } from './device-info.js';
import type { CommandSpec } from './types.js';

/** The device-file offset of byte `pos` of region `index`, after the bounds checks. */
function devicePosition(session: Session, index: number, pos: bigint, count: number, op: string): bigint {
  if (count > session.negotiated.maxDataXferSize) {
    throw sysError('EINVAL', 'vfio-user', op, `count ${count} is above max_data_xfer_size ${session.negotiated.maxDataXferSize}`);
  }
  checkRegionIndex(session, index, op);
  let region = session.regionCache.get(index);
  if (!region) {
    const info = vfio_region_info.decode(backendRegionInfo(session, index));
    region = { offset: info.offset, size: info.size };
    session.regionCache.set(index, region);
  }
  if (pos >= region.size) throw sysError('EINVAL', 'vfio-user', op, `offset 0x${pos.toString(16)} is past region ${index}'s ${region.size} bytes`);
  return region.offset + pos;
}

export const regionRead: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const op = 'VFIO_USER_REGION_READ';
    const request = decodeRegionAccessHead(body);
    if (request.count === 0) return { body: encodeRegionReadReply(request.offset, request.region, new Uint8Array(0)) };
    const at = devicePosition(session, request.region, request.offset, request.count, op);
    const data = new Uint8Array(request.count);
    const done = session.backend.read(data, at);
    return { body: encodeRegionReadReply(request.offset, request.region, data.subarray(0, done)) };
  },
};

export const regionWrite: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const op = 'VFIO_USER_REGION_WRITE';
    const request = decodeRegionAccess(body);
    if (request.count === 0) return { body: encodeRegionWriteReply(request.offset, request.region, 0) };
    const at = devicePosition(session, request.region, request.offset, request.count, op);
    const done = session.backend.write(request.data, at);
    return { body: encodeRegionWriteReply(request.offset, request.region, done) };
  },
};
