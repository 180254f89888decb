// Boots a guest on QEMU 11 (the trixie root, vm/qemu.ts) with vfio-user devices. QEMU
// runs chrooted into that root inside a private mount namespace (unshare, no fork: the
// child is QEMU itself), where the cache folder is bind-mounted at /host-cache: the
// sockets, the kernel and the initrd are reached there. The namespace, and so every
// mount, ends with QEMU: nothing is left mounted on any exit path. The serial console
// is stdio; the guest asks the host for things with marker facts, and `reply` writes a
// line back to the guest's console input.
import { relative } from 'node:path';
import { cacheDir } from '../paths.js';
import { runGuest, type BootResult, type GuestRunOptions } from '../boot.js';

/** Where the cache folder appears inside the trixie root. */
export const guestViewOfCache = '/host-cache';

export interface VfioUserDevice {
  /** The vGPU's vfio-user socket (under the cache folder). */
  socket: string;
  /** Its slot on the guest's PCI bus, e.g. 05.0. */
  addr: string;
}

export interface VmBootOptions extends GuestRunOptions {
  root: string;
  vmlinuz: string;
  initrd: string;
  devices: readonly VfioUserDevice[];
}

export const guestMemory = '2G';

/** A host path under the cache as QEMU sees it. */
export function inRoot(path: string): string {
  const rel = relative(cacheDir, path);
  if (rel.startsWith('..')) throw new Error(`${path} is not under ${cacheDir}`);
  return `${guestViewOfCache}/${rel}`;
}

export function vmQemuArgs(o: Pick<VmBootOptions, 'vmlinuz' | 'initrd' | 'devices'>): string[] {
  return [
    // Guest RAM in a shared memfd: the server maps it from the fds DMA_MAP carries.
    '-object', `memory-backend-memfd,id=mem,size=${guestMemory},share=on`,
    '-machine', 'q35,memory-backend=mem,kernel-irqchip=split', '-accel', 'tcg', '-cpu', 'max', '-m', guestMemory, '-smp', '2',
    '-nodefaults', '-display', 'none', '-serial', 'stdio', '-no-reboot',
    // aw-bits=39: the aperture QEMU 7.2's VT-d gives the edu phases (11.1's default is 48).
    '-device', 'intel-iommu,intremap=on,caching-mode=on,aw-bits=39',
    ...o.devices.flatMap((d) => ['-device', JSON.stringify({ driver: 'vfio-user-pci', socket: { path: inRoot(d.socket), type: 'unix' }, addr: d.addr })]),
    '-kernel', inRoot(o.vmlinuz), '-initrd', inRoot(o.initrd),
    '-append', 'console=ttyS0 intel_iommu=on panic=-1 loglevel=4 consoleblank=0',
  ];
}

/** unshare + mounts + chroot, ending in exec of QEMU (so the child's pid is QEMU's). */
export function launchCommand(root: string, qemuArgs: readonly string[]): { file: string; args: string[] } {
  const script = 'set -e; r=$1; shift; mkdir -p "$r/host-cache"; mount --bind "$HOST_CACHE" "$r/host-cache"; ' +
    'mount --bind /dev "$r/dev"; mount -t proc proc "$r/proc"; exec chroot "$r" qemu-system-x86_64 "$@"';
  return { file: 'unshare', args: ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'vm-qemu', root, ...qemuArgs] };
}

export function bootVm(options: VmBootOptions): Promise<BootResult> {
  const { file, args } = launchCommand(options.root, vmQemuArgs(options));
  return runGuest({ file, args, env: { ...process.env, HOST_CACHE: cacheDir } }, options);
}
