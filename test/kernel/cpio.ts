// Image layers: each a gzip'd cpio (newc) archive built from a staging directory and
// cached under its input hash. The kernel unpacks concatenated archives in order, so
// the guest image is the layers joined: the big unchanging ones (busybox, node, the
// modules) are built once, and only the project layer follows each compile.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './paths.js';
import { runPipeline, shellQuote } from './exec.js';

const layersDir = join(cacheDir, 'layers');

export interface Layer {
  name: string;
  path: string;
  /** False when it came from the cache. */
  built: boolean;
}

/**
 * The layer `name` for inputs hashing to `hash`: from the cache, or staged by `stage`
 * (which fills the directory it is given) and archived now. Older builds of the same
 * layer are removed.
 */
export async function layer(name: string, hash: string, stage: (dir: string) => Promise<void>): Promise<Layer> {
  mkdirSync(layersDir, { recursive: true });
  const path = join(layersDir, `${name}-${hash}.cpio.gz`);
  if (existsSync(path)) return { name, path, built: false };
  const stagingDir = join(layersDir, `${name}.staging-${process.pid}`);
  rmSync(stagingDir, { recursive: true, force: true });
  mkdirSync(stagingDir, { recursive: true });
  try {
    await stage(stagingDir);
    const tmp = `${path}.tmp-${process.pid}`;
    // Sorted names, root owner, fixed times: the same inputs give the same bytes.
    await runPipeline(
      `cd ${shellQuote(stagingDir)} && find . -mindepth 1 -exec touch -h -d @0 {} + && ` +
      `find . -mindepth 1 -print0 | LC_ALL=C sort -z | ` +
      `cpio --null -o -H newc -R 0:0 --reproducible --quiet | gzip -n -6 > ${shellQuote(tmp)}`,
    );
    renameSync(tmp, path);
  } finally {
    rmSync(stagingDir, { recursive: true, force: true });
  }
  for (const f of readdirSync(layersDir)) {
    if (f.startsWith(`${name}-`) && f.endsWith('.cpio.gz') && join(layersDir, f) !== path) {
      rmSync(join(layersDir, f), { force: true });
    }
  }
  return { name, path, built: true };
}
