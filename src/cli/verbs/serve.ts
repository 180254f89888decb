// `vgpu serve`: runs the daemon: a host in this process (parents, registry, live vGPUs,
// definitions at --root) answering the management protocol on --socket, and serving
// every vGPU over vfio-user on <run dir>/<uuid>.sock, until SIGTERM, SIGINT or SIGHUP, which
// disconnect vfio-user clients, release the live vGPUs and leave the definitions as they are.
import { dirname } from 'node:path';
import { stringValue } from '../args.js';
import { createHost } from '../../host/host.js';
import { serveHost } from '../host-link.js';
import type { VerbSpec } from './verb.js';

export const serveVerb: VerbSpec = {
  name: 'serve',
  summary: 'Run the vgpu daemon: it owns the parents and live vGPUs, answers the CLI on a unix socket and serves each vGPU over vfio-user.',
  usage: 'serve [--socket PATH] [--root DIR] [--run-dir DIR]',
  help: [
    '  --run-dir DIR         where each vGPU\'s vfio-user socket goes, <DIR>/<UUID>.sock',
    '                        (default: the directory of the daemon\'s socket, /run/vfio-vgpu)',
    '  The sockets are made mode 0600 (their owner: whoever runs the daemon); a second daemon',
    '  on the same socket is refused. Once listening, every `start: auto` definition whose',
    '  parent exists is started. SIGTERM, SIGINT or SIGHUP stops it: vfio-user clients are',
    '  disconnected, live vGPUs released, definitions stay.',
  ],
  options: { 'run-dir': { type: 'string' } },
  async run({ values }, cli) {
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
  },
};
