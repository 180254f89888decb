// Boots a guest on QEMU 11 (the trixie root, vm/qemu.ts) with vfio-user devices. QEMU
// runs chrooted into that root inside a private mount namespace (unshare, no fork: the
// child is QEMU itself), where the cache folder is bind-mounted at /host-cache: the
// sockets, the kernel and the initrd are reached there. The namespace, and so every
// mount, ends with QEMU: nothing is left mounted on any exit path. The serial console
// is stdio; the guest asks the host for things with marker facts, and `reply` writes a
// line back to the guest's console input.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { relative } from 'node:path';
import { cacheDir } from '../paths.js';
import { marker } from '../markers.js';
import type { BootResult } from '../boot.js';

/** Where the cache folder appears inside the trixie root. */
export const guestViewOfCache = '/host-cache';

export interface VfioUserDevice {
  /** The vGPU's vfio-user socket (under the cache folder). */
  socket: string;
  /** Its slot on the guest's PCI bus, e.g. 05.0. */
  addr: string;
}

export interface VmBootOptions {
  root: string;
  vmlinuz: string;
  initrd: string;
  devices: readonly VfioUserDevice[];
  logPath: string;
  timeoutSeconds: number;
  echo: boolean;
  /** A marker fact from the guest (word, text); `reply` sends one line to its console. */
  onFact?: (word: string, text: string, reply: (line: string) => void) => void;
}

const graceAfterDoneMs = 15_000;
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
  const start = performance.now();
  const elapsed = (): number => (performance.now() - start) / 1000;
  return new Promise((resolve) => {
    const log = createWriteStream(options.logPath);
    const chunks: Buffer[] = [];
    const errChunks: Buffer[] = [];
    let timedOut = false;
    let bootSeconds: number | undefined;
    let partial = '';
    let doneTimer: NodeJS.Timeout | undefined;
    let spawnError: string | undefined;
    const { file, args } = launchCommand(options.root, vmQemuArgs(options));
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOST_CACHE: cacheDir } });
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutSeconds * 1000);
    process.once('exit', kill);
    const reply = (line: string): void => {
      if (child.stdin.writable) child.stdin.write(`${line}\n`);
    };
    child.stdin.on('error', () => { /* QEMU gone: nothing to tell */ });

    child.stdout.on('data', (b: Buffer) => {
      chunks.push(b);
      log.write(b);
      if (options.echo) process.stdout.write(b.toString('utf8').replace(/\r/g, ''));
      const lines = (partial + b.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        const at = raw.indexOf(marker);
        if (at < 0) continue;
        if (bootSeconds === undefined) bootSeconds = elapsed();
        const [word = '', ...rest] = raw.slice(at + marker.length).replace(/\r/g, '').trim().split(/\s+/);
        if (word === 'done' && !doneTimer) doneTimer = setTimeout(kill, graceAfterDoneMs);
        options.onFact?.(word, rest.join(' '), reply);
      }
    });
    child.stderr.on('data', (b: Buffer) => errChunks.push(b));
    child.on('error', (e) => {
      spawnError = e.message;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('exit', kill);
      if (doneTimer) clearTimeout(doneTimer);
      log.end();
      const result: BootResult = {
        serial: Buffer.concat(chunks).toString('utf8'),
        qemuStderr: Buffer.concat(errChunks).toString('utf8'),
        exitCode: code,
        signal,
        timedOut,
        totalSeconds: elapsed(),
      };
      if (spawnError !== undefined) result.spawnError = spawnError;
      if (bootSeconds !== undefined) result.bootSeconds = bootSeconds;
      resolve(result);
    });
  });
}
