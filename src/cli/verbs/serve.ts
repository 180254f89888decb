// `vgpu serve`: runs the daemon: a host in this process (parents, registry, live vGPUs,
// definitions at --root) answering the management protocol on --socket until SIGTERM.
import { createInProcessHost, serveHost } from '../host-link.js';
import type { VerbSpec } from './verb.js';

export const serveVerb: VerbSpec = {
  name: 'serve',
  summary: 'Run the vgpu daemon: it owns the parents and live vGPUs and answers the CLI on a unix socket.',
  usage: 'serve [--socket PATH] [--root DIR]',
  help: ['  SIGTERM or SIGINT stops it: live vGPUs are released, definitions stay.'],
  options: {},
  async run(_parsed, cli) {
    const host = await createInProcessHost(cli.root);
    try {
      await serveHost(host, cli.socket);
    } catch (err) {
      await host.close();
      throw err;
    }
    cli.output.err(`vgpu serve: listening on ${cli.socket} (definitions in ${cli.root})`);
    return 0;
  },
};
