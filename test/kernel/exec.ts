// Small wrappers over child_process for the host-side tools (apt-get, dpkg-deb, tar,
// cpio, modprobe...). Every failure carries the command and the tail of its stderr.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve instead of throwing when the command exits non-zero. */
  allowFailure?: boolean;
  /** Kill the command and everything it started after this long (exit code 124). */
  timeoutMs?: number;
}

export class CommandError extends Error {
  constructor(readonly command: string, readonly result: RunResult) {
    const tail = result.stderr.trim().split('\n').slice(-15).join('\n');
    super(`command failed (exit ${result.code}): ${command}${tail ? `\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

/**
 * Runs a program (no shell) and collects its output. It runs in its own process group,
 * so a timeout, or the harness exiting, ends its children too (node --test's workers).
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const killGroup = (): void => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    process.once('exit', killGroup);
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      process.removeListener('exit', killGroup);
      reject(new Error(`cannot run ${file}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('exit', killGroup);
      const result: RunResult = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (timedOut ? `\n(killed after ${options.timeoutMs} ms)` : ''),
        code: timedOut ? 124 : code ?? (signal ? 128 : 1),
      };
      if (result.code !== 0 && !options.allowFailure) {
        reject(new CommandError([file, ...args].join(' '), result));
      } else {
        resolve(result);
      }
    });
  });
}

/** Runs a bash pipeline with pipefail, so a failure anywhere in it is seen. */
export function runPipeline(script: string, options: RunOptions = {}): Promise<RunResult> {
  return run('bash', ['-o', 'pipefail', '-euc', script], options);
}

/** Quotes one word for bash. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The absolute path of a program on PATH (plus the sbin directories), or undefined. */
export function which(program: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
