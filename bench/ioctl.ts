// ioctl through the addon against the same ioctl in C: FIONREAD on a memfd, with the
// result written through a pointer (the shape of every VFIO ioctl). The C program is
// built with `cc` into a temp dir from bench/ioctl-baseline.c. Target: <= 1.3x the
// 2-thread C program in the median.
//
// The machine may be busy, so C and JS are measured in alternating rounds, one timed
// run of ITERATIONS calls per side per round (after a warm-up run), and each figure is
// min / median / max over the rounds; the ratio is of the medians.
//
// Where the addon's ~55 ns over the 2-thread C go (throwaway N-API functions making the
// same syscall, alternated with the C program, fastest of 31 rounds, ns/call): the call
// into native code and back ~26, napi_get_cb_info ~4, the fd, the request and the
// TypedArray's data pointer ~24. Already left out: the Number for a 0 result (~6,
// native/ioctl.cc) and a hash lookup of `ioctl` in the raw exports (~5,
// src/addon/addon.ts). The rest is N-API's floor: every value crosses in its own call.
// The native fd layer's row shows what the project's own call path adds on top.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addon } from '../src/addon/addon.js';
import { createNativeSys } from '../src/sys/native.js';
import { alternate, nsPerCall, reportSpread, spread, title } from './report.js';

const ITERATIONS = 100_000;
const ROUNDS = 31;
const source = fileURLToPath(new URL('../../bench/ioctl-baseline.c', import.meta.url));

/** Builds the C baseline; returns a function timing one run after a warm-up (threads: 0 or 1 extra). */
function buildC(dir: string): (threads: number) => number {
  const binary = join(dir, 'ioctl-baseline');
  execFileSync('cc', ['-O2', '-pthread', '-o', binary, source], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (threads) => Number(execFileSync(binary, [String(ITERATIONS), '1', String(threads)], { encoding: 'utf8' }).trim());
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
    // Each loop checks the result and the value, as the C loop does.
    const view = (n: number): void => {
      for (let i = 0; i < n; i++) {
        if (a.ioctl(fd, FIONREAD, available) !== 0 || available[0] !== 4096) throw new Error(`FIONREAD gave ${available[0]}`);
      }
    };
    // The same call as the project makes it: through the native fd layer (src/sys),
    // whose ioctl takes a Uint8Array (here over the same 4 bytes).
    const sys = createNativeSys();
    const bytes = new Uint8Array(available.buffer);
    const layered = (n: number): void => {
      for (let i = 0; i < n; i++) {
        if (sys.ioctl(fd, FIONREAD, bytes) !== 0 || available[0] !== 4096) throw new Error(`FIONREAD gave ${available[0]}`);
      }
    };
    // The by-value path, for the record (FIOCLEX ignores its argument).
    const integer = (n: number): void => {
      for (let i = 0; i < n; i++) if (a.ioctl(fd, FIOCLEX, 0) !== 0) throw new Error('FIOCLEX failed');
    };
    const runs = alternate(ROUNDS, {
      single: () => measureC(0),
      threaded: () => measureC(1),
      view: () => nsPerCall(ITERATIONS, view),
      layered: () => nsPerCall(ITERATIONS, layered),
      integer: () => nsPerCall(ITERATIONS, integer),
    });
    const single = spread(runs.single);
    const threaded = spread(runs.threaded);
    const ours = spread(runs.view);
    title(`ioctl: ${ROUNDS} alternating rounds of ${ITERATIONS} calls (ns/call: median, ratio of medians, min..max)`);
    reportSpread('C ioctl(FIONREAD, &int), 1 thread', single, 'ns');
    reportSpread('C ioctl(FIONREAD, &int), 2 threads', threaded, 'ns');
    // Like for like: Node always runs several threads, and the kernel's fd lookup costs
    // more in a multi-threaded process (fdget takes a reference when the file table is
    // shared), so the 2-thread C program is the fair baseline; the 1-thread ratio is
    // printed too, since the bare syscall floor is what it shows.
    reportSpread('addon ioctl(FIONREAD, Int32Array)', ours, 'ns', 'C (2 threads)', threaded);
    reportSpread('  the same, against the 1-thread C', ours, 'ns', 'C (1 thread)', single);
    reportSpread('native fd layer sys.ioctl(FIONREAD, Uint8Array)', spread(runs.layered), 'ns', 'addon', ours);
    reportSpread('addon ioctl(FIOCLEX, 0)', spread(runs.integer), 'ns');
  } finally {
    a.close(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
