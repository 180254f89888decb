// A fake kubelet's device manager, speaking the real device plugin API v1beta1 over
// unix sockets: it serves Registration on <dir>/kubelet.sock, and for each plugin that
// registers it dials the plugin's socket back, asks its options and keeps its
// ListAndWatch stream open, as the kubelet does. A restart removes every file of the
// folder but the checkpoint (the kubelet's startup does the same) and recreates kubelet.sock.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, type ClientReadableStream, Server, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import { devicePluginApi } from '../../../src/host/cluster/proto/load.js';
import { dialSocket, grpcError, serveOnSocket, stopServer, unaryCall } from '../../../src/host/cluster/grpc-unix.js';
import type {
  AllocateRequest, AllocateResponse, DevicePluginOptions, ListAndWatchResponse, PreferredAllocationRequest, PreferredAllocationResponse, RegisterRequest,
} from '../../../src/host/cluster/proto/messages.js';

export interface RegisteredPlugin {
  request: RegisterRequest;
  options: DevicePluginOptions;
  client: Client;
  stream: ClientReadableStream<ListAndWatchResponse>;
  /** Every ListAndWatch message, in order. */
  updates: ListAndWatchResponse[];
}

const RESOURCE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export class FakeKubelet {
  readonly plugins = new Map<string, RegisteredPlugin>();
  /** Every Register request, in order (registrations across restarts included). */
  readonly registrations: RegisterRequest[] = [];
  private server: Server | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(readonly dir: string) {}

  get socketPath(): string {
    return join(this.dir, 'kubelet.sock');
  }

  async start(): Promise<void> {
    for (const name of readdirSync(this.dir)) if (name !== 'kubelet_internal_checkpoint') rmSync(join(this.dir, name), { force: true });
    const { Registration } = devicePluginApi();
    this.server = await serveOnSocket(this.socketPath, (server) => {
      server.addService(Registration.service, {
        Register: (call: ServerUnaryCall<RegisterRequest, object>, done: sendUnaryData<object>) => {
          this.register(call.request).then(() => done(null, {}), (err: Error) => done(grpcError(status.INVALID_ARGUMENT, err.message)));
        },
      });
    });
  }

  async stop(): Promise<void> {
    for (const plugin of this.plugins.values()) {
      plugin.stream.cancel();
      plugin.client.close();
    }
    this.plugins.clear();
    if (this.server) await stopServer(this.server);
    this.server = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Resolves once `check` holds (checked on every registration and update), or rejects after `ms`. */
  async until<T>(check: () => T | undefined, what: string, ms = 5000): Promise<T> {
    const first = check();
    if (first !== undefined) return first;
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(value);
      };
      const timer = setTimeout(() => { this.waiters.delete(waiter); reject(new Error(`timed out waiting for ${what}`)); }, ms);
      this.waiters.add(waiter);
    });
  }

  /** The last device list a plugin streamed. */
  devices(resource: string): ListAndWatchResponse['devices'] | undefined {
    return this.plugins.get(resource)?.updates.at(-1)?.devices;
  }

  allocate(resource: string, request: AllocateRequest): Promise<AllocateResponse> {
    return unaryCall(this.plugin(resource).client, 'Allocate', request);
  }

  preferred(resource: string, request: PreferredAllocationRequest): Promise<PreferredAllocationResponse> {
    return unaryCall(this.plugin(resource).client, 'GetPreferredAllocation', request);
  }

  private plugin(resource: string): RegisteredPlugin {
    const plugin = this.plugins.get(resource);
    if (!plugin) throw new Error(`no plugin registered for ${resource}`);
    return plugin;
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** The kubelet's checks, then the dial back. */
  private async register(request: RegisterRequest): Promise<void> {
    if (request.version !== 'v1beta1') throw new Error(`unsupported device plugin version ${request.version}`);
    if (!RESOURCE.test(request.resource_name)) throw new Error(`invalid resource name ${request.resource_name}`);
    if (request.endpoint.includes('/')) throw new Error(`endpoint ${request.endpoint} is not a file name in the device-plugins folder`);
    this.registrations.push(request);
    const old = this.plugins.get(request.resource_name);
    if (old) { old.stream.cancel(); old.client.close(); }
    const { DevicePlugin } = devicePluginApi();
    const client = dialSocket<Client>(DevicePlugin, join(this.dir, request.endpoint));
    const options = await unaryCall<object, DevicePluginOptions>(client, 'GetDevicePluginOptions', {});
    const stream = (client as unknown as { ListAndWatch(req: object): ClientReadableStream<ListAndWatchResponse> }).ListAndWatch({});
    const plugin: RegisteredPlugin = { request, options, client, stream, updates: [] };
    stream.on('data', (update: ListAndWatchResponse) => { plugin.updates.push(update); this.notify(); });
    stream.on('error', () => undefined);
    this.plugins.set(request.resource_name, plugin);
    this.notify();
  }
}
