// The hostile cases of issue 15 as a user meets them: a FIFO, a link to /dev/zero and a
// link to a secret in the definitions folder. `vgpu list -d` answers at once, with and
// without a daemon (which comes up, answers hello and stops on SIGTERM), lists the good
// definition, names each skipped file with its reason, and prints no byte of the secret.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { killDaemon, runVgpu, startDaemon, type DaemonProcess } from './cli-process.js';

const GOOD = '11111111-2222-4333-8444-555555555555';
const FIFO = '22222222-2222-4333-8444-555555555555';
const ZERO = '33333333-2222-4333-8444-555555555555';
const SECRET = '44444444-2222-4333-8444-555555555555';

describe('vgpu list -d over a hostile definitions folder', () => {
  let dir: string;
  let root: string;
  let parent: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vgpu-hostile-cli-'));
    root = join(dir, 'defs');
    parent = join(root, 'simgpu0');
    mkdirSync(parent, { recursive: true });
    writeFileSync(join(parent, GOOD), '{\n  "mdev_type": "simgpu-1Q",\n  "start": "manual",\n  "attrs": []\n}');
    execFileSync('mkfifo', [join(parent, FIFO)]);
    symlinkSync('/dev/zero', join(parent, ZERO));
    writeFileSync(join(dir, 'shadow'), 'root:*:20200:0:99999:7:::\n');
    symlinkSync(join(dir, 'shadow'), join(parent, SECRET));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function check(result: { code: number | null; stdout: string; stderr: string }): void {
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stdout, new RegExp(`^${GOOD} +simgpu0 +simgpu-1Q +manual$`, 'm'));
    assert.match(result.stderr, new RegExp(`${join(parent, FIFO)}: skipped: a FIFO, not a regular file`));
    for (const link of [ZERO, SECRET]) assert.match(result.stderr, new RegExp(`${join(parent, link)}: skipped: a symbolic link`));
    assert.doesNotMatch(result.stdout + result.stderr, /root:/);
  }

  it('without a daemon', async () => {
    check(await runVgpu(['list', '-d', '--root', root, '--socket', join(dir, 'none.sock')], { timeoutMs: 10_000 }));
  });

  it('through a daemon, which starts, answers, and stops on SIGTERM', async () => {
    const socket = join(dir, 'vgpu.sock');
    let daemon: DaemonProcess | undefined;
    try {
      daemon = await startDaemon(socket, root);
      check(await runVgpu(['list', '-d', '--socket', socket], { timeoutMs: 10_000 }));
      daemon.child.kill('SIGTERM');
      assert.deepEqual(await daemon.exited, { code: 0, signal: null });
    } finally {
      killDaemon(daemon);
    }
  });
});
