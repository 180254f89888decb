// ResourceSlices (resource.k8s.io/v1) for the offered devices: one pool per node
// (named after the node), every slice of it carrying the pool's generation and slice
// count. Attributes: typeId, typeName, parent and mdevUUID (what KubeVirt reads).
// Partitionable mode adds a counter set per parent (its framebuffer) that each device
// consumes from, so the scheduler never places more than a board holds; the API allows
// counter sets and devices in different slices only, at most 8 sets a slice and 64
// devices a slice when they consume counters (128 otherwise).
import { dnsLabel } from '../names.js';
import type { OfferedDevice } from './devices.js';

export const MAX_DEVICES = 128;
export const MAX_COUNTING_DEVICES = 64;
export const MAX_COUNTER_SETS = 8;
export const FRAMEBUFFER_COUNTER = 'framebuffer';

export interface Attribute { string: string }
export interface Quantity { value: string }
export interface SliceDevice {
  name: string;
  attributes: Record<string, Attribute>;
  capacity?: Record<string, Quantity>;
  consumesCounters?: { counterSet: string; counters: Record<string, Quantity> }[];
}
export interface CounterSet { name: string; counters: Record<string, Quantity> }
export interface ResourceSliceObject {
  apiVersion: 'resource.k8s.io/v1';
  kind: 'ResourceSlice';
  metadata: { name: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; ownerReferences?: OwnerReference[] };
  spec: {
    driver: string;
    nodeName: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    devices?: SliceDevice[];
    sharedCounters?: CounterSet[];
  };
}

export interface OwnerReference { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }

export interface SliceOptions {
  driver: string;
  node: string;
  partitionable: boolean;
  /** The Node's UID: its slices name it as owner, so they go when the Node object is deleted. */
  nodeUid?: string;
}

/** The framebuffer bytes of a type, when its attributes say. */
function framebufferOf(device: OfferedDevice): number | undefined {
  const text = device.type.attributes['framebuffer'];
  const n = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function counterSetName(parent: string): string {
  return dnsLabel(`parent-${parent}`);
}

/** A device's attributes, in its slice and in its KEP-5304 metadata file alike. */
export function deviceAttributes(device: OfferedDevice): Record<string, Attribute> {
  return {
    typeId: { string: device.type.id },
    typeName: { string: device.type.name },
    parent: { string: device.parent },
    mdevUUID: { string: device.uuid },
  };
}

function sliceDevice(device: OfferedDevice, partitionable: boolean): SliceDevice {
  const out: SliceDevice = { name: device.name, attributes: deviceAttributes(device) };
  const fb = framebufferOf(device);
  if (fb !== undefined) {
    out.capacity = { [FRAMEBUFFER_COUNTER]: { value: String(fb) } };
    if (partitionable) out.consumesCounters = [{ counterSet: counterSetName(device.parent), counters: { [FRAMEBUFFER_COUNTER]: { value: String(fb) } } }];
  }
  return out;
}

/** A parent's framebuffer: what its vGPUs use plus what the roomiest type could still take. */
function parentFramebuffer(devices: OfferedDevice[]): number {
  let total = 0;
  const byType = new Map<string, { fb: number; live: number; free: number }>();
  for (const d of devices) {
    const fb = framebufferOf(d);
    if (fb === undefined) continue;
    const entry = byType.get(d.type.id) ?? { fb, live: 0, free: 0 };
    if (d.live) entry.live++;
    else entry.free++;
    byType.set(d.type.id, entry);
  }
  const used = [...byType.values()].reduce((n, t) => n + t.fb * t.live, 0);
  for (const t of byType.values()) total = Math.max(total, used + t.fb * t.free);
  return total;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The slices of the pool at `generation` (names "<node>-<driver>-<n>", spec only). */
export function buildSlices(devices: Iterable<OfferedDevice>, options: SliceOptions, generation: number): ResourceSliceObject[] {
  const sorted = [...devices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const specs: { devices?: SliceDevice[]; sharedCounters?: CounterSet[] }[] = [];
  if (options.partitionable) {
    const byParent = new Map<string, OfferedDevice[]>();
    for (const d of sorted) byParent.set(d.parent, [...(byParent.get(d.parent) ?? []), d]);
    const sets: CounterSet[] = [];
    for (const [parent, list] of [...byParent].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const fb = parentFramebuffer(list);
      if (fb > 0) sets.push({ name: counterSetName(parent), counters: { [FRAMEBUFFER_COUNTER]: { value: String(fb) } } });
    }
    for (const part of chunks(sets, MAX_COUNTER_SETS)) specs.push({ sharedCounters: part });
    for (const part of chunks(sorted.map((d) => sliceDevice(d, true)), MAX_COUNTING_DEVICES)) specs.push({ devices: part });
  } else {
    for (const part of chunks(sorted.map((d) => sliceDevice(d, false)), MAX_DEVICES)) specs.push({ devices: part });
  }
  // An empty pool is still published (one slice, no device), so the scheduler knows the node has none.
  if (specs.length === 0) specs.push({ devices: [] });
  const prefix = dnsLabel(`${options.node}-${options.driver}`).slice(0, 50);
  return specs.map((spec, i) => ({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: {
      name: `${prefix}-${i}`,
      ...(options.nodeUid === undefined ? {} : { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: options.node, uid: options.nodeUid, controller: true }] }),
    },
    spec: {
      driver: options.driver,
      nodeName: options.node,
      pool: { name: options.node, generation, resourceSliceCount: specs.length },
      ...spec,
    },
  }));
}
