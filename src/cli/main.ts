#!/usr/bin/env node
// The `vgpu` command (package.json "bin"): runs cli.ts with this process's streams.
// cli.ts is loaded dynamically so that even a broken install (a module that fails to
// load) ends in one line on stderr rather than a stack trace.
import { processOutput } from './output.js';

// `vgpu list | head -1`: a reader that leaves early ends the output, not with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';

import('./cli.js').then(
  ({ runCli }) => runCli(process.argv.slice(2), { output: processOutput() }),
  (err: unknown) => {
    process.stderr.write(`vgpu: cannot load the vgpu command: ${firstLine(err)}\n`);
    if (process.env['VGPU_DEBUG'] === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  },
).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    // runCli reports every error itself; this is the last guard against a stack trace.
    process.stderr.write(`vgpu: ${firstLine(err)}\n`);
    process.exitCode = 1;
  },
);
