// `vgpu migrate`: a simgpu vGPU moved between two `vgpu serve` daemons by the command
// (the VMM, with a workload), the target running it under the same UUID and the source
// without it; and the refusals: no target daemon, an unknown UUID, a missing --to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killDaemon, runVgpu, startDaemon, type DaemonProcess } from './cli-process.js';
import { testUuid } from '../vendors/display-world.js';

const UUID = testUuid(0x6d);

async function withDaemons(fn: (a: string, b: string, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-migrate-'));
  const daemons: DaemonProcess[] = [];
  try {
    for (const name of ['a', 'b']) daemons.push(await startDaemon(join(dir, name, 'vgpu.sock'), join(dir, name, 'defs')));
    await fn(join(dir, 'a', 'vgpu.sock'), join(dir, 'b', 'vgpu.sock'), dir);
  } finally {
    for (const d of daemons) {
      d.child.kill('SIGTERM');
      const ended = await Promise.race([d.exited, new Promise((resolve) => setTimeout(resolve, 5000, 'late'))]);
      if (ended === 'late') killDaemon(d);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

test('vgpu migrate moves a running simgpu vGPU to another daemon, and refuses what it cannot do', async () => {
  await withDaemons(async (a, b, dir) => {
    const started = await runVgpu(['--socket', a, 'start', '-u', UUID, '-p', 'simgpu0', '-t', 'simgpu-0Q']);
    assert.equal(started.code, 0, started.stderr);

    const noTarget = await runVgpu(['--socket', a, 'migrate', '-u', UUID, '--to', join(dir, 'none.sock')]);
    assert.equal(noTarget.code, 1);
    assert.match(noTarget.stderr, /no vgpu daemon runs at .*none\.sock/);
    const unknown = await runVgpu(['--socket', a, 'migrate', '-u', testUuid(0x99), '--to', b]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no vGPU .* runs at/);
    const usage = await runVgpu(['--socket', a, 'migrate', '-u', UUID]);
    assert.equal(usage.code, 2);

    const moved = await runVgpu(['--socket', a, 'migrate', '-u', UUID, '--to', b, '--rounds', '2'], { timeoutMs: 60_000 });
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /moved from .* to .* \(simgpu0, simgpu-0Q\)/);
    assert.match(moved.stdout, /registers equal, framebuffer equal, guestMemory equal/);
    assert.match(moved.stdout, /downtime \(STOP_COPY to RUNNING on the target\): [0-9.]+ ms/);
    assert.equal((await runVgpu(['--socket', a, 'list'])).stdout.trim(), '', 'the source no longer has it');
    assert.match((await runVgpu(['--socket', b, 'list'])).stdout, new RegExp(`${UUID} simgpu0 simgpu-0Q`));

    // Back again, idle this time.
    const back = await runVgpu(['--socket', b, 'migrate', '-u', UUID, '--to', a, '--idle'], { timeoutMs: 60_000 });
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /0 during pre-copy \(idle\)/);
  });
});
