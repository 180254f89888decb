// The CLI's links to the host layer: the in-process Host, the daemon and its client,
// and mdevctl's JSON shapes. One file, so the verbs see one small surface.
import type { Definition, DefinitionAttr, HostApi, LiveDevice, TypeInfo } from '../host/api.js';

/** A HostApi the CLI closes when it is done with it. */
export type ClosableHost = HostApi & { close(): Promise<void> | void };

// Loaded by name while the host modules are written in parallel.
const load = async <T>(path: string): Promise<T> => (await import(path)) as T;

interface HostModule {
  createHost(options: { definitionsRoot?: string }): ClosableHost | Promise<ClosableHost>;
}
interface ClientModule {
  connectIfRunning(socketPath: string): Promise<ClosableHost | undefined>;
}
interface DaemonModule {
  serve(host: ClosableHost, options: { socketPath: string }): Promise<unknown>;
}

export async function createInProcessHost(root: string): Promise<ClosableHost> {
  return (await load<HostModule>('../host/host.js')).createHost({ definitionsRoot: root });
}

export async function connectDaemon(socket: string): Promise<ClosableHost | undefined> {
  return (await load<ClientModule>('../host/daemon-client.js')).connectIfRunning(socket);
}

export async function serveHost(host: ClosableHost, socket: string): Promise<unknown> {
  return (await load<DaemonModule>('../host/daemon.js')).serve(host, { socketPath: socket });
}

/** A --jsonfile's content: mdevctl's definition JSON. */
export interface JsonDefinition {
  type: string;
  start?: 'auto' | 'manual';
  attrs?: DefinitionAttr[];
}

export interface MdevctlJson {
  types(types: TypeInfo[]): string;
  list(devices: LiveDevice[]): string;
  defined(definitions: Definition[]): string;
  parseDefinition(text: string, source: string): JsonDefinition;
}

export async function mdevctlJson(): Promise<MdevctlJson> {
  throw new Error('mdevctl JSON not linked yet');
}
