// openPciDevice: container, group and device of one VFIO PCI device, opened in the
// order the kernel needs and closed in the order QEMU uses (device fds, then the group,
// then the container). The device is a PCI function bound to vfio-pci, named by its
// address, or an mdev whose device_api is vfio-pci (a vGPU), named by its UUID: both
// are opened the same way, as QEMU's -device vfio-pci,host= or ,sysfsdev= does.
import { inspect, type InspectOptions } from 'node:util';
import type { SysLayer } from '../sys/types.js';
import { sysError } from '../addon/errors.js';
import { Container, type ExtensionName } from './container.js';
import { Group } from './group.js';
import type { Device } from './device.js';
import type { DeviceHandle } from './device-handle.js';
import type { DmaTarget } from './dma-target.js';

export interface OpenPciOptions {
  /** Join this container (its IOMMU is set if it is not yet) instead of opening a new one. */
  container?: Container;
  /** The IOMMU group number, if known; otherwise read from sysfs (Group.numberOf). */
  group?: number;
  /** SET_IOMMU type; default TYPE1v2 when available. */
  iommuType?: ExtensionName | number;
}

export class PciDeviceHandle implements DeviceHandle {
  constructor(
    readonly container: Container,
    readonly group: Group,
    readonly device: Device,
    private readonly ownsContainer: boolean,
  ) {}

  /** The container: DMA mappings are the IOMMU's. */
  get dma(): DmaTarget {
    return this.container;
  }

  get sys(): SysLayer {
    return this.container.sys;
  }

  /** Closes the device, then the group, then the container if it was opened here. Idempotent. */
  close(): void {
    try {
      this.device.close();
    } finally {
      try {
        this.group.close();
      } finally {
        if (this.ownsContainer) this.container.close();
      }
    }
  }

  [inspect.custom](depth: number, options: InspectOptions): string {
    const show = (o: unknown): string => inspect(o, { ...options, depth });
    return [show(this.device), `  ${show(this.group)}`, `  ${show(this.container)}`].join('\n');
  }
}

/**
 * Opens a VFIO PCI device ready for use: a PCI function bound to vfio-pci by address
 * ("0000:00:04.0") or a vGPU (mdev) by UUID. ENOENT when sysfs has no such device.
 */
export function openPciDevice(sys: SysLayer, name: string, options: OpenPciOptions = {}): PciDeviceHandle {
  const number = options.group ?? Group.numberOf(sys, name);
  const group = Group.open(sys, number);
  let container: Container | undefined = options.container;
  const ownsContainer = container === undefined;
  try {
    const status = group.status();
    if (!status.viable) {
      throw sysError('EINVAL', 'ioctl', 'VFIO_GROUP_GET_STATUS', `group ${number} is not viable: bind all its devices to vfio-pci`);
    }
    container ??= Container.open(sys);
    group.attach(container);
    if (container.iommuType === undefined) container.setIommu(options.iommuType);
    const device = group.openDevice(name);
    return new PciDeviceHandle(container, group, device, ownsContainer);
  } catch (err) {
    group.close();
    if (ownsContainer) container?.close();
    throw err;
  }
}
