// Ioctl request numbers of <linux/vfio.h>. VFIO encodes no size or direction in its
// numbers: every request is _IO(';', 100 + n). The same number means different
// things on container, group and device fds, so a kernel dispatches by fd kind.

const VFIO_TYPE = 0x3b; // ';'
const VFIO_BASE = 100;

/** _IO(type, nr) from <asm-generic/ioctl.h>: no direction, no size. */
function io(nr: number): number {
  return (VFIO_TYPE << 8) | (VFIO_BASE + nr);
}

export const ioctls = {
  // container (/dev/vfio/vfio)
  VFIO_GET_API_VERSION: io(0),
  VFIO_CHECK_EXTENSION: io(1),
  VFIO_SET_IOMMU: io(2),
  // group (/dev/vfio/N)
  VFIO_GROUP_GET_STATUS: io(3),
  VFIO_GROUP_SET_CONTAINER: io(4),
  VFIO_GROUP_UNSET_CONTAINER: io(5),
  VFIO_GROUP_GET_DEVICE_FD: io(6),
  // device
  VFIO_DEVICE_GET_INFO: io(7),
  VFIO_DEVICE_GET_REGION_INFO: io(8),
  VFIO_DEVICE_GET_IRQ_INFO: io(9),
  VFIO_DEVICE_SET_IRQS: io(10),
  VFIO_DEVICE_RESET: io(11),
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: io(12),
  VFIO_DEVICE_PCI_HOT_RESET: io(13),
  VFIO_DEVICE_QUERY_GFX_PLANE: io(14),
  VFIO_DEVICE_GET_GFX_DMABUF: io(15),
  VFIO_DEVICE_IOEVENTFD: io(16),
  VFIO_DEVICE_FEATURE: io(17),
  // container, once an IOMMU is set (same numbers as the device ioctls above)
  VFIO_IOMMU_GET_INFO: io(12),
  VFIO_IOMMU_MAP_DMA: io(13),
  VFIO_IOMMU_UNMAP_DMA: io(14),
  VFIO_IOMMU_ENABLE: io(15),
  VFIO_IOMMU_DISABLE: io(16),
  VFIO_IOMMU_DIRTY_PAGES: io(17),
} as const;

export type IoctlName = keyof typeof ioctls;

/** The name of a request number on one kind of fd, for error messages. */
export function ioctlName(kind: 'container' | 'group' | 'device', request: number): string {
  const prefix = kind === 'device' ? 'VFIO_DEVICE_' : kind === 'group' ? 'VFIO_GROUP_' : 'VFIO_';
  for (const [name, value] of Object.entries(ioctls)) {
    if (value !== request) continue;
    if (kind === 'container' && (name.startsWith('VFIO_DEVICE_') || name.startsWith('VFIO_GROUP_'))) continue;
    if (name.startsWith(prefix)) return name;
  }
  return `ioctl 0x${request.toString(16)}`;
}
