// The CLI's light links to the host layer. A command loads nothing until it needs it:
// the daemon's client only when a socket is there, the definition store only for a host
// in this process, and the full Host (addon, mock kernel, vendors: ~100 ms a process)
// only for a call that needs parents or live devices (bench/cli-start.ts).
import { statSync } from 'node:fs';
import type { DaemonClient } from '../host/daemon-client.js';
import type { HostApi } from '../host/api.js';
import type { DefinitionLoadError } from '../host/definitions.js';

/** A HostApi the CLI closes when it is done with it. */
export type ClosableHost = HostApi & { close(): Promise<void> | void };

export async function connectDaemon(socket: string): Promise<ClosableHost | undefined> {
  // No socket file, no daemon: connect would fail with ENOENT, which connectIfRunning
  // reads as "none runs"; saying so here spares loading the client.
  try {
    statSync(socket);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  }
  const { DaemonClient } = await import('../host/daemon-client.js');
  return DaemonClient.connectIfRunning(socket);
}

/** The host a command without a daemon answers from (local-host.ts). */
export async function createLocalHost(root: string): Promise<ClosableHost> {
  const { LocalHost } = await import('./local-host.js');
  return new LocalHost(root);
}

/**
 * The definitions root the host answering uses: the daemon says it in hello, a host in
 * this process keeps its store as `definitions`. Told apart by shape, so that neither the
 * client nor the store is loaded for this.
 */
export function definitionsRootOf(host: HostApi): string | undefined {
  const hello = (host as Partial<DaemonClient>).server;
  if (hello !== undefined) return hello.host['definitionsRoot'];
  const root = (host as { definitions?: { root?: unknown } }).definitions?.root;
  return typeof root === 'string' ? root : undefined;
}

/** The files under `root` that cannot be read as definitions (the host skips them). */
export async function unreadableDefinitions(root: string): Promise<DefinitionLoadError[]> {
  const { DefinitionStore } = await import('../host/definitions.js');
  return new DefinitionStore(root).load().errors;
}
