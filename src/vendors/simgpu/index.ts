// simgpu: a sample vendor driver with a simulated GPU board (see README.md's "simgpu").
import type { VendorDriver } from '../../vgpu/vendor.js';

export { SimGpuBoard } from './board.js';
export type { SimGpuBoardOptions } from './board.js';
export { SimGpuVgpu, SIMGPU_CLASS, SIMGPU_DEVICE_ID, SIMGPU_VENDOR_ID } from './vgpu.js';
export { SIMGPU_PROFILES, simGpuType } from './types.js';
export type { SimGpuProfile, SimGpuType } from './types.js';
export * from './registers.js';

/** The driver: its name prefixes its type ids ("simgpu-4Q"). */
export const simgpuDriver: VendorDriver = { name: 'simgpu' };
