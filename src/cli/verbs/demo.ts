// `vgpu demo [pci-address]`: the guided walk (demo.ts).
import { runDemo } from '../demo.js';
import type { Parsed } from '../args.js';

export async function run({ positionals }: Parsed): Promise<number> {
  return runDemo(positionals);
}
