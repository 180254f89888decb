// `vgpu repl`: a node REPL with a host of its own loaded (the fd layer, the registry,
// the simulated parents, the definitions at --root) and, when a daemon runs, a client
// of it. Values print as their one-screen summaries; errors as code, errno and message.
// As in plain node, Ctrl-C interrupts a pending `await` (ERR_SCRIPT_EXECUTION_INTERRUPTED)
// and keys typed meanwhile (Ctrl-D) take effect after it; piped lines run one after
// another, an awaited one finishing before the next starts (repl-input.ts).
import { start, type REPLServer } from 'node:repl';
import { inspect } from 'node:util';
import { isSysError } from '../../addon/errors.js';
import type { MockSysLayer } from '../../sys/mock.js';
import type { SysLayer } from '../../sys/types.js';
import * as uapi from '../../uapi/index.js';
import * as vfio from '../../vfio/index.js';
import { VgpuRegistry } from '../../vgpu/index.js';
import { liveMigrateSimGpu } from '../../vendors/simgpu/live-migrate.js';
import { createHost, Host } from '../../host/host.js';
import { DaemonClient } from '../../host/daemon-client.js';
import { feedLinesInOrder } from './repl-input.js';
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
  const server = startRepl(colors);
  Object.assign(server.context, {
    host, sys: host.sys, registry: host.registry, daemon, vfio, uapi, ...vfio, liveMigrateSimGpu,
  });
  return new Promise<number>((resolve) => {
    server.on('exit', () => {
      void Promise.all([host.close(), daemon?.close()]).finally(() => resolve(0));
    });
  });
}

export interface ReplStreams {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** A terminal (keys, Ctrl-C, Ctrl-D); otherwise lines, fed in order. */
  terminal: boolean;
}

/** The REPL on stdin and stdout (or `streams`): summaries as values, Ctrl-C breaking an await. */
export function startRepl(colors: boolean, streams: ReplStreams = { input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true && process.stdout.isTTY === true }): REPLServer {
  const piped = streams.terminal ? undefined : feedLinesInOrder(streams.input);
  const server: REPLServer = start({
    prompt: 'vgpu> ', useColors: colors, writer: (value: unknown) => show(value, colors), breakEvalOnSigint: true,
    input: piped?.input ?? streams.input, output: streams.output, terminal: streams.terminal,
  });
  if (piped) {
    // The REPL prompts when a line (and its await) is done: the moment for the next one.
    const displayPrompt = server.displayPrompt.bind(server);
    server.displayPrompt = (preserveCursor?: boolean) => {
      displayPrompt(preserveCursor);
      piped.ready();
    };
    piped.ready();
    // .exit before the input ends: stop reading it, or the open pipe keeps the process alive.
    server.on('exit', () => piped.close());
  }
  return server;
}

/** One screen per value: the objects' own summaries, a short line for the host. */
export function show(value: unknown, colors: boolean): string {
  if (isSysError(value)) return `${value.code} (errno ${value.errno}${value.syscall ? `, ${value.syscall}` : ''}): ${value.message}`;
  if (value instanceof Host) {
    return `Host { fd layer ${value.sys.kind}, definitions ${value.definitions.root}, parents: ${value.parentNames().join(', ') || 'none'} }`;
  }
  if (value instanceof DaemonClient) {
    const s = value.server;
    return `DaemonClient { ${value.socketPath}: ${s.server} ${s.version}, pid ${s.pid}, protocol ${s.protocol}, since ${s.startedAt}, ` +
      `methods: ${s.methods.join(', ')} }`;
  }
  if (isSysLayer(value)) return sysSummary(value);
  if (value instanceof VgpuRegistry) {
    return `VgpuRegistry { drivers: ${value.driverList().map((d) => d.name).join(', ') || 'none'}, parents: ${value.parentList().map((p) => p.name).join(', ') || 'none'} }`;
  }
  return inspect(value, { colors, depth: 2, maxArrayLength: 20, maxStringLength: 200, breakLength: 100 });
}

function isSysLayer(value: unknown): value is SysLayer {
  const v = value as Partial<SysLayer> | null;
  return typeof v === 'object' && v !== null && (v.kind === 'mock' || v.kind === 'native') && typeof v.ioctl === 'function' && typeof v.sysfs === 'object';
}

/** The fd layer in one line: its kind and page size, and for the mock kernel its books. */
function sysSummary(sys: SysLayer): string {
  const kernel = (sys as Partial<MockSysLayer>).kernel;
  if (!kernel) return `SysLayer { fd layer ${sys.kind}, page size ${sys.pageSize} }`;
  return `SysLayer { fd layer mock (${kernel.flavour} flavour), page size ${sys.pageSize}, devices: ${kernel.deviceNames().join(', ') || 'none'}, ` +
    `open fds ${kernel.fds.size}, locked pages ${kernel.locked.lockedPages}, mappings ${kernel.mm.mappedCount} }`;
}
