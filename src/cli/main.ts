#!/usr/bin/env node
// The `vgpu` command: a table of verbs, each in a module of its own.
import { runDemo } from './demo.js';

type Verb = (args: string[]) => Promise<number>;

const verbs: Record<string, Verb> = {
  demo: runDemo,
};

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  const run = verb === undefined ? undefined : verbs[verb];
  if (!run) {
    process.stderr.write(`vgpu: ${verb === undefined ? 'no verb given' : `unknown verb '${verb}'`}; verbs: ${Object.keys(verbs).join(', ')}\n`);
    return 2;
  }
  return run(args);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`vgpu: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
