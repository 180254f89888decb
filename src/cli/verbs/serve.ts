// `vgpu serve`: runs the daemon: a host in this process (parents, registry, live vGPUs,
// definitions at --root) answering the management protocol on --socket until SIGTERM
// or SIGINT, which release the live vGPUs and leave the definitions as they are.
import { createHost } from '../../host/host.js';
import { serveHost } from '../host-link.js';
import type { VerbSpec } from './verb.js';

export const serveVerb: VerbSpec = {
  name: 'serve',
  summary: 'Run the vgpu daemon: it owns the parents and live vGPUs and answers the CLI on a unix socket.',
  usage: 'serve [--socket PATH] [--root DIR]',
  help: [
    '  The socket is made mode 0600 (its owner: whoever runs the daemon); a second daemon',
    '  on the same socket is refused. Once listening, every `start: auto` definition whose',
    '  parent exists is started. SIGTERM or SIGINT stops it: live vGPUs are released,',
    '  definitions stay.',
  ],
  options: {},
  async run(_parsed, cli) {
    const log = (line: string): void => cli.output.err(`vgpu serve: ${line}`);
    const host = createHost({ definitionsRoot: cli.root, report: log });
    try {
      await serveHost(host, cli.socket, log);
    } catch (err) {
      await host.close();
      throw err;
    }
    const auto = await host.startAuto();
    for (const uuid of auto.started) log(`started auto definition ${uuid}`);
    log(`ready: fd layer ${host.sys.kind}, definitions in ${cli.root}, parents: ${host.parentNames().join(', ') || 'none'}`);
    // The daemon keeps the process alive; its signal handler ends it.
    return 0;
  },
};
