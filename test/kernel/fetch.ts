// Step 1: Debian's kernel packages and busybox-static, fetched with `apt-get download`
// and reduced to what the guest needs: the kernel image, the vfio/iommu/irqbypass
// modules (decompressed), a depmod index, and the order to load them in.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cacheDir } from './paths.js';
import { run, runPipeline, shellQuote } from './exec.js';
import { log } from './log.js';

export type KernelSeries = '6.1' | '6.12';
export const kernelSeries: readonly KernelSeries[] = ['6.1', '6.12'];

/** A kernel extracted into the cache, ready to go into an image. */
export interface ExtractedKernel {
  series: KernelSeries;
  /** The Debian package it came from, e.g. linux-image-6.1.0-56-amd64. */
  pkg: string;
  /** `uname -r` in the guest, e.g. 6.1.0-56-amd64. */
  release: string;
  vmlinuz: string;
  /** Root of the extracted tree: holds lib/modules/<release>/. */
  root: string;
  /** Module files relative to root, in load order. */
  modules: string[];
  /** The bochs DRM driver and what it needs (for the vm phases), relative to root, in load order. */
  displayModules: string[];
  /** Which extraction made it: an older one is extracted again. */
  layout: number;
}

/** Bumped when the extraction takes more: 2 added the DRM modules for bochs. */
const LAYOUT = 2;

/** The modules the guest loads; modprobe adds their dependencies. */
const wantedModules = ['vfio_iommu_type1', 'vfio-pci'];
/** The display driver of the vm phases (drivers/gpu/drm/tiny/bochs.ko). */
const displayWanted = ['bochs'];

const debDir = join(cacheDir, 'debs');
const kernelsDir = join(cacheDir, 'kernels');
const resolvedFile = join(cacheDir, 'resolved.json');

let aptUpdated = false;

async function aptUpdateOnce(): Promise<void> {
  if (aptUpdated) return;
  aptUpdated = true;
  log('apt-get update (package lists missing or stale)');
  await run('apt-get', ['update', '-q']);
}

/** The package name for a kernel series, as apt sees it now. */
async function resolvePackage(series: KernelSeries): Promise<string | undefined> {
  if (series === '6.1') {
    // The kernel Debian 12's metapackage points at.
    const r = await run('apt-cache', ['depends', 'linux-image-amd64'], { allowFailure: true });
    return /Depends:\s*(linux-image-6\.1\.\S+-amd64)\s*$/m.exec(r.stdout)?.[1];
  }
  // The newest 6.12 build for bookworm (from the security suite).
  const r = await run('apt-cache', ['pkgnames', 'linux-image-6.12.'], { allowFailure: true });
  const candidates = r.stdout.split('\n')
    .map((name) => /^linux-image-6\.12\.(\d+)\+deb12-amd64$/.exec(name.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  return candidates.at(-1)?.[0];
}

function readResolved(): Partial<Record<KernelSeries, string>> {
  try {
    return JSON.parse(readFileSync(resolvedFile, 'utf8')) as Partial<Record<KernelSeries, string>>;
  } catch {
    return {};
  }
}

/** Resolves with apt; updates the lists once if needed; falls back to the last answer. */
async function packageFor(series: KernelSeries): Promise<string> {
  let pkg = await resolvePackage(series);
  if (!pkg) {
    await aptUpdateOnce().catch((e: unknown) => log(`apt-get update failed: ${String(e)}`));
    pkg = await resolvePackage(series);
  }
  const resolved = readResolved();
  if (!pkg) {
    pkg = resolved[series];
    if (!pkg) throw new Error(`apt knows no kernel package for ${series} (is bookworm-security in the sources?)`);
    log(`apt cannot resolve ${series}; using the cached ${pkg}`);
  }
  if (resolved[series] !== pkg) writeFileSync(resolvedFile, JSON.stringify({ ...resolved, [series]: pkg }, null, 2));
  return pkg;
}

function findDeb(pkg: string, version?: string): string | undefined {
  if (!existsSync(debDir)) return undefined;
  // apt-get download names a file <pkg>_<version, ':' as %3a>_<arch>.deb.
  const prefix = version === undefined ? `${pkg}_` : `${pkg}_${version.replace(/:/g, '%3a')}_`;
  const name = readdirSync(debDir).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  return name ? join(debDir, name) : undefined;
}

/** The .deb of a package (of that exact version, when one is given), downloaded unless the cache has it. */
export async function download(pkg: string, version?: string): Promise<string> {
  mkdirSync(debDir, { recursive: true });
  const cached = findDeb(pkg, version);
  if (cached) return cached;
  const spec = version === undefined ? pkg : `${pkg}=${version}`;
  log(`apt-get download ${spec}`);
  const attempt = () => run('apt-get', ['download', '-q', spec], { cwd: debDir, allowFailure: true });
  let r = await attempt();
  if (r.code !== 0) {
    await aptUpdateOnce();
    r = await attempt();
  }
  const deb = findDeb(pkg, version);
  if (r.code !== 0 || !deb) throw new Error(`apt-get download ${spec} failed:\n${r.stderr.trim()}`);
  return deb;
}

/** Drops cached packages and trees of other builds of the same series (a newer one replaced them). */
function pruneSeries(series: KernelSeries, keepPkg: string, keepRelease: string): void {
  const prefix = series === '6.1' ? 'linux-image-6.1.' : 'linux-image-6.12.';
  for (const f of existsSync(debDir) ? readdirSync(debDir) : []) {
    if (f.startsWith(prefix) && !f.startsWith(`${keepPkg}_`)) rmSync(join(debDir, f), { force: true });
  }
  const releasePrefix = series === '6.1' ? '6.1.' : '6.12.';
  for (const d of existsSync(kernelsDir) ? readdirSync(kernelsDir) : []) {
    if (d.startsWith(releasePrefix) && d !== keepRelease) rmSync(join(kernelsDir, d), { recursive: true, force: true });
  }
}

/** Paths inside the package's data.tar that the guest needs. */
function pickMembers(listing: string): { members: string[]; release: string; modulesPrefix: string } {
  const lines = listing.split('\n').map((l) => l.trim()).filter(Boolean);
  const vmlinuz = lines.find((l) => /^\.\/boot\/vmlinuz-[^/]+$/.test(l));
  const modDir = lines.map((l) => /^(\.\/(?:usr\/)?lib\/modules\/([^/]+)\/)$/.exec(l)).find((m) => m !== null);
  if (!vmlinuz || !modDir) throw new Error('the package has no boot/vmlinuz-* or lib/modules/<release>/');
  const [, modulesPrefix, release] = modDir as RegExpExecArray & [string, string, string];
  const wantedDirs = ['kernel/drivers/vfio/', 'kernel/drivers/iommu/', 'kernel/virt/lib/',
    // bochs and its DRM, fbdev and i2c dependencies.
    'kernel/drivers/gpu/', 'kernel/drivers/video/', 'kernel/drivers/i2c/', 'kernel/drivers/dma-buf/'];
  const members = [vmlinuz];
  for (const d of wantedDirs) if (lines.includes(modulesPrefix + d)) members.push(modulesPrefix + d);
  for (const l of lines) {
    if (l.startsWith(modulesPrefix) && /^modules\.[a-z.]+$/.test(l.slice(modulesPrefix.length))) members.push(l);
  }
  return { members, release, modulesPrefix };
}

/** Load order of the wanted modules and their dependencies, relative to root. */
export async function moduleOrder(root: string, release: string, wanted: readonly string[]): Promise<string[]> {
  // An empty config directory: the host's /etc/modprobe.d must not shape the guest.
  const noConfig = join(root, '.modprobe.d');
  mkdirSync(noConfig, { recursive: true });
  const order: string[] = [];
  for (const name of wanted) {
    const r = await run('modprobe', ['-C', noConfig, '-d', root, '-S', release, '--show-depends', name]);
    for (const line of r.stdout.split('\n')) {
      const m = /^insmod (\S+)/.exec(line.trim());
      if (!m) continue; // "builtin x" lines: nothing to load
      const rel = relative(root, m[1] as string);
      if (!order.includes(rel)) order.push(rel);
    }
  }
  if (order.length === 0) throw new Error(`modprobe found no modules for ${wanted.join(', ')}`);
  return order;
}

async function extract(series: KernelSeries, pkg: string, deb: string): Promise<ExtractedKernel> {
  const q = shellQuote(deb);
  const listing = (await runPipeline(`dpkg-deb --fsys-tarfile ${q} | tar -t`)).stdout;
  const { members, release, modulesPrefix } = pickMembers(listing);
  const root = join(kernelsDir, release);
  log(`extracting ${release} from ${pkg}`);
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await runPipeline(`dpkg-deb --fsys-tarfile ${q} | tar -x -C ${shellQuote(tmp)} ${members.map(shellQuote).join(' ')}`);
  // depmod and modprobe look under <root>/lib/modules: normalise a usr/lib layout.
  if (modulesPrefix.startsWith('./usr/')) {
    mkdirSync(join(tmp, 'lib', 'modules'), { recursive: true });
    renameSync(join(tmp, 'usr', 'lib', 'modules', release), join(tmp, 'lib', 'modules', release));
  }
  // 6.12's modules are .ko.xz; busybox insmod in the guest wants plain .ko.
  await runPipeline(`find ${shellQuote(tmp)} -name '*.ko.xz' -exec xz -d {} +`);
  await run('depmod', ['-b', tmp, release]);
  const modules = await moduleOrder(tmp, release, wantedModules);
  const displayModules = await moduleOrder(tmp, release, displayWanted);
  const info: ExtractedKernel = {
    series, pkg, release,
    vmlinuz: join(root, 'boot', `vmlinuz-${release}`),
    root,
    modules,
    displayModules,
    layout: LAYOUT,
  };
  writeFileSync(join(tmp, 'kernel.json'), JSON.stringify(info, null, 2));
  rmSync(root, { recursive: true, force: true });
  renameSync(tmp, root);
  return info;
}

/** A kernel extracted earlier from this very package. */
function cachedKernel(pkg: string): ExtractedKernel | undefined {
  for (const d of existsSync(kernelsDir) ? readdirSync(kernelsDir) : []) {
    try {
      const info = JSON.parse(readFileSync(join(kernelsDir, d, 'kernel.json'), 'utf8')) as ExtractedKernel;
      if (info.pkg === pkg && info.layout === LAYOUT && existsSync(info.vmlinuz)) return info;
    } catch {
      // not a finished extraction
    }
  }
  return undefined;
}

/** The kernel of a series, from the cache or fetched and extracted now. */
export async function fetchKernel(series: KernelSeries): Promise<ExtractedKernel> {
  const pkg = await packageFor(series);
  const kernel = cachedKernel(pkg) ?? await extract(series, pkg, await download(pkg));
  pruneSeries(series, pkg, kernel.release);
  return kernel;
}

/** busybox-static's /bin/busybox, extracted into the cache. */
export async function fetchBusybox(): Promise<string> {
  const deb = await download('busybox-static');
  const dir = join(cacheDir, 'busybox');
  const stamp = join(dir, 'from-deb');
  const bin = join(dir, 'bin', 'busybox');
  const debName = deb.slice(debDir.length + 1);
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8') === debName) return bin;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await runPipeline(`dpkg-deb --fsys-tarfile ${shellQuote(deb)} | tar -x -C ${shellQuote(dir)} ./bin/busybox`);
  writeFileSync(stamp, debName);
  return bin;
}
