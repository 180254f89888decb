// `vgpu repl`: a node REPL with a host loaded.
import type { VerbSpec } from './verb.js';

export const replVerb: VerbSpec = {
  name: 'repl',
  summary: 'A node REPL with a host loaded (host, sys, registry, the VFIO client API, uapi).',
  usage: 'repl [--root DIR]',
  help: [],
  options: {},
  async run() {
    throw new Error('repl: not yet');
  },
};
