// One daemon per socket and per definitions folder, even when started together: a flock
// on <socket>.lock and on the definitions folder decides, and a killed daemon's lock goes
// with it.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve, type Daemon } from '../../src/host/daemon.js';
import { FakeHost, typeInfo } from './fixtures/fake-host.js';
import { tempSocket } from './fixtures/sockets.js';

describe('daemon locks', () => {
  let temp: ReturnType<typeof tempSocket>;
  const daemons: Daemon[] = [];
  beforeEach(() => { temp = tempSocket(); });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.close();
    temp.cleanup();
  });

  const options = (socketPath: string, definitionsRoot?: string) =>
    ({ socketPath, handleSignals: false, log: () => undefined, ...(definitionsRoot === undefined ? {} : { definitionsRoot }) });

  it('twenty daemons started together on a stale socket: exactly one comes up, the others say why', async () => {
    mkdirSync(dirname(temp.socketPath));
    const killed = spawnSync(process.execPath, ['-e',
      `require('net').createServer().listen(${JSON.stringify(temp.socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(statSync(temp.socketPath).isSocket());
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => serve(new FakeHost(), options(temp.socketPath))));
    const up = results.filter((r): r is PromiseFulfilledResult<Daemon> => r.status === 'fulfilled').map((r) => r.value);
    daemons.push(...up);
    assert.equal(up.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.match((r.reason as Error).message, /^a vgpu daemon already runs at /);
    }
    const client = await DaemonClient.connect(temp.socketPath);
    assert.deepEqual(await client.types(), [typeInfo]);
    await client.close();
  });

  it('two daemons on different sockets over one definitions folder: the second is refused; free again once the first stops', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vgpu-locked-root-'));
    try {
      const first = await serve(new FakeHost(), options(temp.socketPath, root));
      const other = join(temp.dir, 'other.sock');
      await assert.rejects(serve(new FakeHost(), options(other, root)), {
        code: 'EBUSY', message: `another vgpu daemon uses the definitions in ${root} (two daemons would both start its auto definitions; stop it first, or choose another --root)`,
      });
      await first.close();
      daemons.push(await serve(new FakeHost(), options(other, root)));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a daemon killed with SIGKILL leaves no lock behind', async () => {
    const root = join(temp.dir, 'defs');
    const script = `const { serve } = await import(${JSON.stringify(new URL('../../src/host/daemon.js', import.meta.url).href)});
      const { FakeHost } = await import(${JSON.stringify(new URL('./fixtures/fake-host.js', import.meta.url).href)});
      await serve(new FakeHost(), { socketPath: ${JSON.stringify(temp.socketPath)}, definitionsRoot: ${JSON.stringify(root)}, log: () => undefined });
      process.kill(process.pid, 'SIGKILL');`;
    const killed = spawnSync(process.execPath, ['--input-type=module', '-e', script]);
    assert.equal(killed.signal, 'SIGKILL');
    daemons.push(await serve(new FakeHost(), options(temp.socketPath, root)));
  });
});

describe('socket path length', () => {
  it('a path over 107 bytes is refused with "path too long", and nothing is left behind; 107 bytes work', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpu-long-'));
    try {
      const at = (bytes: number): string => {
        const base = join(dir, 'run', '');
        return base + 's'.repeat(bytes - Buffer.byteLength(base));
      };
      const long = at(108);
      await assert.rejects(serve(new FakeHost(), { socketPath: long, handleSignals: false, log: () => undefined }), {
        code: 'ENAMETOOLONG', syscall: 'bind', message: `socket path too long: ${long} is 108 bytes, a unix socket path at most 107`,
      });
      assert.deepEqual(readdirSync(dir), []);
      await assert.rejects(DaemonClient.connect(long), { code: 'ENAMETOOLONG', syscall: 'connect', message: /^socket path too long: / });
      assert.equal(await DaemonClient.connectIfRunning(at(107)), undefined);
      const daemon = await serve(new FakeHost(), { socketPath: at(107), handleSignals: false, log: () => undefined });
      const client = await DaemonClient.connect(at(107));
      assert.deepEqual(await client.types(), [typeInfo]);
      await client.close();
      await daemon.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
