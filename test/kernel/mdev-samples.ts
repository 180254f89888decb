// The kernel's mdev sample drivers (samples/vfio-mdev: mtty, mdpy, mbochs, mdpy-fb),
// which Debian does not build, built here for each guest kernel: Debian's
// linux-source-<series> (only samples/vfio-mdev is extracted from its tarball) and
// linux-headers-<release> with its -common and linux-kbuild packages, all of the
// image's own version, unpacked into the cache (nothing is installed on the host).
// The .ko files are cached per release; the packages are dropped once they are built.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './paths.js';
import { run, runPipeline, shellQuote } from './exec.js';
import { download, moduleOrder, type ExtractedKernel } from './fetch.js';
import { log } from './log.js';

/** Every sample is built; mdpy-fb is the driver a VM would run on an mdpy, so the guest does not load it. */
export const builtSamples = ['mtty', 'mdpy', 'mbochs', 'mdpy-fb'] as const;
export const loadedSamples = ['mtty', 'mdpy', 'mbochs'] as const;

/** The samples of one kernel release, ready to go into its image. */
export interface MdevSamples {
  release: string;
  /** The Debian version of the image, the headers and the source they were built from. */
  version: string;
  /** Holds <sample>.ko for every built sample. */
  dir: string;
  /** What the samples need from the kernel (mdev.ko...), relative to the kernel's root, in load order. */
  dependencies: string[];
  layout: number;
}

/** Bumped when the build changes: an older cache entry is built again. */
const LAYOUT = 1;
const samplesDir = join(cacheDir, 'mdev-samples');

/** Where a sample sits in the guest (the kernel looks for nothing there: /init loads it by path). */
export function guestSamplePath(release: string, sample: string): string {
  return `lib/modules/${release}/extra/${sample}.ko`;
}

/** The -common and kbuild packages a linux-headers-<release> package depends on. */
export function headerDependencies(depends: string): string[] {
  const names = depends.split(',').map((d) => d.trim().split(/[\s(|]/)[0] ?? '');
  const wanted = names.filter((n) => /^linux-headers-\S+-common(-rt)?$/.test(n) || /^linux-kbuild-\S+$/.test(n));
  if (!wanted.some((n) => n.startsWith('linux-headers-')) || !wanted.some((n) => n.startsWith('linux-kbuild-'))) {
    throw new Error(`linux-headers depends on no -common or linux-kbuild package: ${depends}`);
  }
  return wanted;
}

/**
 * Debian's arch headers include their -common tree's Makefile by an absolute
 * /usr/src path; unpacked elsewhere, the include must name the unpacked tree.
 */
export function relocateHeadersMakefile(text: string, root: string): string {
  const out = text.replace(/^include \/usr\/src\//m, `include ${root}/usr/src/`);
  if (out === text) throw new Error(`the headers' Makefile includes no /usr/src/ tree:\n${text}`);
  return out;
}

async function debField(deb: string, field: string): Promise<string> {
  return (await run('dpkg-deb', ['-f', deb, field])).stdout.trim();
}

function cached(release: string): MdevSamples | undefined {
  try {
    const info = JSON.parse(readFileSync(join(samplesDir, release, 'samples.json'), 'utf8')) as MdevSamples;
    const complete = builtSamples.every((s) => existsSync(join(info.dir, `${s}.ko`)));
    if (info.layout === LAYOUT && info.release === release && complete) return info;
  } catch {
    // not built yet
  }
  return undefined;
}

async function build(kernel: ExtractedKernel): Promise<MdevSamples> {
  const { release, series } = kernel;
  const version = await debField(await download(kernel.pkg), 'Version');
  const headersPkg = `linux-headers-${release}`;
  const headersDeb = await download(headersPkg, version);
  const debs = [headersDeb];
  for (const pkg of headerDependencies(await debField(headersDeb, 'Depends'))) debs.push(await download(pkg, version));
  const sourceDeb = await download(`linux-source-${series}`, version);
  debs.push(sourceDeb);

  const final = join(samplesDir, release);
  const tmp = `${final}.tmp-${process.pid}`;
  const tree = join(tmp, 'tree');
  const src = join(tmp, 'src');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  try {
    log(`building the mdev samples for ${release} (Debian ${version})`);
    for (const deb of debs.slice(0, -1)) await run('dpkg-deb', ['-x', deb, tree]);
    const headers = join(tree, 'usr', 'src', headersPkg);
    const makefile = join(headers, 'Makefile');
    writeFileSync(makefile, relocateHeadersMakefile(readFileSync(makefile, 'utf8'), tree));
    // Only samples/vfio-mdev of the ~150 MB tarball.
    const tarball = `./usr/src/linux-source-${series}.tar.xz`;
    await runPipeline(`dpkg-deb --fsys-tarfile ${shellQuote(sourceDeb)} | tar -xO ${shellQuote(tarball)} | xz -dc | ` +
      `tar -x -C ${shellQuote(src)} --strip-components=3 --wildcards 'linux-source-*/samples/vfio-mdev/*'`);
    writeFileSync(join(src, 'Kbuild'), `obj-m := ${builtSamples.map((s) => `${s}.o`).join(' ')}\n`);
    // No BTF for the modules: it needs pahole, and the guest does not need BTF.
    await run('make', ['-C', headers, `M=${src}`, 'CONFIG_DEBUG_INFO_BTF_MODULES=', '-j2', 'modules']);
    const out = join(tmp, 'ko');
    mkdirSync(out);
    const needs = new Set<string>();
    for (const s of builtSamples) {
      const ko = join(src, `${s}.ko`);
      const vermagic = (await run('modinfo', ['-F', 'vermagic', ko])).stdout.trim();
      if (!vermagic.startsWith(`${release} `)) throw new Error(`${s}.ko has vermagic "${vermagic}", not ${release}`);
      if ((loadedSamples as readonly string[]).includes(s)) {
        for (const d of (await run('modinfo', ['-F', 'depends', ko])).stdout.trim().split(',')) if (d) needs.add(d);
      }
      copyFileSync(ko, join(out, `${s}.ko`));
    }
    const dependencies = needs.size ? await moduleOrder(kernel.root, release, [...needs].sort()) : [];
    const info: MdevSamples = { release, version, dir: join(final, 'ko'), dependencies, layout: LAYOUT };
    writeFileSync(join(tmp, 'samples.json'), JSON.stringify(info, null, 2));
    rmSync(tree, { recursive: true, force: true });
    rmSync(src, { recursive: true, force: true });
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    // The .ko files are the cache: the ~170 MB of packages are not needed again.
    for (const deb of debs) rmSync(deb, { force: true });
    return info;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Drops the samples of other builds of the same series. */
function prune(kernel: ExtractedKernel): void {
  const prefix = `${kernel.series}.`;
  for (const d of existsSync(samplesDir) ? readdirSync(samplesDir) : []) {
    if (d.startsWith(prefix) && d !== kernel.release) rmSync(join(samplesDir, d), { recursive: true, force: true });
  }
}

/** The mdev samples of a kernel, from the cache or built now. */
export async function fetchMdevSamples(kernel: ExtractedKernel): Promise<MdevSamples> {
  const samples = cached(kernel.release) ?? await build(kernel);
  prune(kernel);
  return samples;
}
