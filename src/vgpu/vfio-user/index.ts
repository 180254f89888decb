// The vfio-user server: every vGPU on its own unix socket (bus.ts); the connection part
// (connection.ts and commands/) knows only DeviceBackend and can serve any device.
export { attachVfioUser, VfioUserBus } from './bus.js';
export type { AttachVfioUserOptions, VfioUserBusStats } from './bus.js';
export { DeviceSocket } from './device-socket.js';
export type { VfioUserClientInfo } from './device-socket.js';
export type { ConnectionStats, ConnectionState } from './connection.js';
export { DEFAULT_LIMITS, serverLimits } from './options.js';
export type { ServerLimits, VfioUserServerOptions } from './options.js';
