// What a device driver holds, whatever carries the device: the device itself, where its
// DMA memory is mapped, and the fd layer to allocate that memory from. A VFIO PCI device
// (PciDeviceHandle: container, group, device) and a vfio-user device (one socket) both
// are one, so drivers take either.
import type { SysLayer } from '../sys/types.js';
import type { Device } from './device.js';
import type { DmaTarget } from './dma-target.js';

export interface DeviceHandle {
  readonly device: Device;
  /** Maps DMA memory for the device (a Container, or a vfio-user connection's DMA map). */
  readonly dma: DmaTarget;
  /**
   * The fd layer of the device: allocate DMA memory from it, so that the memory suits the
   * transport (over vfio-user, memory the server can mmap).
   */
  readonly sys: SysLayer;
  /** Releases the device and everything opened for it. Idempotent. */
  close(): void;
}
