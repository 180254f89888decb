// The host programs the harness needs. When some are missing it names the one apt-get
// command that installs them, instead of failing halfway through a build.
import { which } from './exec.js';

export interface Tool {
  program: string;
  /** The Debian package that provides it. */
  pkg: string;
}

const tools: readonly Tool[] = [
  { program: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  { program: 'cpio', pkg: 'cpio' },
  { program: 'modprobe', pkg: 'kmod' },
  { program: 'depmod', pkg: 'kmod' },
  { program: 'xz', pkg: 'xz-utils' },
  { program: 'gzip', pkg: 'gzip' },
  { program: 'dpkg-deb', pkg: 'dpkg' },
  { program: 'apt-get', pkg: 'apt' },
  { program: 'apt-cache', pkg: 'apt' },
  { program: 'tar', pkg: 'tar' },
  { program: 'ldd', pkg: 'libc-bin' },
  // The kernel's mdev samples (mdev-samples.ts): Debian's headers build with gcc-12.
  { program: 'make', pkg: 'make' },
  { program: 'x86_64-linux-gnu-gcc-12', pkg: 'gcc-12' },
  { program: 'modinfo', pkg: 'kmod' },
];

/** What the vm phases add: the trixie root for QEMU 11, and QEMU run chrooted in a mount namespace. */
export const vmTools: readonly Tool[] = [
  { program: 'debootstrap', pkg: 'debootstrap' },
  { program: 'chroot', pkg: 'coreutils' },
  { program: 'unshare', pkg: 'util-linux' },
  { program: 'mount', pkg: 'mount' },
];

export interface ToolCheck {
  missing: string[];
  /** Empty when nothing is missing. */
  installCommand: string;
}

export function checkHostTools(extra: readonly Tool[] = []): ToolCheck {
  const missingTools = [...tools, ...extra].filter((t) => which(t.program) === undefined);
  const packages = [...new Set(missingTools.map((t) => t.pkg))];
  return {
    missing: missingTools.map((t) => t.program),
    installCommand: packages.length ? `apt-get install -y --no-install-recommends ${packages.join(' ')}` : '',
  };
}
