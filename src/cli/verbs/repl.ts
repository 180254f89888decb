// `vgpu repl`: a node REPL with a host of its own loaded (the fd layer, the registry,
// the simulated parents, the definitions at --root) and, when a daemon runs, a client
// of it. Values print as their one-screen summaries; errors as code, errno and message.
import { start, type REPLServer } from 'node:repl';
import { inspect } from 'node:util';
import { isSysError } from '../../addon/errors.js';
import * as uapi from '../../uapi/index.js';
import * as vfio from '../../vfio/index.js';
import { VgpuRegistry } from '../../vgpu/index.js';
import { liveMigrateSimGpu } from '../../vendors/simgpu/live-migrate.js';
import { createHost, Host } from '../../host/host.js';
import { connectDaemon } from '../host-link.js';
import { replGuide } from './repl-guide.js';
import type { Parsed } from '../args.js';
import type { Cli } from '../context.js';

export async function run(_parsed: Parsed, cli: Cli): Promise<number> {
  const host = createHost({ definitionsRoot: cli.root });
  const daemon = await connectDaemon(cli.socket).catch(() => undefined);
  const colors = cli.output.color;
  const guide = replGuide(host, daemon !== undefined, cli.socket);
  for (const line of guide) cli.output.out(line);
  const server: REPLServer = start({ prompt: 'vgpu> ', useColors: colors, writer: (value: unknown) => show(value, colors) });
  Object.assign(server.context, {
    host, sys: host.sys, registry: host.registry, daemon, vfio, uapi, ...vfio, liveMigrateSimGpu,
  });
  return new Promise<number>((resolve) => {
    server.on('exit', () => {
      void Promise.all([host.close(), daemon?.close()]).finally(() => resolve(0));
    });
  });
}

/** One screen per value: the objects' own summaries, a short line for the host. */
export function show(value: unknown, colors: boolean): string {
  if (isSysError(value)) return `${value.code} (errno ${value.errno}${value.syscall ? `, ${value.syscall}` : ''}): ${value.message}`;
  if (value instanceof Host) {
    return `Host { fd layer ${value.sys.kind}, definitions ${value.definitions.root}, parents: ${value.parentNames().join(', ') || 'none'} }`;
  }
  if (value instanceof VgpuRegistry) {
    return `VgpuRegistry { drivers: ${value.driverList().map((d) => d.name).join(', ') || 'none'}, parents: ${value.parentList().map((p) => p.name).join(', ') || 'none'} }`;
  }
  return inspect(value, { colors, depth: 2, maxArrayLength: 20, maxStringLength: 200, breakLength: 100 });
}
