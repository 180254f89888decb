// Step 2: the guest image for one kernel: three cached layers joined into one initrd.
//   base     busybox (+ /bin/sh), the host's node and the libraries ldd lists for it
//            and for the addon
//   kernel   the VFIO modules of that kernel and the list to load them in
//   project  /init, package.json, the addon, dist/ (src, test, bench) and the run-time node_modules
import {
  chmodSync, copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync,
  renameSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { cacheDir, guestProjectDir, repoRoot } from './paths.js';
import { run } from './exec.js';
import { InputHash, listTree } from './hash.js';
import { layer, type Layer } from './cpio.js';
import type { ExtractedKernel } from './fetch.js';
import { initScript, guestModuleList, type GuestPhase } from './guest-init.js';

export const addonPath = join(repoRoot, 'build', 'Release', 'vfio_vgpu.node');

export interface GuestImage {
  initrd: string;
  layers: Layer[];
}

/** Copies a file into the staging dir at `guestPath`, following symlinks. */
export function put(stage: string, guestPath: string, from: string, mode?: number): void {
  const to = join(stage, guestPath);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  if (mode !== undefined) chmodSync(to, mode);
}

export function putText(stage: string, guestPath: string, text: string, mode = 0o644): void {
  const to = join(stage, guestPath);
  mkdirSync(dirname(to), { recursive: true });
  writeFileSync(to, text);
  chmodSync(to, mode);
}

/** The shared libraries a binary loads, as ldd names them (the loader included). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const r = await run('ldd', [binary]);
  const libs: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1] as string);
    else if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
  }
  return libs;
}

async function baseLayer(busybox: string): Promise<Layer> {
  const node = process.execPath;
  const binaries = existsSync(addonPath) ? [node, addonPath] : [node];
  const libs = [...new Set((await Promise.all(binaries.map(sharedLibraries))).flat())].sort();
  const hash = new InputHash().text('busybox', busybox).text('node', node).text('libs', libs.join('\n'));
  await hash.files([busybox, node, ...libs]);
  return layer('base', hash.digest(), async (stage) => {
    put(stage, 'bin/busybox', busybox, 0o755);
    // The kernel runs /init through #!/bin/sh: without this link it panics.
    symlinkSync('busybox', join(stage, 'bin', 'sh'));
    put(stage, 'usr/bin/node', node, 0o755);
    for (const lib of libs) put(stage, lib, lib);
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'root', 'sbin', 'usr/sbin', 'etc']) {
      mkdirSync(join(stage, d), { recursive: true });
    }
  });
}

async function kernelLayer(kernel: ExtractedKernel): Promise<Layer> {
  const list = kernel.modules.map((m) => `/${m}`).join('\n') + '\n';
  const hash = new InputHash().text('release', kernel.release).text('modules', list);
  await hash.files(kernel.modules.map((m) => join(kernel.root, m)));
  return layer(`kernel-${kernel.release}`, hash.digest(), async (stage) => {
    for (const m of kernel.modules) put(stage, m, join(kernel.root, m));
    putText(stage, guestModuleList, list);
  });
}

/** The run-time dependency closure of package.json (what `npm ci --omit=dev` keeps). */
function runtimePackages(): string[] {
  const seen = new Set<string>();
  const visit = (pkgJson: string): void => {
    const deps = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    for (const name of Object.keys(deps)) {
      if (seen.has(name)) continue;
      const manifest = join(repoRoot, 'node_modules', name, 'package.json');
      if (!existsSync(manifest)) throw new Error(`node_modules/${name} is missing: run npm ci`);
      seen.add(name);
      visit(manifest);
    }
  };
  visit(join(repoRoot, 'package.json'));
  return [...seen].sort();
}

/** The project's files for the guest, relative to the repository root. */
function projectFiles(): string[] {
  const compiled = (rel: string): boolean => !/\.(map|d\.ts|tsbuildinfo)$/.test(rel);
  const files = ['package.json'];
  if (existsSync(addonPath)) files.push('build/Release/vfio_vgpu.node');
  // dist/bench: the mediated phase measures DMA throughput with bench/edu-mediated.ts.
  for (const dir of ['dist/src', 'dist/test', 'dist/bench']) {
    if (existsSync(join(repoRoot, dir))) files.push(...listTree(join(repoRoot, dir), compiled).map((f) => `${dir}/${f}`));
  }
  for (const name of runtimePackages()) {
    files.push(...listTree(join(repoRoot, 'node_modules', name)).map((f) => `node_modules/${name}/${f}`));
  }
  return files;
}

/** The project layer does not depend on the kernel: one build serves every kernel. */
export async function projectLayer(phases: readonly GuestPhase[]): Promise<Layer> {
  const init = initScript(phases);
  const files = projectFiles();
  const hash = new InputHash().text('init', init).text('files', files.join('\n'));
  await hash.files(files.map((f) => join(repoRoot, f)));
  return layer('project', hash.digest(), async (stage) => {
    putText(stage, 'init', init, 0o755);
    for (const f of files) put(stage, join(guestProjectDir, f), join(repoRoot, f));
  });
}

/** The initrd for a kernel: its layers joined, cached under their names. */
export async function guestImage(kernel: ExtractedKernel, busybox: string, project: Layer,
  extra: readonly Layer[] = [], name = 'initrd'): Promise<GuestImage> {
  // Later layers win: the kernel unpacks them in order (a vm layer brings its own /init).
  const layers = [await baseLayer(busybox), await kernelLayer(kernel), project, ...extra];
  const key = new InputHash().text('layers', layers.map((l) => l.path).join('\n')).digest();
  const dir = join(cacheDir, 'images');
  mkdirSync(dir, { recursive: true });
  const initrd = join(dir, `${name}-${kernel.release}-${key}.img`);
  if (!existsSync(initrd)) {
    const tmp = `${initrd}.tmp-${process.pid}`;
    const out = createWriteStream(tmp);
    for (const l of layers) await pipeline(createReadStream(l.path), out, { end: false });
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    renameSync(tmp, initrd);
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`${name}-${kernel.release}-`) && join(dir, f) !== initrd) rmSync(join(dir, f), { force: true });
    }
  }
  return { initrd, layers };
}
