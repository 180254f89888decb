// `vgpu demo [pci-address]`: the guided walk (demo.ts).
import { runDemo } from '../demo.js';
import type { VerbSpec } from './verb.js';

export const demoVerb: VerbSpec = {
  name: 'demo',
  summary: 'A guided walk through the VFIO client and the vGPU core (the mock kernel unless VGPU_SYS=native).',
  usage: 'demo [PCI-ADDRESS]',
  help: ['  PCI-ADDRESS           the edu device to walk through (default 0000:00:04.0)'],
  options: {},
  maxPositionals: 1,
  run: ({ positionals }) => runDemo(positionals),
};
