// The process's locked-memory count (mm->locked_vm) and its limit: pinned DMA pages are
// charged here, across all containers of the process, as __account_locked_vm does.
// Without CAP_IPC_LOCK, going past RLIMIT_MEMLOCK is ENOMEM; with it, pages are still
// counted but never refused.
import { readFileSync } from 'node:fs';

export class LockedMemory {
  /** Pages currently charged. */
  lockedPages = 0;
  readonly limitPages: number;

  constructor(limitBytes: number, readonly capIpcLock: boolean, pageSize: number) {
    this.limitPages = Number.isFinite(limitBytes) ? Math.floor(limitBytes / pageSize) : Infinity;
  }

  /** Whether `pages` more may be charged now. */
  allows(pages: number): boolean {
    return this.capIpcLock || this.lockedPages + pages <= this.limitPages;
  }

  charge(pages: number): void {
    this.lockedPages += pages;
  }

  release(pages: number): void {
    this.lockedPages -= pages;
  }
}

/** RLIMIT_MEMLOCK of this process (soft limit) from /proc/self/limits; undefined if unknown. */
export function processMemlockLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
    const soft = line?.slice('Max locked memory'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Infinity;
    const n = soft === undefined ? NaN : Number(soft);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Root has CAP_IPC_LOCK on a stock kernel. */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
