// One user of a real device at a time. A VFIO group opens only once (EBUSY), and
// `node --test` runs test files in parallel processes, so on a real kernel each file
// holds this lock while it uses the device. A lock left by a dead process is taken over.
// (The e2e test may take the same lock: acquireDeviceLock(address).)
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const POLL_MS = 50;
const TIMEOUT_MS = 15 * 60 * 1000;

export function deviceLockPath(address: string): string {
  return path.join(os.tmpdir(), `vfio-vgpu-${address.replace(/[^0-9A-Za-z.]/g, '_')}.lock`);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Blocks until this process holds the device's lock file. */
export function acquireDeviceLock(address: string): void {
  const file = deviceLockPath(address);
  mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      try { writeSync(fd, `${process.pid}\n`); } finally { closeSync(fd); }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try { owner = Number.parseInt(readFileSync(file, 'utf8'), 10); } catch { /* just released */ }
    if (owner === process.pid) return;
    if (Number.isInteger(owner) && !alive(owner)) {
      try { unlinkSync(file); } catch { /* someone else took it over */ }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${file} is still held by pid ${owner}`);
    sleepSync(POLL_MS);
  }
}

export function releaseDeviceLock(address: string): void {
  const file = deviceLockPath(address);
  try {
    if (Number.parseInt(readFileSync(file, 'utf8'), 10) === process.pid) unlinkSync(file);
  } catch { /* not held */ }
}
