// A client that sends requests and never reads its answers costs the daemon a bounded
// amount of memory: past 1 MiB unsent it is no longer read, past the drop limit it is
// disconnected, and what it held is given back when it goes. Others are served meanwhile.
import { strict as assert } from 'node:assert';
import { createConnection, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Definition } from '../../src/host/api.js';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve, type Daemon, type DaemonStats } from '../../src/host/daemon.js';
import { DEFAULT_LIMITS } from '../../src/host/connection.js';
import { FakeHost, UUID, typeInfo } from './fixtures/fake-host.js';
import { tempSocket } from './fixtures/sockets.js';

/** listDefined answers about `bytes` bytes. */
class BigHost extends FakeHost {
  constructor(private readonly bytes: number) { super(); }
  override async listDefined(): Promise<Definition[]> {
    await super.listDefined();
    return [{ uuid: UUID, parent: 'simgpu0', type: 'simgpu-4Q', start: 'manual', attrs: [{ name: 'a', value: 'x'.repeat(this.bytes) }] }];
  }
}

/** A client that connects, writes `count` requests and never reads. */
function nonReader(path: string, count: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.pause();
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      let text = '';
      for (let id = 1; id <= count; id++) text += `{"id":${id},"method":"listDefined"}\n`;
      socket.write(text);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function watch(daemon: Daemon, ms: number): Promise<DaemonStats> {
  const worst: DaemonStats = { connections: 0, paused: 0, unsentBytes: 0 };
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) {
    const s = daemon.stats();
    worst.connections = Math.max(worst.connections, s.connections);
    worst.paused = Math.max(worst.paused, s.paused);
    worst.unsentBytes = Math.max(worst.unsentBytes, s.unsentBytes);
  }
  return worst;
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(10)) if (Date.now() > end) assert.fail('timed out');
}

describe('daemon: backpressure on a client that never reads', () => {
  it('stops reading it past 1 MiB unsent: queued bytes stay bounded, others are served, all is given back when it goes', async () => {
    const temp = tempSocket();
    const host = new BigHost(200_000);
    const daemon = await serve(host, { socketPath: temp.socketPath, handleSignals: false, log: () => undefined });
    try {
      const hog = await nonReader(temp.socketPath, 20_000);
      const worst = await watch(daemon, 1500);
      assert.equal(worst.paused, 1);
      // What was read before the pause (at most the 32 in flight) is all it costs.
      assert.ok(host.calls.length <= 40, `${host.calls.length} requests read`);
      assert.ok(worst.unsentBytes < DEFAULT_LIMITS.dropAboveBytes, `${worst.unsentBytes} bytes unsent`);
      const other = await DaemonClient.connect(temp.socketPath);
      assert.deepEqual(await other.types(), [typeInfo]);
      await other.close();
      hog.destroy();
      await until(() => daemon.stats().connections === 0);
      assert.deepEqual(daemon.stats(), { connections: 0, paused: 0, unsentBytes: 0 });
    } finally {
      await daemon.close();
      temp.cleanup();
    }
  });

  it('drops it once its unsent answers pass the drop limit, and says so', async () => {
    const temp = tempSocket();
    const logged: string[] = [];
    const daemon = await serve(new BigHost(300_000), {
      socketPath: temp.socketPath, handleSignals: false, log: (line) => logged.push(line),
      limits: { pauseAboveBytes: 64 * 1024, dropAboveBytes: 1024 * 1024 },
    });
    try {
      const hog = await nonReader(temp.socketPath, 100);
      const closed = new Promise((resolve) => hog.once('close', resolve));
      hog.resume(); // reads nothing useful: the socket is destroyed under it
      hog.pause();
      await until(() => logged.some((l) => l.startsWith('dropped a client that does not read its answers (')));
      await until(() => daemon.stats().connections === 0);
      hog.destroy();
      await closed;
    } finally {
      await daemon.close();
      temp.cleanup();
    }
  });
});
