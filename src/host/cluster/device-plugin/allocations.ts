// The device plugin's record of which vGPUs it handed to containers, kept in a file so
// a daemon restart loses none: each one held again (holds.ts) as the daemon starts.
// The kubelet never says when a container's devices are free again; its own checkpoint
// (kubelet_internal_checkpoint in its device-plugins folder) lists the allocations it
// still has, so a vGPU it no longer lists is released.
import { readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../../atomic-write.js';

export interface PluginAllocation {
  uuid: string;
  resource: string;
  /** When Allocate recorded it (ms since the epoch). */
  at: number;
}

interface AllocationFile {
  version: 1;
  allocations: PluginAllocation[];
}

export function readAllocations(path: string): PluginAllocation[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let file: Partial<AllocationFile>;
  try {
    file = JSON.parse(text) as Partial<AllocationFile>;
  } catch (err) {
    throw new Error(`${path} is not JSON (${err instanceof Error ? err.message : String(err)}); move it away to start with no allocation`);
  }
  if (file.version !== 1 || !Array.isArray(file.allocations)) throw new Error(`${path} is not a device plugin allocation file of version 1`);
  return file.allocations.filter((a): a is PluginAllocation =>
    typeof a === 'object' && a !== null && typeof a.uuid === 'string' && typeof a.resource === 'string' && typeof a.at === 'number');
}

export function writeAllocations(path: string, allocations: readonly PluginAllocation[]): void {
  const file: AllocationFile = { version: 1, allocations: [...allocations] };
  writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
}

/** The kubelet's checkpoint name in its device-plugins folder. */
export const KUBELET_CHECKPOINT = 'kubelet_internal_checkpoint';

/**
 * The device IDs the kubelet's checkpoint holds for `resources`, and when it was
 * written; undefined when there is no readable checkpoint (nothing is released then).
 */
export function kubeletHeldDevices(path: string, resources: ReadonlySet<string>): { ids: Set<string>; writtenAt: number } | undefined {
  let text: string;
  let writtenAt: number;
  try {
    text = readFileSync(path, 'utf8');
    writtenAt = statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
  let data: unknown;
  try {
    data = (JSON.parse(text) as { Data?: unknown }).Data;
  } catch {
    return undefined;
  }
  const entries = (data as { PodDeviceEntries?: unknown } | undefined)?.PodDeviceEntries;
  if (!Array.isArray(entries)) return undefined;
  const ids = new Set<string>();
  for (const entry of entries as { ResourceName?: unknown; DeviceIDs?: unknown }[]) {
    if (typeof entry?.ResourceName !== 'string' || !resources.has(entry.ResourceName)) continue;
    // DeviceIDs: per NUMA node ({"-1": [...]}) since 1.20, a plain list before.
    const lists = Array.isArray(entry.DeviceIDs) ? [entry.DeviceIDs] : Object.values((entry.DeviceIDs ?? {}) as Record<string, unknown>);
    for (const list of lists) if (Array.isArray(list)) for (const id of list) if (typeof id === 'string') ids.add(id);
  }
  return { ids, writtenAt };
}
