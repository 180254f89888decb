// `vgpu serve`: runs the daemon: a host in this process (parents, registry, live vGPUs,
// definitions at --root) answering the management protocol on --socket, and serving
// every vGPU over vfio-user on <run dir>/<uuid>.sock, until SIGTERM, SIGINT or SIGHUP, which
// disconnect vfio-user clients, release the live vGPUs and leave the definitions as they are.
import { dirname } from 'node:path';
import { stringValue, type Parsed } from '../args.js';
import { createHost } from '../../host/host.js';
import { serveHost } from '../host-link.js';
import type { Cli } from '../context.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const log = (line: string): void => cli.output.err(`vgpu serve: ${line}`);
  const runDir = stringValue(values, 'run-dir') || dirname(cli.socket);
  const host = createHost({
    definitionsRoot: cli.root, report: log, started: (uuid) => log(`started auto definition ${uuid}`), vfioUser: { runDir },
  });
  try {
    await serveHost(host, cli.socket, log);
  } catch (err) {
    await host.close();
    throw err;
  }
  await host.startAuto();
  log(`ready: fd layer ${host.sys.kind}, definitions in ${host.definitions.root}, vfio-user sockets in ${runDir}, ` +
    `parents: ${host.parentNames().join(', ') || 'none'}`);
  // The daemon keeps the process alive; its signal handler ends it.
  return 0;
}
