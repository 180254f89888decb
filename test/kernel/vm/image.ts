// The vm guest's extra image layer, on top of the usual base, kernel and project layers:
// the bochs DRM modules of that kernel with their load order, and the vm /init (which
// replaces the edu one: the kernel unpacks the layers in order).
import { join } from 'node:path';
import type { Layer } from '../cpio.js';
import { layer } from '../cpio.js';
import type { ExtractedKernel } from '../fetch.js';
import { InputHash } from '../hash.js';
import { put, putText } from '../image.js';
import type { GuestPhase } from '../guest-init.js';
import { guestDisplayModuleList, vmInitScript } from './guest-init.js';

export async function vmLayer(kernel: ExtractedKernel, phases: readonly GuestPhase[]): Promise<Layer> {
  const init = vmInitScript(phases);
  const list = kernel.displayModules.map((m) => `/${m}`).join('\n') + '\n';
  const hash = new InputHash().text('release', kernel.release).text('modules', list).text('init', init);
  await hash.files(kernel.displayModules.map((m) => join(kernel.root, m)));
  return layer(`vm-${kernel.release}`, hash.digest(), async (stage) => {
    for (const m of kernel.displayModules) put(stage, m, join(kernel.root, m));
    putText(stage, guestDisplayModuleList, list);
    putText(stage, 'init', init, 0o755);
  });
}
