// The CLI's links to the host layer: the in-process Host, the daemon and its client,
// the definition store and mdevctl's JSON shapes. One file, so the verbs see one small
// surface and tests can swap the hosts (context.ts's HostProvider).
import type { HostApi } from '../host/api.js';
import { DaemonClient } from '../host/daemon-client.js';
import { serve, type Daemon } from '../host/daemon.js';
import { DefinitionStore, type DefinitionLoadError } from '../host/definitions.js';
import { createHost, Host } from '../host/host.js';
import { definedListJson, liveListJson, parseDefinitionText, typesJson, type DefinitionBody } from '../host/mdevctl-json.js';

/** A HostApi the CLI closes when it is done with it. */
export type ClosableHost = HostApi & { close(): Promise<void> | void };

export { definedListJson, liveListJson, parseDefinitionText, typesJson, type DefinitionBody };

export function createInProcessHost(root: string): Host {
  return createHost({ definitionsRoot: root });
}

export function connectDaemon(socket: string): Promise<ClosableHost | undefined> {
  return DaemonClient.connectIfRunning(socket);
}

/** The definitions root the host answering uses: the daemon says it in hello. */
export function definitionsRootOf(host: HostApi): string | undefined {
  if (host instanceof Host) return host.definitions.root;
  if (host instanceof DaemonClient) return host.server.host['definitionsRoot'];
  return undefined;
}

/** The files under `root` that cannot be read as definitions (the host skips them). */
export function unreadableDefinitions(root: string): DefinitionLoadError[] {
  return new DefinitionStore(root).load().errors;
}

/** Runs the daemon over `host` until SIGTERM, SIGINT or SIGHUP, then autostarts the `auto` definitions. */
export async function serveHost(host: Host, socket: string, log: (line: string) => void): Promise<Daemon> {
  const daemon = await serve(host, {
    socketPath: socket,
    definitionsRoot: host.definitions.root,
    hostInfo: { definitionsRoot: host.definitions.root, sys: host.sys.kind, parents: host.parentNames().join(' ') },
    log,
  });
  return daemon;
}
