// Keeps the node's pool of ResourceSlices on the API server equal to what the driver
// offers: slices missing (never made, or wiped by the kubelet) are created, changed
// ones replaced, extra ones deleted. Every change of content moves the pool to a new
// generation (the scheduler uses only a pool's newest generation), kept in a file so a
// restarted daemon goes on from it rather than starting again at 1 (a scheduler or
// kubelet that still knows the old slices would take the lower number for stale);
// shutdown removes the slices, so a node without the driver offers nothing.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../atomic-write.js';
import type { ClusterApi } from './cluster-api.js';
import { httpStatusOf } from './cluster-api.js';
import { buildSlices, type ResourceSliceObject, type SliceOptions } from './slices.js';
import type { OfferedDevice } from './devices.js';

/** JSON with sorted keys: the server may send fields in another order than we wrote them. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
}

/** The last generation saved in `path` (0 when there is none). */
function savedGeneration(path: string | undefined): number {
  if (path === undefined) return 0;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let generation: unknown;
  try {
    generation = (JSON.parse(text) as { generation?: unknown }).generation;
  } catch {
    generation = undefined;
  }
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) throw new Error(`${path} does not hold a pool generation (${JSON.stringify(text.slice(0, 80))}); remove it to start again from what the API server holds`);
  return generation;
}

export class SlicePublisher {
  private generation = 0;
  private lastContent: string | undefined;
  private readonly options: SliceOptions;

  /** `generationFile` keeps the pool's generation across restarts. */
  constructor(private readonly api: ClusterApi, options: SliceOptions, private readonly generationFile?: string) {
    this.options = { ...options };
    this.generation = savedGeneration(generationFile);
  }

  /** The Node's UID, named as the slices' owner from the next publish on. */
  setNodeUid(uid: string): void {
    this.options.nodeUid = uid;
  }

  /** Makes the API server's slices of this pool equal to `devices`; returns the slices as published. */
  async publish(offered: Iterable<OfferedDevice>): Promise<ResourceSliceObject[]> {
    const devices = [...offered];
    const existing = await this.api.listSlices(this.options.driver, this.options.node);
    if (this.lastContent === undefined) {
      // After a restart: go on from the newest generation the server holds or we saved.
      this.generation = existing.reduce((g, s) => Math.max(g, s.spec.pool.generation), this.generation);
    }
    const content = JSON.stringify(buildSlices(devices, this.options, 0));
    if (content !== this.lastContent) {
      this.generation++;
      this.lastContent = content;
      if (this.generationFile !== undefined) writeFileAtomic(this.generationFile, `${JSON.stringify({ generation: this.generation })}\n`, 0o644);
    }
    const wanted = buildSlices(devices, this.options, this.generation);
    const byName = new Map(existing.map((s) => [s.metadata.name, s]));
    const out: ResourceSliceObject[] = [];
    for (const slice of wanted) {
      const old = byName.get(slice.metadata.name);
      byName.delete(slice.metadata.name);
      if (!old) {
        out.push(await this.api.createSlice(slice));
      } else if (canonical(old.spec) !== canonical(slice.spec) || canonical(old.metadata.ownerReferences ?? []) !== canonical(slice.metadata.ownerReferences ?? [])) {
        const next = { ...slice, metadata: { ...slice.metadata, ...(old.metadata.resourceVersion === undefined ? {} : { resourceVersion: old.metadata.resourceVersion }) } };
        out.push(await this.api.replaceSlice(next));
      } else {
        out.push(old);
      }
    }
    for (const name of byName.keys()) await this.deleteQuietly(name);
    return out;
  }

  /** Deletes every slice of this pool. */
  async remove(): Promise<void> {
    for (const slice of await this.api.listSlices(this.options.driver, this.options.node)) await this.deleteQuietly(slice.metadata.name);
    this.lastContent = undefined;
  }

  private async deleteQuietly(name: string): Promise<void> {
    try {
      await this.api.deleteSlice(name);
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
    }
  }
}
