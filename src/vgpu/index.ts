// The vGPU core: the registry and its buses, the vendor driver interface, the vGPU device.
export * from './vendor.js';
export { CORE_TYPE_ATTRIBUTES, DEVICE_API, RegisteredParent, RegisteredType, Vgpu, VgpuRegistry } from './registry.js';
export type { VgpuBus, VgpuInfo, VgpuOpenEvents, VgpuState, VgpuTypeInfo } from './registry.js';
export { generateUuid, isUuid, parseUuid, UUID_STRING_LEN } from './uuid.js';
export { attachMockKernel, kstrtoul, MDEV_BUS_CLASS, MDEV_BUS_DEVICES, MockMdevBus, parseCreateInput } from './mdev/index.js';
export type { MockMdevBusOptions } from './mdev/index.js';
export { attachVfioUser, VfioUserBus, DeviceSocket } from './vfio-user/index.js';
export type { AttachVfioUserOptions, VfioUserBusStats, VfioUserClientInfo, VfioUserServerOptions } from './vfio-user/index.js';
