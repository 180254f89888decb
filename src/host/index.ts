// The host layer: a host in this process (Host), its parents (simulated and the
// kernel's own mdev parents), the `info` report, and the HostApi they answer.
export * from './api.js';
export { createHost, Host, hostError } from './host.js';
export type { AutostartResult, HostOptions } from './host.js';
export { KernelMdevParents, MDEV_BUS_CLASS, MDEV_BUS_DEVICES } from './kernel-mdev.js';
export type { KernelMdevDevice } from './kernel-mdev.js';
export { defaultSimulatedParents, simulatedWanted } from './simulated.js';
export type { SimulatedParent } from './simulated.js';
export { describeTarget, describeVfioUser, parseBdf } from './info.js';
export { decodeConfig, pciClassName } from './lspci.js';
