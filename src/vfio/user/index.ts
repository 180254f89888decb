// The vfio-user client: a device served over a unix socket, presented through the same
// Device, Region, Irqs and DmaMapping as a kernel VFIO device.
export { openVfioUserDevice, VfioUserDeviceHandle } from './handle.js';
export type { OpenVfioUserOptions } from './handle.js';
export { VfioUserConnection } from './connection.js';
export type { VfioUserConnectOptions, VfioUserReply } from './connection.js';
export { VfioUserDma } from './dma.js';
export { VfioUserSys } from './sys.js';
export type { Negotiated } from './negotiate.js';
