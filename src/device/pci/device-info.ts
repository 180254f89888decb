// VFIO_DEVICE_GET_INFO as vfio-pci answers it in 6.1: flags PCI (| RESET), the region
// and irq counts, 16 bytes written back, or 20 (cap_offset 0: no capabilities) when
// argsz leaves room for cap_offset. Shared by the mock vfio-pci and the vGPU device.
import { sysError } from '../../addon/errors.js';
import { flags as F, pciIrq, pciRegion } from '../../uapi/constants.js';
import { vfio_device_info } from '../../uapi/structs.js';

export interface PciDeviceInfo {
  resettable: boolean;
  /** VFIO_PCI_NUM_REGIONS plus any device-specific regions. */
  numRegions?: number;
}

export function getPciDeviceInfo(buf: Uint8Array, device: PciDeviceInfo): number {
  const op = 'VFIO_DEVICE_GET_INFO';
  let minsz = 16; // offsetofend(struct vfio_device_info, num_irqs)
  if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', op, 'buffer shorter than 16 bytes');
  const argsz = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, true);
  if (argsz < minsz) throw sysError('EINVAL', 'ioctl', op, `argsz ${argsz}`);
  if (argsz >= 20) minsz = 20;
  if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', op, 'argsz is larger than the buffer');
  const info = vfio_device_info.encode({
    argsz,
    flags: F.VFIO_DEVICE_FLAGS_PCI | (device.resettable ? F.VFIO_DEVICE_FLAGS_RESET : 0),
    num_regions: device.numRegions ?? pciRegion.VFIO_PCI_NUM_REGIONS,
    num_irqs: pciIrq.VFIO_PCI_NUM_IRQS,
    cap_offset: 0,
  });
  buf.set(info.subarray(0, minsz));
  return 0;
}
