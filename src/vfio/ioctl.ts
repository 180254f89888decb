// Every VFIO ioctl of the client goes through here, so that a failure always names
// the operation (err.operation = 'VFIO_IOMMU_MAP_DMA') whichever fd layer threw it.
import type { SysLayer } from '../sys/types.js';
import { sysError, withOperation } from '../addon/errors.js';
import { ioctls, type IoctlName } from '../uapi/ioctls.js';

export function vfioIoctl(sys: SysLayer, fd: number, name: IoctlName, arg?: number | Uint8Array): number {
  try {
    return sys.ioctl(fd, ioctls[name], arg);
  } catch (err) {
    return withOperation(err, name);
  }
}

/** The guard every object uses once closed: its fd number may already belong to someone else. */
export function closedError(what: string, operation: string): Error {
  return sysError('EBADF', 'ioctl', operation, `${what} is closed`);
}

/** A NUL-terminated C string, as GET_DEVICE_FD takes its device name. */
export function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.byteLength + 1);
  out.set(bytes);
  return out;
}

/** A 4-byte buffer holding one int, as SET_CONTAINER takes the container fd. */
export function intArg(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, value, true);
  return out;
}
