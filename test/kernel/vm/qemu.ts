// A QEMU with a vfio-user client for the vm phases. Bookworm's QEMU 7.2 has none;
// trixie-backports' 11.1 has `vfio-user-pci`. It runs here from a trixie root built once
// with debootstrap into the cache (minbase, then qemu-system-x86 from backports inside
// it) and reused: a folder with a `ready` stamp naming the version it holds.
import { existsSync, mkdirSync, readFileSync, rmSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../paths.js';
import { run } from '../exec.js';
import { log, seconds } from '../log.js';

export const trixieRoot = join(cacheDir, 'trixie-qemu');
const stamp = join(trixieRoot, 'ready');

export interface VmQemu {
  root: string;
  /** `qemu-system-x86_64 --version`'s first line. */
  version: string;
  /** False when it came from the cache. */
  built: boolean;
}

/** The mirror the host's apt uses (deb822 or one-line sources), deb.debian.org otherwise. */
export function debianMirror(sources: readonly string[]): string {
  for (const text of sources) {
    for (const m of text.matchAll(/^\s*URIs:\s*(\S+)/gm)) if (!/security/.test(m[1] as string)) return (m[1] as string).replace(/\/$/, '');
    for (const m of text.matchAll(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/gm)) {
      if (/debian/.test(m[1] as string) && !/security/.test(m[1] as string)) return (m[1] as string).replace(/\/$/, '');
    }
  }
  return 'http://deb.debian.org/debian';
}

function hostSources(): string[] {
  const files = ['/etc/apt/sources.list', '/etc/apt/sources.list.d/debian.sources'];
  return files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8'));
}

const chroot = (root: string, args: string[], timeoutMs = 900_000) =>
  run('chroot', [root, ...args], { timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } });

/**
 * Removes a root folder, unless something is mounted inside it (a debootstrap that died
 * with the target's /proc mounted): a recursive delete must never walk into a mount.
 */
function removeRoot(dir: string): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  const inside = mounts.filter((m) => m === dir || m.startsWith(`${dir}/`));
  if (inside.length) throw new Error(`not removing ${dir}: mounted inside it: ${inside.join(', ')} (unmount them first)`);
  rmSync(dir, { recursive: true, force: true });
}

/** Builds the trixie root in a temporary folder and renames it into place when QEMU runs. */
async function build(): Promise<string> {
  const mirror = debianMirror(hostSources());
  const tmp = `${trixieRoot}.tmp`;
  removeRoot(tmp);
  mkdirSync(tmp, { recursive: true });
  log(`building the trixie root for QEMU 11 (debootstrap from ${mirror}; a few minutes, once)`);
  await run('debootstrap', ['--variant=minbase', 'trixie', tmp, mirror], { timeoutMs: 900_000 });
  writeFileSync(join(tmp, 'etc/apt/sources.list.d/backports.list'), `deb ${mirror} trixie-backports main\n`);
  await chroot(tmp, ['apt-get', 'update', '-q']);
  await chroot(tmp, ['apt-get', 'install', '-y', '-q', '-t', 'trixie-backports', '--no-install-recommends', 'qemu-system-x86']);
  await chroot(tmp, ['apt-get', 'clean']);
  const help = await chroot(tmp, ['qemu-system-x86_64', '-device', 'help'], 60_000);
  if (!/"vfio-user-pci"/.test(help.stdout)) throw new Error('the trixie-backports QEMU has no vfio-user-pci device');
  const version = (await chroot(tmp, ['qemu-system-x86_64', '--version'], 60_000)).stdout.split('\n')[0] ?? '';
  writeFileSync(join(tmp, 'ready'), version);
  removeRoot(trixieRoot);
  renameSync(tmp, trixieRoot);
  return version;
}

/** The cached trixie root with QEMU 11, built now if the cache has none. */
export async function fetchVmQemu(): Promise<VmQemu> {
  if (existsSync(stamp)) return { root: trixieRoot, version: readFileSync(stamp, 'utf8').trim(), built: false };
  const start = performance.now();
  const version = await build();
  log(`trixie root ready in ${seconds(start)}: ${version}`);
  return { root: trixieRoot, version, built: true };
}
