// The simulated parents a host offers by default: on the mock kernel (and on a real
// host when asked, VGPU_SIMULATED=1) one simgpu board, "simgpu0" with 8 GiB of
// framebuffer, driven by the TypeScript simgpu driver, and one display parent,
// "display0" (mbochs-like display vGPUs you can take screenshots of).
import { DisplayParent, displayDriver } from '../vendors/display/index.js';
import { SimGpuBoard, simgpuDriver } from '../vendors/simgpu/index.js';
import type { VendorDriver, VgpuParent } from '../vgpu/vendor.js';
import { DISPLAY_PARENT, SIMGPU_PARENT } from './simulated-types.js';

/** A parent and the driver that claims it. */
export interface SimulatedParent {
  driver: VendorDriver;
  parent: VgpuParent;
}

/** The default simulated parents, made fresh for each host. */
export function defaultSimulatedParents(): SimulatedParent[] {
  return [
    { driver: simgpuDriver, parent: new SimGpuBoard({ name: SIMGPU_PARENT }) },
    { driver: displayDriver, parent: new DisplayParent({ name: DISPLAY_PARENT }) },
  ];
}

/** Whether a host should add simulated parents: always on the mock kernel, else when VGPU_SIMULATED=1. */
export function simulatedWanted(sysKind: 'native' | 'mock', env: NodeJS.ProcessEnv = process.env): boolean {
  return sysKind === 'mock' || env['VGPU_SIMULATED'] === '1';
}
