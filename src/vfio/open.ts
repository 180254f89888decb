// One front door for a device by name: a path to a vfio-user socket, or a UUID (a vGPU,
// an mdev) or PCI address bound to vfio-pci. A UUID or PCI address never holds a '/',
// so a name with one (or one ending in ".sock") is a socket path.
import type { SysLayer } from '../sys/types.js';
import type { DeviceHandle } from './device-handle.js';
import { openPciDevice, type OpenPciOptions } from './pci.js';
import { openVfioUserDevice, type OpenVfioUserOptions } from './user/handle.js';

export interface OpenDeviceOptions {
  pci?: OpenPciOptions;
  vfioUser?: OpenVfioUserOptions;
}

/** Whether `name` names a vfio-user socket rather than a VFIO device. */
export function isSocketPath(name: string): boolean {
  return name.includes('/') || name.endsWith('.sock');
}

/**
 * Opens a device by name: a socket path through vfio-user (the native fd layer, whatever
 * `sys` is), anything else through VFIO on `sys` (openPciDevice).
 */
export function openDevice(sys: SysLayer, name: string, options: OpenDeviceOptions = {}): DeviceHandle {
  return isSocketPath(name) ? openVfioUserDevice(name, options.vfioUser) : openPciDevice(sys, name, options.pci);
}
