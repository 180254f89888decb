// The CLI's heavy links to the host layer: the in-process Host and the daemon. Loaded
// only by the verbs that need them (definitions-link.ts holds the light ones).
import { serve, type Daemon } from '../host/daemon.js';
import { createHost, type Host } from '../host/host.js';

export { connectDaemon, definitionsRootOf, type ClosableHost } from './definitions-link.js';

export function createInProcessHost(root: string): Host {
  return createHost({ definitionsRoot: root });
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
