// The image layer of the kernel's mdev samples: the samples, what they need that the
// kernel layer lacks (mdev.ko), and their own load list, which /init loads after the
// VFIO modules. A build that fails is a harness failure; the boot goes on without them.
import { join } from 'node:path';
import { InputHash } from './hash.js';
import { layer, type Layer } from './cpio.js';
import { put, putText } from './image.js';
import type { ExtractedKernel } from './fetch.js';
import { guestMdevModuleList } from './guest-init.js';
import type { ReportCase } from './evaluate.js';
import { builtSamples, fetchMdevSamples, guestSamplePath, loadedSamples, type MdevSamples } from './mdev-samples.js';
import { log, seconds } from './log.js';

export async function mdevLayer(kernel: ExtractedKernel, samples: MdevSamples): Promise<Layer> {
  const dependencies = samples.dependencies.filter((m) => !kernel.modules.includes(m));
  const order = [...dependencies, ...loadedSamples.map((s) => guestSamplePath(kernel.release, s))];
  const list = order.map((m) => `/${m}`).join('\n') + '\n';
  const hash = new InputHash().text('release', kernel.release).text('modules', list);
  const files = builtSamples.map((s) => join(samples.dir, `${s}.ko`));
  await hash.files([...dependencies.map((m) => join(kernel.root, m)), ...files]);
  return layer(`mdev-${kernel.release}`, hash.digest(), async (stage) => {
    for (const m of dependencies) put(stage, m, join(kernel.root, m));
    for (const s of builtSamples) put(stage, guestSamplePath(kernel.release, s), join(samples.dir, `${s}.ko`));
    putText(stage, guestMdevModuleList, list);
  });
}

export interface MdevImage {
  /** Absent when the samples could not be built. */
  layer?: Layer;
  /** The parents the guest must list once the samples are loaded. */
  parents: readonly string[];
  cases: ReportCase[];
}

/** The samples' layer for a kernel, or the harness failure that says why there is none. */
export async function mdevImage(kernel: ExtractedKernel): Promise<MdevImage> {
  const start = performance.now();
  try {
    const l = await mdevLayer(kernel, await fetchMdevSamples(kernel));
    log(`${kernel.series}: mdev samples ready in ${seconds(start)}`);
    return { layer: l, parents: loadedSamples, cases: [] };
  } catch (e) {
    const detail = e instanceof Error ? e.stack ?? e.message : String(e);
    return { parents: [], cases: [{ name: `harness: the kernel's mdev samples build for ${kernel.release}`, status: 'fail', detail }] };
  }
}
