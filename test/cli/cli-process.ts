// Runs the built `vgpu` command as a user would (node dist/src/cli/vgpu.js), and a
// daemon of it, for the CLI tests. Every child is bounded in time and killed on exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/vgpu.js (the bundled command, package.json "bin"), next to this file's dist/test/cli/. */
export const vgpuJs = fileURLToPath(new URL('../../src/cli/vgpu.js', import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function vgpuEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, VGPU_SYS: 'mock', ...extra };
  delete env['VGPU_SOCKET'];
  delete env['VGPU_DEFINITIONS_ROOT'];
  delete env['VGPU_DEBUG'];
  return env;
}

/** Runs `vgpu args...` to its end (killed after timeoutMs). */
export function runVgpu(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [vgpuJs, ...args], { env: options.env ?? vgpuEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A `vgpu serve` child and what it has said on stderr. */
export interface DaemonProcess {
  child: ChildProcess;
  stderr(): string;
  /** Resolves with the exit code and signal once it has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startDaemon(socket: string, root: string, env = vgpuEnv(), timeoutMs = 10_000): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [vgpuJs, 'serve', '--socket', socket, '--root', root], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const daemon: DaemonProcess = { child, stderr: () => stderr, exited };
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void exited.then(() => { ended = true; });
  // "ready" is logged once the socket is bound and the auto definitions have started.
  while (!(existsSync(socket) && /^vgpu serve: ready/m.test(stderr))) {
    if (ended) throw new Error(`vgpu serve exited before listening: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`vgpu serve did not listen within ${timeoutMs} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return daemon;
}

/** SIGKILLs a daemon still running (a test's last guard). */
export function killDaemon(daemon: DaemonProcess | undefined): void {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
}
