// Keeps the node's pool of ResourceSlices on the API server equal to what the driver
// offers: slices missing (never made, or wiped by the kubelet) are created, changed
// ones replaced, extra ones deleted. Every change of content moves the pool to a new
// generation (the scheduler uses only a pool's newest generation); shutdown removes the
// slices, so a node without the driver offers nothing.
import type { ClusterApi } from './cluster-api.js';
import { httpStatusOf } from './cluster-api.js';
import { buildSlices, type ResourceSliceObject, type SliceOptions } from './slices.js';
import type { OfferedDevice } from './devices.js';

/** JSON with sorted keys: the server may send fields in another order than we wrote them. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
}

export class SlicePublisher {
  private generation = 0;
  private lastContent: string | undefined;

  constructor(private readonly api: ClusterApi, private readonly options: SliceOptions) {}

  /** Makes the API server's slices of this pool equal to `devices`; returns the slices as published. */
  async publish(offered: Iterable<OfferedDevice>): Promise<ResourceSliceObject[]> {
    const devices = [...offered];
    const existing = await this.api.listSlices(this.options.driver, this.options.node);
    if (this.lastContent === undefined) {
      // After a restart: go on from the newest generation the server holds.
      this.generation = existing.reduce((g, s) => Math.max(g, s.spec.pool.generation), 0);
    }
    const content = JSON.stringify(buildSlices(devices, this.options, 0));
    if (content !== this.lastContent || this.generation === 0) {
      this.generation++;
      this.lastContent = content;
    }
    const wanted = buildSlices(devices, this.options, this.generation);
    const byName = new Map(existing.map((s) => [s.metadata.name, s]));
    const out: ResourceSliceObject[] = [];
    for (const slice of wanted) {
      const old = byName.get(slice.metadata.name);
      byName.delete(slice.metadata.name);
      if (!old) {
        out.push(await this.api.createSlice(slice));
      } else if (canonical(old.spec) !== canonical(slice.spec)) {
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
