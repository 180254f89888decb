// ioctl through the addon against the same ioctl in C: FIONREAD on a memfd, with the
// result written through a pointer (the shape of every VFIO ioctl). The C program is
// built with `cc` into a temp dir from bench/ioctl-baseline.c. Target: <= 1.5x C.
//
// The machine may be busy, so C and JS are measured in alternating rounds of short
// runs, and each side keeps its best run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addon } from '../src/addon/addon.js';
import { bestNsPerCall, report, title } from './report.js';

const ITERATIONS = 200_000;
const RUNS = 5;
const ROUNDS = 4;
const source = fileURLToPath(new URL('../../bench/ioctl-baseline.c', import.meta.url));

/** Builds the C baseline; returns a function measuring it (threads: 0 or 1 extra). */
function buildC(dir: string): (threads: number) => number {
  const binary = join(dir, 'ioctl-baseline');
  execFileSync('cc', ['-O2', '-pthread', '-o', binary, source], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (threads) => Number(execFileSync(binary, [String(ITERATIONS), String(RUNS), String(threads)], { encoding: 'utf8' }).trim());
}

export async function run(): Promise<void> {
  const a = addon();
  const FIONREAD = a.constants.FIONREAD!;
  const FIOCLEX = a.constants.FIOCLEX!;
  const dir = mkdtempSync(join(tmpdir(), 'vfio-vgpu-bench-'));
  const fd = a.memfdCreate('ioctl-bench', a.constants.MFD_CLOEXEC!);
  try {
    const measureC = buildC(dir);
    a.ftruncate(fd, 4096n);
    const available = new Int32Array(1);
    const best = { single: Infinity, threaded: Infinity, view: Infinity, integer: Infinity };
    for (let round = 0; round < ROUNDS; round++) {
      best.single = Math.min(best.single, measureC(0));
      best.threaded = Math.min(best.threaded, measureC(1));
      best.view = Math.min(best.view, bestNsPerCall(ITERATIONS, RUNS, (n) => {
        for (let i = 0; i < n; i++) {
          a.ioctl(fd, FIONREAD, available);
          if (available[0] !== 4096) throw new Error(`FIONREAD gave ${available[0]}`);
        }
      }));
      // The by-value path, for the record (FIOCLEX ignores its argument).
      best.integer = Math.min(best.integer, bestNsPerCall(ITERATIONS, RUNS, (n) => {
        for (let i = 0; i < n; i++) a.ioctl(fd, FIOCLEX, 0);
      }));
    }
    title(`ioctl: best of ${ROUNDS} x ${RUNS} runs of ${ITERATIONS} calls`);
    report('C ioctl(FIONREAD, &int), 1 thread', best.single, 'ns/call');
    report('C ioctl(FIONREAD, &int), 2 threads', best.threaded, 'ns/call');
    // Like for like: Node always runs several threads, and the kernel's fd lookup costs
    // more in a multi-threaded process (fdget takes a reference when the file table is
    // shared), so the 2-thread C program is the fair baseline; the 1-thread ratio is
    // printed too, since the bare syscall floor is what it shows.
    report('addon ioctl(FIONREAD, Int32Array)', best.view, 'ns/call', 'C (2 threads)', best.threaded);
    report('  the same, against the 1-thread C', best.view, 'ns/call', 'C (1 thread)', best.single);
    report('addon ioctl(FIOCLEX, 0)', best.integer, 'ns/call');
  } finally {
    a.close(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
