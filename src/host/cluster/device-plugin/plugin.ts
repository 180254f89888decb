// One extended resource (one vGPU type) served to the kubelet over the device plugin
// API v1beta1 on its own socket: ListAndWatch streams the resource's vGPUs with their
// health, GetPreferredAllocation packs by parent, Allocate answers in KubeVirt's
// convention and records the allocation (allocations.ts) so the vGPU is held.
import type { Server, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { LiveDevice } from '../../api.js';
import { devicePluginApi } from '../proto/load.js';
import type {
  AllocateRequest, AllocateResponse, DevicePluginOptions, Empty, ListAndWatchResponse, PluginDevice, PreferredAllocationRequest,
  PreferredAllocationResponse, PreStartContainerRequest,
} from '../proto/messages.js';
import { grpcError, serveOnSocket, status, stopServer } from '../grpc-unix.js';
import { containerResponse } from './allocate.js';
import { preferredAllocation } from './preferred.js';

/** A vGPU of this resource as the plugin shows it. */
export interface ResourceDevice {
  device: LiveDevice;
  healthy: boolean;
}

export interface ResourcePluginOptions {
  resourceName: string;
  socketPath: string;
  /** Told of each allocation (container by container) before Allocate answers. */
  allocated: (uuids: string[]) => void;
  log: (line: string) => void;
}

export const PLUGIN_OPTIONS: DevicePluginOptions = { pre_start_required: false, get_preferred_allocation_available: true };

export class ResourcePlugin {
  private devices = new Map<string, ResourceDevice>();
  private readonly watchers = new Set<ServerWritableStream<Empty, ListAndWatchResponse>>();
  private server: Server | undefined;

  constructor(private readonly options: ResourcePluginOptions) {}

  get resourceName(): string {
    return this.options.resourceName;
  }

  get socketPath(): string {
    return this.options.socketPath;
  }

  async start(): Promise<void> {
    const { DevicePlugin } = devicePluginApi();
    this.server = await serveOnSocket(this.options.socketPath, (server) => {
      server.addService(DevicePlugin.service, {
        GetDevicePluginOptions: (_call: ServerUnaryCall<Empty, DevicePluginOptions>, done: sendUnaryData<DevicePluginOptions>) => done(null, PLUGIN_OPTIONS),
        ListAndWatch: (call: ServerWritableStream<Empty, ListAndWatchResponse>) => this.listAndWatch(call),
        GetPreferredAllocation: (call: ServerUnaryCall<PreferredAllocationRequest, PreferredAllocationResponse>, done: sendUnaryData<PreferredAllocationResponse>) =>
          this.answer(done, () => this.preferred(call.request)),
        Allocate: (call: ServerUnaryCall<AllocateRequest, AllocateResponse>, done: sendUnaryData<AllocateResponse>) =>
          this.answer(done, () => this.allocate(call.request)),
        PreStartContainer: (_call: ServerUnaryCall<PreStartContainerRequest, Empty>, done: sendUnaryData<Empty>) => done(null, {}),
      });
    });
  }

  async stop(): Promise<void> {
    for (const call of this.watchers) call.end();
    this.watchers.clear();
    if (this.server) await stopServer(this.server);
    this.server = undefined;
  }

  /** The resource's vGPUs now; watchers get the list when it differs from the last one sent. */
  update(devices: ResourceDevice[]): void {
    const before = JSON.stringify(this.list());
    this.devices = new Map(devices.map((d) => [d.device.uuid, d]));
    if (JSON.stringify(this.list()) === before) return;
    for (const call of this.watchers) call.write(this.list());
  }

  /** What ListAndWatch sends: every vGPU by UUID, sorted, with its health. */
  list(): ListAndWatchResponse {
    const devices: PluginDevice[] = [...this.devices.values()]
      .map(({ device, healthy }) => ({ ID: device.uuid, health: healthy ? 'Healthy' as const : 'Unhealthy' as const }))
      .sort((a, b) => (a.ID < b.ID ? -1 : 1));
    return { devices };
  }

  private listAndWatch(call: ServerWritableStream<Empty, ListAndWatchResponse>): void {
    this.watchers.add(call);
    const forget = (): void => { this.watchers.delete(call); };
    call.on('cancelled', forget);
    call.on('close', forget);
    call.on('error', forget);
    call.write(this.list());
  }

  private answer<T>(done: sendUnaryData<T>, work: () => T): void {
    try {
      done(null, work());
    } catch (err) {
      const code = (err as { grpcCode?: status }).grpcCode ?? status.INTERNAL;
      const message = err instanceof Error ? err.message : String(err);
      this.options.log(`${this.resourceName}: ${message}`);
      done(grpcError(code, message));
    }
  }

  private preferred(request: PreferredAllocationRequest): PreferredAllocationResponse {
    const container_responses = request.container_requests.map((r) => {
      const chosen = preferredAllocation(
        { available: r.available_deviceIDs, mustInclude: r.must_include_deviceIDs, size: r.allocation_size },
        (id) => this.devices.get(id)?.device.parent,
      );
      if (chosen instanceof Error) throw failure(status.INVALID_ARGUMENT, `${this.resourceName}: ${chosen.message}`);
      return { deviceIDs: chosen };
    });
    return { container_responses };
  }

  private allocate(request: AllocateRequest): AllocateResponse {
    // Every ID of every container is checked before anything is recorded.
    const containers = request.container_requests.map((r) => {
      if (r.devices_ids.length === 0) throw failure(status.INVALID_ARGUMENT, `${this.resourceName}: a container asks for no device`);
      if (new Set(r.devices_ids).size !== r.devices_ids.length) throw failure(status.INVALID_ARGUMENT, `${this.resourceName}: a device is asked for twice`);
      return r.devices_ids.map((id) => {
        const known = this.devices.get(id);
        if (!known) throw failure(status.NOT_FOUND, `${this.resourceName} has no device ${id}`);
        if (!known.healthy) throw failure(status.FAILED_PRECONDITION, `${this.resourceName} device ${id} is unhealthy (its parent ${known.device.parent} is gone)`);
        return known.device;
      });
    });
    const container_responses = containers.map((devices) => {
      this.options.allocated(devices.map((d) => d.uuid));
      return containerResponse(this.resourceName, devices);
    });
    return { container_responses };
  }
}

function failure(code: status, message: string): Error {
  return Object.assign(new Error(message), { grpcCode: code });
}
