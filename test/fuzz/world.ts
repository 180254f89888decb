// The mock host the in-process fuzz targets act on: the mock kernel with a simulated
// edu (vfio-pci, group 0) and a simgpu board on the mdev bus, and the accounting read
// back after every input: fds (the mock's table and the process's), locked pages,
// mapped and pin-retained memory, live vGPUs, forced unpins.
import { readdirSync } from 'node:fs';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import { simgpuWorld, type SimGpuWorld } from '../vendors/simgpu-world.js';
import { check } from './target.js';

export const EDU = '0000:00:04.0';

export interface Accounting {
  mockFds: number;
  processFds: number;
  lockedPages: number;
  mapped: number;
  retained: number;
  vgpus: number;
  forcedUnpins: number;
}

export function fuzzWorld(): SimGpuWorld {
  // A small board: vGPUs of 512 MiB, at most two, so a created one is cheap.
  return simgpuWorld([{ framebufferSize: 1024 ** 3 }], { devices: [createEduDevice(EDU)] });
}

export function accounting(world: SimGpuWorld): Accounting {
  const k = world.sys.kernel;
  let forced = 0;
  for (const d of world.devices.values()) forced += d.forcedUnpins;
  return {
    mockFds: k.fds.size,
    processFds: readdirSync('/proc/self/fd').length,
    lockedPages: k.locked.lockedPages,
    mapped: k.mm.mappedCount,
    retained: k.mm.retainedCount,
    vgpus: world.registry.list().length,
    forcedUnpins: forced,
  };
}

/** Everything the input opened is closed: the accounting is back where it started. */
export function checkBalanced(before: Accounting, after: Accounting, what: string): void {
  for (const key of Object.keys(before) as (keyof Accounting)[]) {
    check(before[key] === after[key], () => `${what}: ${key} ${before[key]} before, ${after[key]} after everything was closed`);
  }
}
