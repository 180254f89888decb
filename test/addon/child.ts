// Runs a small ES-module script in a child `node`, with `addon` already loaded through
// the compiled src/addon/addon.js (whose path is `addonModule`): for what must not happen in the test process itself
// (exit behaviour, forced GC, uncaught exceptions, worker teardown).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const addonModule = fileURLToPath(new URL('../../src/addon/addon.js', import.meta.url));

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runChild(script: string, options: { nodeArgs?: string[]; timeoutMs?: number } = {}): ChildResult {
  const prelude = `const addonModule = ${JSON.stringify(addonModule)};\n` +
    'const { addon: load } = await import(addonModule); const addon = load();\n';
  const result = spawnSync(process.execPath, [...(options.nodeArgs ?? []), '--input-type=module', '-e', prelude + script], {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 10_000,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}
