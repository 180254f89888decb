// The DRA kubelet plugin of the daemon: the registration service on
// <plugins_registry>/<driver>-reg.sock (the kubelet's plugin watcher finds it there),
// the DRAPlugin service in both versions the kubelet speaks (v1 and v1beta1) on
// <plugin dir>/dra.sock, and the node's ResourceSlices kept published: on every change
// of the host, after each prepare and unprepare, and every resync period in case the
// kubelet wiped them. At close the slices are removed and the sockets go.
import { join } from 'node:path';
import type { Server, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { makeDirectories } from '../../atomic-write.js';
import type { InventoryWatch } from '../inventory.js';
import { draApi, pluginRegistrationApi, type DraVersion } from '../proto/load.js';
import type {
  NodePrepareResourcesRequest, NodePrepareResourcesResponse, NodeUnprepareResourcesRequest, NodeUnprepareResourcesResponse, PluginInfo, RegistrationStatus,
} from '../proto/messages.js';
import { removeStaleSocket, serveOnSocket, stopServer } from '../grpc-unix.js';
import { Checkpoint } from './checkpoint.js';
import type { ClusterApi } from './cluster-api.js';
import { offeredDevices, type OfferedDevice } from './devices.js';
import { ClaimPreparer, DRA_HOLDER, type DraHost } from './prepare.js';
import { SlicePublisher } from './publisher.js';

export const DEFAULT_DRIVER = 'vgpu.vfio-vgpu.io';
export const DEFAULT_REGISTRY_DIR = '/var/lib/kubelet/plugins_registry';
export const DEFAULT_CDI_DIR = '/var/run/cdi';
export const DRA_VERSIONS: readonly DraVersion[] = ['v1', 'v1beta1'];

export function defaultPluginDir(driver: string): string {
  return `/var/lib/kubelet/plugins/${driver}`;
}

export interface DraOptions {
  driver: string;
  node: string;
  registryDir: string;
  pluginDir: string;
  cdiDir: string;
  partitionable: boolean;
  api: ClusterApi;
  host: DraHost;
  inventory: InventoryWatch;
  log: (line: string) => void;
  /** How often the slices are checked against the API server (default 10 s). */
  resyncMs?: number;
}

export class DraAgent {
  private readonly checkpoint: Checkpoint;
  private readonly preparer: ClaimPreparer;
  private readonly publisher: SlicePublisher;
  private offered = new Map<string, OfferedDevice>();
  private servers: Server[] = [];
  private unsubscribe: (() => void) | undefined;
  private resync: NodeJS.Timeout | undefined;
  private work: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** What the kubelet said of the registration last. */
  registration: RegistrationStatus | undefined;

  constructor(private readonly options: DraOptions) {
    makeDirectories(options.pluginDir, 0o750);
    this.checkpoint = new Checkpoint(join(options.pluginDir, 'checkpoint.json'));
    this.preparer = new ClaimPreparer({
      driver: options.driver, node: options.node, cdiDir: options.cdiDir, pluginDir: options.pluginDir, host: options.host, api: options.api,
      checkpoint: this.checkpoint, offered: () => this.offered,
    });
    this.publisher = new SlicePublisher(options.api, { driver: options.driver, node: options.node, partitionable: options.partitionable },
      join(options.pluginDir, 'pool-generation.json'));
  }

  get registrationSocket(): string {
    return join(this.options.registryDir, `${this.options.driver}-reg.sock`);
  }

  get pluginSocket(): string {
    return join(this.options.pluginDir, 'dra.sock');
  }

  async start(): Promise<void> {
    let nodeUid: string;
    try {
      nodeUid = await this.options.api.readNodeUid(this.options.node);
    } catch (err) {
      throw new Error(`DRA: cannot read the Node ${this.options.node} (is --node-name right, may the driver get nodes?): ${err instanceof Error ? err.message : String(err)}`);
    }
    this.publisher.setNodeUid(nodeUid);
    this.preparer.restoreHolds();
    this.offered = this.computeOffered();
    await this.serialized(() => this.publish());
    this.unsubscribe = this.options.inventory.subscribe(() => { void this.serialized(() => this.publish()); });
    this.servers.push(await serveOnSocket(this.pluginSocket, (server) => {
      for (const version of DRA_VERSIONS) {
        server.addService(draApi(version).DRAPlugin.service, {
          NodePrepareResources: (call: ServerUnaryCall<NodePrepareResourcesRequest, NodePrepareResourcesResponse>, done: sendUnaryData<NodePrepareResourcesResponse>) => {
            this.serialized(() => this.prepareAll(call.request)).then((res) => done(null, res), (err: Error) => done(err));
          },
          NodeUnprepareResources: (call: ServerUnaryCall<NodeUnprepareResourcesRequest, NodeUnprepareResourcesResponse>, done: sendUnaryData<NodeUnprepareResourcesResponse>) => {
            this.serialized(() => this.unprepareAll(call.request)).then((res) => done(null, res), (err: Error) => done(err));
          },
        });
      }
    }));
    makeDirectories(this.options.registryDir, 0o750);
    this.servers.push(await serveOnSocket(this.registrationSocket, (server) => {
      server.addService(pluginRegistrationApi().Registration.service, {
        GetInfo: (_call: ServerUnaryCall<object, PluginInfo>, done: sendUnaryData<PluginInfo>) => done(null, this.pluginInfo()),
        NotifyRegistrationStatus: (call: ServerUnaryCall<RegistrationStatus, object>, done: sendUnaryData<object>) => {
          this.registration = call.request;
          this.options.log(call.request.plugin_registered ? `DRA: registered with the kubelet as ${this.options.driver}`
            : `DRA: the kubelet refused the registration: ${call.request.error}`);
          done(null, {});
        },
      });
    }));
    this.resync = setInterval(() => { void this.serialized(() => this.publish()); }, this.options.resyncMs ?? 10_000);
    this.resync.unref();
  }

  pluginInfo(): PluginInfo {
    return { type: 'DRAPlugin', name: this.options.driver, endpoint: this.pluginSocket, supported_versions: DRA_VERSIONS.map((v) => `${v}.DRAPlugin`) };
  }

  /** Stops serving (the registration socket first, so the kubelet lets go), then removes the node's slices. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    if (this.resync) clearInterval(this.resync);
    for (const server of this.servers.reverse()) await stopServer(server);
    this.servers = [];
    removeStaleSocket(this.registrationSocket);
    removeStaleSocket(this.pluginSocket);
    await this.work.catch(() => undefined);
    try {
      await this.publisher.remove();
    } catch (err) {
      this.options.log(`DRA: removing the ResourceSlices failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Publishes now (after it, the API server has this node's slices as they are). */
  async republish(): Promise<void> {
    await this.options.inventory.poke();
    return this.serialized(() => this.publish());
  }

  /** One thing at a time: a prepare never races a publish or another prepare. */
  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const next = this.work.then(job, job);
    this.work = next.catch(() => undefined);
    return next;
  }

  private computeOffered(): Map<string, OfferedDevice> {
    const { holds } = this.options.host;
    // A vGPU a claim holds stays published (the scheduler knows it is allocated); one the
    // device plugin handed out is not this driver's to offer.
    const taken = (uuid: string): boolean => holds.holderIds(uuid).some((h) => !h.startsWith(DRA_HOLDER));
    return offeredDevices(this.options.node, this.options.inventory.current(), taken);
  }

  private async publish(): Promise<void> {
    if (this.closed) return;
    this.offered = this.computeOffered();
    try {
      await this.publisher.publish(this.offered.values());
    } catch (err) {
      this.options.log(`DRA: publishing the ResourceSlices failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async prepareAll(request: NodePrepareResourcesRequest): Promise<NodePrepareResourcesResponse> {
    const claims: NodePrepareResourcesResponse['claims'] = {};
    for (const claim of request.claims) claims[claim.uid] = await this.preparer.prepare(claim);
    await this.options.inventory.poke();
    await this.publish();
    return { claims };
  }

  private async unprepareAll(request: NodeUnprepareResourcesRequest): Promise<NodeUnprepareResourcesResponse> {
    const claims: NodeUnprepareResourcesResponse['claims'] = {};
    for (const claim of request.claims) claims[claim.uid] = { error: await this.preparer.unprepare(claim) };
    await this.options.inventory.poke();
    await this.publish();
    return { claims };
  }
}
