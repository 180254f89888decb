#!/usr/bin/env node
// The `vgpu` command (package.json "bin"): runs cli.ts with this process's streams.
import { runCli } from './cli.js';
import { processOutput } from './output.js';

// `vgpu list | head -1`: a reader that leaves early ends the output, not with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

runCli(process.argv.slice(2), { output: processOutput() }).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    // runCli reports every error itself; this is the last guard against a stack trace.
    process.stderr.write(`vgpu: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
