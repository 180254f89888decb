// The KubeVirt device plugin of the daemon: one ResourcePlugin per vGPU type name,
// registered with the kubelet on kubelet.sock, and registered again whenever the
// kubelet restarts (kubelet.sock recreated; the kubelet then also removes the plugins'
// sockets, so each plugin binds its socket again first). A vGPU the plugin showed whose
// parent has gone stays listed as Unhealthy until its parent returns.
import { existsSync, lstatSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@grpc/grpc-js';
import type { LiveDevice } from '../../api.js';
import type { AllocationHolds } from '../../holds.js';
import type { Inventory, InventoryWatch } from '../inventory.js';
import { devicePluginApi } from '../proto/load.js';
import type { RegisterRequest } from '../proto/messages.js';
import { dialSocket, unaryCall } from '../grpc-unix.js';
import { pluginSocketName, resourceNameOf } from '../names.js';
import { KUBELET_CHECKPOINT, kubeletHeldDevices, readAllocations, writeAllocations, type PluginAllocation } from './allocations.js';
import { PLUGIN_OPTIONS, ResourcePlugin, type ResourceDevice } from './plugin.js';

export const DEFAULT_DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
export const KUBELET_SOCKET = 'kubelet.sock';
export const DEVICE_PLUGIN_VERSION = 'v1beta1';
const HOLDER = 'device-plugin:';

export interface DevicePluginOptions {
  /** The kubelet's device-plugins folder (kubelet.sock and the plugins' sockets). */
  dir: string;
  /** Resources are "<domain>/<type name>". */
  domain: string;
  /** Where the allocations are kept across daemon restarts. */
  allocationsFile: string;
  inventory: InventoryWatch;
  holds: AllocationHolds;
  log: (line: string) => void;
  /** How often a failed registration is tried again and kubelet.sock looked at (default 1000 ms). */
  retryMs?: number;
}

export class DevicePluginAgent {
  private readonly plugins = new Map<string, ResourcePlugin>();
  /** vGPUs shown before, by UUID: kept as Unhealthy when their parent goes. */
  private readonly seen = new Map<string, { device: LiveDevice; resource: string }>();
  private allocations: PluginAllocation[];
  /** kubelet.sock's identity (inode and change time: a new socket may reuse the inode). */
  private kubeletId: string | undefined;
  private registered = new Set<string>();
  private watcher: FSWatcher | undefined;
  private retry: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: DevicePluginOptions) {
    this.allocations = readAllocations(options.allocationsFile);
    for (const a of this.allocations) options.holds.hold(a.uuid, HOLDER + a.resource, `a pod's container (KubeVirt device plugin, ${a.resource})`);
  }

  async start(): Promise<void> {
    const inventory = this.options.inventory.current();
    this.unsubscribe = this.options.inventory.subscribe((next) => { void this.queue(() => this.sync(next)); });
    // The kubelet announces a restart by recreating kubelet.sock: watch the folder, and
    // check the socket's inode on every inventory tick too (a watch can miss events).
    try {
      this.watcher = watch(this.options.dir, () => { void this.queue(() => this.checkKubelet()); });
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.options.log(`device plugin: cannot watch ${this.options.dir}: ${String(err)}; checking kubelet.sock on each poll instead`);
    }
    await this.queue(() => this.sync(inventory));
    this.retry = setInterval(() => { void this.queue(() => this.checkKubelet()); }, this.options.retryMs ?? 1000);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    this.watcher?.close();
    if (this.retry) clearInterval(this.retry);
    await this.syncing;
    for (const plugin of this.plugins.values()) await plugin.stop();
    this.plugins.clear();
  }

  /** The resources served now. */
  resources(): string[] {
    return [...this.plugins.keys()].sort();
  }

  plugin(resource: string): ResourcePlugin | undefined {
    return this.plugins.get(resource);
  }

  private queue(work: () => Promise<void>): Promise<void> {
    this.syncing = this.syncing.then(() => (this.closed ? undefined : work())).catch((err: unknown) => {
      this.options.log(`device plugin: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.syncing;
  }

  private async sync(inventory: Inventory): Promise<void> {
    const typeNames = new Map<string, string>();
    for (const t of inventory.types) typeNames.set(`${t.parent}\u0000${t.id}`, t.name);
    const parents = new Set(inventory.parents);
    const byResource = new Map<string, ResourceDevice[]>();
    for (const t of inventory.types) if (!byResource.has(this.resourceOf(t.name))) byResource.set(this.resourceOf(t.name), []);
    const live = new Set<string>();
    for (const device of inventory.devices) {
      const name = typeNames.get(`${device.parent}\u0000${device.type}`) ?? device.type;
      const resource = this.resourceOf(name);
      live.add(device.uuid);
      this.seen.set(device.uuid, { device, resource });
      const list = byResource.get(resource) ?? [];
      byResource.set(resource, list);
      list.push({ device, healthy: true });
    }
    for (const [uuid, { device, resource }] of this.seen) {
      if (live.has(uuid)) continue;
      if (parents.has(device.parent)) {
        this.seen.delete(uuid); // stopped on purpose (its parent is here): no longer offered
        continue;
      }
      const list = byResource.get(resource) ?? [];
      byResource.set(resource, list);
      list.push({ device, healthy: false });
    }
    for (const [resource, devices] of byResource) {
      let plugin = this.plugins.get(resource);
      if (!plugin) {
        plugin = new ResourcePlugin({
          resourceName: resource,
          socketPath: join(this.options.dir, pluginSocketName(resource)),
          allocated: (uuids) => this.allocated(resource, uuids),
          log: this.options.log,
        });
        await plugin.start();
        this.plugins.set(resource, plugin);
      }
      plugin.update(devices);
    }
    this.releaseFreed();
    await this.checkKubelet();
  }

  private resourceOf(typeName: string): string {
    return resourceNameOf(this.options.domain, typeName);
  }

  private allocated(resource: string, uuids: string[]): void {
    const at = Date.now();
    for (const uuid of uuids) {
      this.allocations = this.allocations.filter((a) => !(a.uuid === uuid && a.resource === resource));
      this.allocations.push({ uuid, resource, at });
      this.options.holds.hold(uuid, HOLDER + resource, `a pod's container (KubeVirt device plugin, ${resource})`);
    }
    writeAllocations(this.options.allocationsFile, this.allocations);
  }

  /** Releases the allocations the kubelet's checkpoint, written after them, no longer lists. */
  private releaseFreed(): void {
    if (this.allocations.length === 0) return;
    const held = kubeletHeldDevices(join(this.options.dir, KUBELET_CHECKPOINT), new Set(this.allocations.map((a) => a.resource)));
    if (!held) return;
    const keep = this.allocations.filter((a) => held.ids.has(a.uuid) || a.at >= held.writtenAt);
    if (keep.length === this.allocations.length) return;
    for (const a of this.allocations) if (!keep.includes(a)) this.options.holds.release(a.uuid, HOLDER + a.resource);
    this.allocations = keep;
    writeAllocations(this.options.allocationsFile, this.allocations);
  }

  /** Registers every plugin when kubelet.sock is new (a kubelet (re)start) or a registration is missing. */
  private async checkKubelet(): Promise<void> {
    const socket = join(this.options.dir, KUBELET_SOCKET);
    let id: string | undefined;
    try {
      const st = lstatSync(socket, { bigint: true });
      id = st.isSocket() ? `${st.ino}:${st.ctimeNs}` : undefined;
    } catch {
      id = undefined;
    }
    if (id === undefined) {
      this.kubeletId = undefined;
      this.registered.clear();
      return;
    }
    if (id !== this.kubeletId) {
      this.kubeletId = id;
      this.registered.clear();
    }
    for (const plugin of this.plugins.values()) {
      if (this.registered.has(plugin.resourceName)) continue;
      // A restarted kubelet removes the plugins' sockets: bind again before registering.
      if (!existsSync(plugin.socketPath)) {
        await plugin.stop();
        await plugin.start();
      }
      try {
        await register(socket, plugin);
        this.registered.add(plugin.resourceName);
        this.options.log(`device plugin: registered ${plugin.resourceName} with the kubelet`);
      } catch (err) {
        this.options.log(`device plugin: registering ${plugin.resourceName} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

async function register(kubeletSocket: string, plugin: ResourcePlugin): Promise<void> {
  const { Registration } = devicePluginApi();
  const client = dialSocket<Client>(Registration, kubeletSocket);
  try {
    const request: RegisterRequest = {
      version: DEVICE_PLUGIN_VERSION,
      endpoint: pluginSocketName(plugin.resourceName),
      resource_name: plugin.resourceName,
      options: PLUGIN_OPTIONS,
    };
    await unaryCall(client, 'Register', request);
  } finally {
    client.close();
  }
}
