// Step 3: boot a kernel and its image in QEMU (TCG, q35, emulated VT-d with interrupt
// remapping, edu at 00:04.0) and collect the serial console. QEMU exits 0 whatever the
// guest did, so the caller judges by the console; this only guarantees an end: a hard
// timeout kills QEMU, and so does a guest that printed its last marker but hangs.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { marker } from './markers.js';

export interface BootOptions {
  vmlinuz: string;
  initrd: string;
  /** The serial console is written here as it arrives. */
  logPath: string;
  timeoutSeconds: number;
  /** Echo the console to stdout while it runs. */
  echo: boolean;
}

export interface BootResult {
  serial: string;
  /** QEMU's own stderr (aborts, device errors). */
  qemuStderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** QEMU could not be started at all. */
  spawnError?: string;
  /** From start to the guest's first marker (kernel boot + unpacking the image). */
  bootSeconds?: number;
  totalSeconds: number;
}

/** How long a guest that printed `done` gets to power off before it is killed. */
const graceAfterDoneMs = 15_000;

export function qemuArgs(vmlinuz: string, initrd: string): string[] {
  return [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', '2G', '-smp', '2',
    '-nodefaults', '-display', 'none', '-serial', 'stdio', '-no-reboot',
    '-device', 'intel-iommu,intremap=on,caching-mode=on',
    '-device', 'edu,addr=04.0',
    '-kernel', vmlinuz, '-initrd', initrd,
    '-append', 'console=ttyS0 intel_iommu=on panic=-1 loglevel=4',
  ];
}

export function boot(options: BootOptions): Promise<BootResult> {
  return runGuest({ file: 'qemu-system-x86_64', args: qemuArgs(options.vmlinuz, options.initrd) }, options);
}

/** How to start QEMU (directly, or through a launcher that ends in exec of QEMU). */
export interface GuestCommand {
  file: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
}

export interface GuestRunOptions {
  logPath: string;
  timeoutSeconds: number;
  echo: boolean;
  /** A marker fact from the guest (word, text); `reply` sends one line to its console. */
  onFact?: (word: string, text: string, reply: (line: string) => void) => void;
}

/**
 * Runs one guest to its end and collects its serial console: every boot of the harness
 * (the edu phases on QEMU 7.2, the vm phases on QEMU 11) goes through here. Marker lines
 * are read whole, so a marker cut between two reads is still seen.
 */
export function runGuest(command: GuestCommand, options: GuestRunOptions): Promise<BootResult> {
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
    const child = spawn(command.file, [...command.args], { stdio: ['pipe', 'pipe', 'pipe'], env: command.env ?? process.env });
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutSeconds * 1000);
    // A harness that exits (Ctrl-C, SIGTERM) takes its guest with it.
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
        // A guest that said `done` but hangs instead of powering off is ended.
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
