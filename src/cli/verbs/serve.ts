// `vgpu serve`: runs the daemon: a host in this process (parents, registry, live vGPUs,
// definitions at --root) answering the management protocol on --socket, and serving
// every vGPU over vfio-user on <run dir>/<uuid>.sock, until SIGTERM, SIGINT or SIGHUP, which
// disconnect vfio-user clients, release the live vGPUs and leave the definitions as they are.
import { dirname } from 'node:path';
import { flag, stringValue, type Parsed } from '../args.js';
import { createHost } from '../../host/host.js';
import { serveHost } from '../host-link.js';
import type { Cli } from '../context.js';
import type { ClusterOptions } from '../../host/cluster/agents.js';
import { sysError } from '../../addon/errors.js';

export async function run({ values }: Parsed, cli: Cli): Promise<number> {
  const log = (line: string): void => cli.output.err(`vgpu serve: ${line}`);
  const runDir = stringValue(values, 'run-dir') || dirname(cli.socket);
  // Checked before anything starts: a flag without its agent is refused, not ignored.
  const cluster = clusterOptions(values);
  const host = createHost({
    definitionsRoot: cli.root, report: log, started: (uuid) => log(`started auto definition ${uuid}`), vfioUser: { runDir },
  });
  let daemon: Awaited<ReturnType<typeof serveHost>>;
  try {
    daemon = await serveHost(host, cli.socket, log);
  } catch (err) {
    await host.close();
    throw err;
  }
  await host.startAuto();
  if (cluster.devicePlugin || cluster.dra) {
    // Loaded only when asked for: gRPC and the Kubernetes client are large.
    const { startClusterAgents } = await import('../../host/cluster/agents.js');
    try {
      await startClusterAgents(host, cluster, log);
    } catch (err) {
      // Not half a node agent: the daemon goes too (it closes the host).
      await daemon.close();
      throw err;
    }
  }
  log(`ready: fd layer ${host.sys.kind}, definitions in ${host.definitions.root}, vfio-user sockets in ${runDir}, ` +
    `parents: ${host.parentNames().join(', ') || 'none'}`);
  // The daemon keeps the process alive; its signal handler ends it.
  return 0;
}

/** The node agents `serve` was asked to run (--device-plugin, --dra) and their folders. */
function clusterOptions(values: Parsed['values']): ClusterOptions {
  const out: ClusterOptions = {};
  const orphan = (enabler: string, names: string[]): void => {
    const given = names.filter((n) => values[n] !== undefined);
    if (given.length > 0 && !flag(values, enabler)) {
      const err = sysError('EINVAL', 'serve');
      err.message = `--${given.join(', --')} ${given.length === 1 ? 'needs' : 'need'} --${enabler}`;
      throw err;
    }
  };
  orphan('device-plugin', ['device-plugin-dir', 'resource-domain', 'state-dir']);
  orphan('dra', ['dra-driver', 'node-name', 'kubeconfig', 'plugins-registry', 'dra-plugin-dir', 'cdi-dir', 'partitionable']);
  const opt = (name: string): string | undefined => stringValue(values, name);
  if (flag(values, 'device-plugin')) {
    out.devicePlugin = {};
    const dir = opt('device-plugin-dir');
    const domain = opt('resource-domain');
    const stateDir = opt('state-dir');
    if (dir !== undefined) out.devicePlugin.dir = dir;
    if (domain !== undefined) out.devicePlugin.domain = domain;
    if (stateDir !== undefined) out.devicePlugin.stateDir = stateDir;
  }
  if (flag(values, 'dra')) {
    const dra: NonNullable<typeof out.dra> = { partitionable: flag(values, 'partitionable') };
    const pairs: [keyof typeof dra, string][] = [['driver', 'dra-driver'], ['node', 'node-name'], ['registryDir', 'plugins-registry'],
      ['pluginDir', 'dra-plugin-dir'], ['cdiDir', 'cdi-dir'], ['kubeconfig', 'kubeconfig']];
    for (const [key, name] of pairs) {
      const value = opt(name);
      if (value !== undefined) (dra as Record<string, unknown>)[key] = value;
    }
    out.dra = dra;
  }
  return out;
}
