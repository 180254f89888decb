// VFIO_DEVICE_FEATURE as the VFIO core answers it for a device with no migration ops
// and no device_feature op (vfio_ioctl_device_feature in 6.1: header checks, then
// ENOTTY for the migration features and EINVAL for everything else). GET_INFO is the
// mock vfio-pci's (sys/mock/pci/device-info.ts).
import { sysError } from '../../addon/errors.js';
import { flags as F } from '../../uapi/constants.js';
import { vfio_device_feature } from '../../uapi/structs.js';

const FEATURE_MIGRATION = 1;
const FEATURE_MIG_DEVICE_STATE = 2;

/** VFIO_DEVICE_FEATURE on a device without features of its own. */
export function deviceFeature(buf: Uint8Array): never {
  const op = 'VFIO_DEVICE_FEATURE';
  const minsz = vfio_device_feature.size;
  if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', op, 'buffer shorter than vfio_device_feature');
  const { argsz, flags } = vfio_device_feature.decode(buf);
  if (argsz < minsz) throw sysError('EINVAL', 'ioctl', op, `argsz ${argsz}`);
  const known = F.VFIO_DEVICE_FEATURE_MASK | F.VFIO_DEVICE_FEATURE_SET | F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_PROBE;
  if (flags & ~known) throw sysError('EINVAL', 'ioctl', op, 'unknown flags');
  if (!(flags & F.VFIO_DEVICE_FEATURE_PROBE) && (flags & F.VFIO_DEVICE_FEATURE_SET) && (flags & F.VFIO_DEVICE_FEATURE_GET)) {
    throw sysError('EINVAL', 'ioctl', op, 'GET and SET together without PROBE');
  }
  const feature = flags & F.VFIO_DEVICE_FEATURE_MASK;
  if (feature === FEATURE_MIGRATION || feature === FEATURE_MIG_DEVICE_STATE) {
    throw sysError('ENOTTY', 'ioctl', op, 'a vGPU has no migration support');
  }
  throw sysError('EINVAL', 'ioctl', op, `feature ${feature} is not supported by a vGPU`);
}
