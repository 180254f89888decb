// The device ioctls a vGPU answers with the shapes the kernel gives: GET_INFO as
// vfio-pci does it in 6.1 (PCI | RESET, 9 regions, 5 irqs), and VFIO_DEVICE_FEATURE as
// the VFIO core answers it for a device with no migration ops and no device_feature
// op (vfio_ioctl_device_feature in 6.1: header checks, then ENOTTY for the migration
// features and EINVAL for everything else). A model with device-specific regions
// counts them in num_regions, as vfio-pci counts its own.
import { sysError } from '../../sys/errors.js';
import { flags as F, pciIrq, pciRegion } from '../../uapi/constants.js';
import { vfio_device_feature, vfio_device_info } from '../../uapi/structs.js';

const FEATURE_MIGRATION = 1;
const FEATURE_MIG_DEVICE_STATE = 2;

/** VFIO_DEVICE_GET_INFO: 16 bytes back, or 20 (with cap_offset 0) when argsz allows. */
export function getDeviceInfo(buf: Uint8Array, numRegions: number = pciRegion.VFIO_PCI_NUM_REGIONS): number {
  const op = 'VFIO_DEVICE_GET_INFO';
  let minsz = 16; // offsetofend(struct vfio_device_info, num_irqs)
  if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', op, 'buffer shorter than 16 bytes');
  const argsz = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, true);
  if (argsz < minsz) throw sysError('EINVAL', 'ioctl', op, `argsz ${argsz}`);
  if (argsz >= 20) minsz = 20;
  if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', op, 'argsz is larger than the buffer');
  const info = vfio_device_info.encode({
    argsz,
    flags: F.VFIO_DEVICE_FLAGS_PCI | F.VFIO_DEVICE_FLAGS_RESET,
    num_regions: numRegions,
    num_irqs: pciIrq.VFIO_PCI_NUM_IRQS,
    cap_offset: 0,
  });
  buf.set(info.subarray(0, minsz));
  return 0;
}

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
