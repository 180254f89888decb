// The simulated parents' names and type ids, known without making the parents (a board
// maps its memory through the addon): what a definition verb checks a type against on the
// mock kernel. simulated.ts makes the parents with these names; a test holds the ids to
// what the registry derives from the boards (driver name + "-" + type name).
import { DISPLAY_PROFILES } from '../vendors/display/types.js';
import { SIMGPU_PROFILES } from '../vendors/simgpu/types.js';

export const SIMGPU_PARENT = 'simgpu0';
export const DISPLAY_PARENT = 'display0';

/** A simulated parent's type ids, or undefined for another name. */
export function simulatedTypeIds(parent: string): string[] | undefined {
  if (parent === SIMGPU_PARENT) return SIMGPU_PROFILES.map((p) => `simgpu-${p.name}`);
  if (parent === DISPLAY_PARENT) return DISPLAY_PROFILES.map((p) => `display-${p.name}`);
  return undefined;
}
