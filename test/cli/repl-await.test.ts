// `vgpu repl` past a line that never settles, and fed by a pipe: Ctrl-C interrupts a
// pending await as plain node does (ERR_SCRIPT_EXECUTION_INTERRUPTED) and the REPL goes
// on; Ctrl-D typed meanwhile takes effect after it; piped lines run in order, each await
// done before the next line; `sys` and `daemon` print one line each.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { show, startRepl } from '../../src/cli/verbs/repl.js';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve } from '../../src/host/daemon.js';
import { createMockSys } from '../../src/sys/mock.js';
import { FakeHost } from '../host/fixtures/fake-host.js';
import { tempSocket } from '../host/fixtures/sockets.js';
import { vgpuJs, vgpuEnv } from './cli-process.js';

/** A REPL on a fake terminal: keys in, text out. */
function terminalRepl(): { type(keys: string): void; output(): string; until(pattern: RegExp): Promise<void>; exited: Promise<void> } {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.setEncoding('utf8').on('data', (s: string) => { text += s; });
  const server = startRepl(false, { input, output, terminal: true });
  const exited = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  return {
    type: (keys) => { input.write(keys); },
    output: () => text,
    async until(pattern) {
      for (const deadline = Date.now() + 5000; !pattern.test(text);) {
        if (Date.now() > deadline) assert.fail(`no ${pattern} in the REPL's output: ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    exited,
  };
}

test('Ctrl-C interrupts an await that never settles, and the REPL goes on', async () => {
  const repl = terminalRepl();
  repl.type('await new Promise(() => {})\r');
  await new Promise((r) => setTimeout(r, 100));
  repl.type('\x03');
  await repl.until(/ERR_SCRIPT_EXECUTION_INTERRUPTED[^]*vgpu> /);
  repl.type('40 + 2\r');
  await repl.until(/\n42\r?\n/);
  repl.type('.exit\r');
  await repl.exited;
});

test('Ctrl-D typed during a pending await takes effect once Ctrl-C has interrupted it', async () => {
  const repl = terminalRepl();
  repl.type('await new Promise(() => {})\r');
  await new Promise((r) => setTimeout(r, 100));
  repl.type('\x04');
  await new Promise((r) => setTimeout(r, 100));
  repl.type('\x03');
  await repl.exited;
  assert.match(repl.output(), /ERR_SCRIPT_EXECUTION_INTERRUPTED/);
});

test('piped lines run in order: an awaited line finishes before the next starts', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-repl-pipe-'));
  try {
    const child = spawn(process.execPath, [vgpuJs, 'repl', '--root', join(dir, 'defs'), '--socket', join(dir, 'none.sock')], { env: vgpuEnv({ NO_COLOR: '1' }) });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stdin.end([
      'await new Promise((r) => setTimeout(() => r("first"), 300))',
      '"second"',
      'await Promise.resolve("third")',
      'const t = await host.types(); t.length',
      '"fifth"',
    ].join('\n') + '\n');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    const values = out.split('vgpu> ').slice(1).map((s) => s.trim()).filter((s) => s !== '');
    assert.deepEqual(values, ["'first'", "'second'", "'third'", '11', "'fifth'"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sys and daemon print one-line summaries', async () => {
  const sys = createMockSys();
  const line = show(sys, false);
  assert.equal(line, 'SysLayer { fd layer mock (6.1 flavour), page size 4096, devices: 0000:00:04.0, open fds 0, locked pages 0, mappings 0 }');
  const temp = tempSocket();
  const daemon = await serve(new FakeHost(), { socketPath: temp.socketPath, handleSignals: false, log: () => undefined });
  const client = await DaemonClient.connect(temp.socketPath);
  try {
    const summary = show(client, false);
    assert.doesNotMatch(summary, /\n/);
    assert.match(summary, new RegExp(`^DaemonClient \\{ ${temp.socketPath}: vfio-vgpu 0\\.1\\.0, pid ${process.pid}, protocol 1, since .*, methods: hello, types, `));
  } finally {
    await client.close();
    await daemon.close();
    temp.cleanup();
  }
});
