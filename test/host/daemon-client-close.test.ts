// How the daemon's client ends a connection: with every answer read it closes at once,
// not after the daemon's end of stream, and the daemon reads an orderly end of file (no
// error, nothing logged); with a request in flight it half-closes and still gets the answer.
import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve } from '../../src/host/daemon.js';
import { PROTOCOL_VERSION } from '../../src/host/protocol.js';
import { FakeHost } from './fixtures/fake-host.js';
import { tempSocket } from './fixtures/sockets.js';

const helloResult = { protocol: PROTOCOL_VERSION, server: 'vfio-vgpu', version: '0', pid: 1, startedAt: '', methods: [], host: {} };

/** The listener's sides of the connections, destroyed after each test so that its server closes. */
const open = new Set<Socket>();

/** What the listener's side of one connection saw. */
interface Seen {
  socket: Socket;
  ended: Promise<void>;
  errors: Error[];
}

/**
 * A listener that answers each request line with a hello result, except that lines after
 * `holdAfter` are answered only when `release` is called; it never ends its side first.
 */
async function listener(path: string, holdAfter = Infinity): Promise<{ server: Server; seen: Promise<Seen>; release: () => void }> {
  mkdirSync(dirname(path), { recursive: true });
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let resolveSeen!: (seen: Seen) => void;
  const seen = new Promise<Seen>((resolve) => { resolveSeen = resolve; });
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    open.add(socket);
    const errors: Error[] = [];
    socket.on('error', (err) => errors.push(err));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    let count = 0;
    let buffer = '';
    socket.setEncoding('utf8').on('data', (text: string) => {
      buffer += text;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const { id } = JSON.parse(buffer.slice(0, nl)) as { id: number };
        buffer = buffer.slice(nl + 1);
        const answer = `${JSON.stringify({ id, result: helloResult })}\n`;
        if (++count <= holdAfter) socket.write(answer);
        else void released.then(() => { socket.write(answer); socket.end(); });
      }
    });
    resolveSeen({ socket, ended, errors });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, seen, release };
}

describe('daemon client close', () => {
  let temp: ReturnType<typeof tempSocket>;
  let server: Server | undefined;
  beforeEach(() => { temp = tempSocket(); });
  afterEach(async () => {
    for (const socket of open) socket.destroy();
    open.clear();
    if (server) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    temp.cleanup();
  });

  it('with every answer read: closes without waiting for the other end, which reads an orderly end', { timeout: 10_000 }, async () => {
    const made = await listener(temp.socketPath);
    server = made.server;
    const client = await DaemonClient.connect(temp.socketPath);
    assert.equal((await client.hello()).protocol, PROTOCOL_VERSION);
    // The listener never ends its side: a close that waited for it would not return.
    await client.close();
    const seen = await made.seen;
    await seen.ended;
    assert.deepEqual(seen.errors, []);
    await assert.rejects(client.hello(), { code: 'ENOTCONN' });
  });

  it('with a request in flight: half-closes, and the request still gets its answer', { timeout: 10_000 }, async () => {
    const made = await listener(temp.socketPath, 1);
    server = made.server;
    const client = await DaemonClient.connect(temp.socketPath);
    const answer = client.hello();
    const closed = client.close();
    const seen = await made.seen;
    await seen.ended;
    made.release();
    assert.equal((await answer).protocol, PROTOCOL_VERSION);
    await closed;
    assert.deepEqual(seen.errors, []);
  });

  it('the daemon logs nothing for a client that closed that way, and forgets it', { timeout: 10_000 }, async () => {
    const logged: string[] = [];
    const daemon = await serve(new FakeHost(), { socketPath: temp.socketPath, handleSignals: false, log: (line) => logged.push(line) });
    try {
      for (let i = 0; i < 3; i++) {
        const client = await DaemonClient.connect(temp.socketPath);
        assert.equal((await client.types()).length, 1);
        await client.close();
      }
      while (daemon.stats().connections > 0) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(logged.filter((line) => !line.startsWith('listening on')), []);
    } finally {
      await daemon.close();
    }
  });
});
