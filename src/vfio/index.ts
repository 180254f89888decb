// The VFIO client API: what QEMU's hw/vfio does, over any SysLayer (real or mock kernel).
export { Container } from './container.js';
export type { ContainerOptions, DmaMapOptions, DmaSummary, ExtensionName, IommuInfo } from './container.js';
export { DmaMapping } from './dma-mapping.js';
export { Group } from './group.js';
export type { GroupStatus } from './group.js';
export { Device } from './device.js';
export type { DeviceInfo } from './device.js';
export { Region } from './region.js';
export type { SparseArea } from './region.js';
export { RegionMapping } from './region-mapping.js';
export { Irqs } from './irqs.js';
export type { IrqCallback, IrqEnableOptions, IrqInfo, IrqListener } from './irqs.js';
export { PciConfig, pciCommand, pciHeader, PCI_STATUS_CAP_LIST } from './pci-config.js';
export type { PciCapability, PciHeader } from './pci-config.js';
export { PciDeviceHandle, openPciDevice } from './pci.js';
export type { OpenPciOptions } from './pci.js';
export { formatSize, irqName, regionName } from './names.js';
