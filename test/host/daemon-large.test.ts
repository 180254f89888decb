// Answers longer than a line: the daemon never sends a line over MAX_LINE_BYTES (a long
// answer goes as part lines), the client reassembles them, and the client's own limit
// holds whatever the read boundaries (a line of MAX_LINE_BYTES + 1 is refused however
// the server cuts it; one of exactly the limit is read).
import { strict as assert } from 'node:assert';
import { createServer, type Socket } from 'node:net';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Definition, Screenshot } from '../../src/host/api.js';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve, type Daemon } from '../../src/host/daemon.js';
import { MAX_LINE_BYTES } from '../../src/host/protocol.js';
import { FakeHost } from './fixtures/fake-host.js';
import { RawClient, tempSocket } from './fixtures/sockets.js';

const uuid = (n: number): string => `${n.toString(16).padStart(8, '0')}-2222-4333-8444-555555555555`;

class LargeHost extends FakeHost {
  definitions: Definition[] = [];
  png = '';
  override async listDefined(): Promise<Definition[]> { await super.listDefined(); return this.definitions; }
  override async screenshot(id: string): Promise<Screenshot> { await super.screenshot(id); return { uuid: id, width: 1024, height: 768, pngBase64: this.png }; }
}

describe('daemon: answers longer than a line', () => {
  let temp: ReturnType<typeof tempSocket>;
  const host = new LargeHost();
  let daemon: Daemon;
  before(async () => {
    temp = tempSocket();
    daemon = await serve(host, { socketPath: temp.socketPath, handleSignals: false, log: () => undefined });
  });
  after(async () => {
    await daemon.close();
    temp.cleanup();
  });

  it('list -d of 10,000 definitions: every line within the limit, the client gets them all', async () => {
    host.definitions = Array.from({ length: 10_000 }, (_, i) => ({
      uuid: uuid(i), parent: 'simgpu0', type: 'simgpu-4Q', start: 'manual', attrs: [{ name: 'heads', value: String(i % 4) }],
    }));
    const raw = await RawClient.connect(temp.socketPath);
    raw.send('{"id":1,"method":"listDefined"}\n');
    let lines: { id: number; part?: string; end?: true }[] = [];
    for (let n = 1; !lines.at(-1)?.end; n++) lines = await raw.responses(n) as typeof lines;
    raw.destroy();
    assert.ok(lines.length > 1);
    assert.ok(raw.lines.every((l) => Buffer.byteLength(l) <= MAX_LINE_BYTES));
    const client = await DaemonClient.connect(temp.socketPath);
    assert.deepEqual(await client.listDefined(), host.definitions);
    await client.close();
  });

  it('nine definitions of 120 KB attributes, with multi-byte and surrogate-pair text, twenty times', async () => {
    host.definitions = Array.from({ length: 9 }, (_, i) => ({
      uuid: uuid(i), parent: 'simgpu0', type: 'simgpu-4Q', start: 'auto',
      attrs: [{ name: 'blob', value: 'ü"\\'.repeat(i) + '😀'.repeat(30_000) + 'x'.repeat(i) }],
    }));
    const client = await DaemonClient.connect(temp.socketPath);
    for (let round = 0; round < 20; round++) assert.deepEqual(await client.listDefined(), host.definitions);
    // And a screenshot of 3 MB, on the same connection, after them.
    host.png = 'A'.repeat(3 * 1024 * 1024);
    assert.equal((await client.screenshot(uuid(1))).pngBase64, host.png);
    await client.close();
  });
});

describe('daemon client: its line limit does not depend on how the reads are cut', () => {
  let temp: ReturnType<typeof tempSocket>;
  before(() => { temp = tempSocket(); mkdirSync(dirname(temp.socketPath)); });
  after(() => temp.cleanup());

  /** A server that answers hello, then answers `types` with `line` written in pieces cut at `cuts`, with pauses. */
  async function splitting(line: Buffer, cuts: number[]): Promise<() => Promise<void>> {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      let buffer = '';
      socket.on('data', async (chunk) => {
        buffer += chunk.toString();
        for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
          const request = JSON.parse(buffer.slice(0, nl)) as { id: number; method: string };
          buffer = buffer.slice(nl + 1);
          if (request.method === 'hello') {
            socket.write(`${JSON.stringify({ id: request.id, result: { protocol: 1, server: 'vfio-vgpu', methods: [], host: {} } })}\n`);
            continue;
          }
          let at = 0;
          for (const cut of [...cuts, line.length]) {
            if (socket.destroyed) return;
            socket.write(line.subarray(at, cut));
            at = cut;
            await sleep(2);
          }
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(temp.socketPath, resolve));
    return () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); });
  }

  /** A types answer whose line (newline excluded) is exactly `bytes` long. */
  function typesLine(bytes: number): Buffer {
    const head = '{"id":2,"result":[{"description":"';
    const tail = '"}]}';
    return Buffer.from(`${head}${'d'.repeat(bytes - head.length - tail.length)}${tail}\n`);
  }

  const patterns = (n: number): number[][] => [
    [], [1], [n - 1], [n], [Math.floor(n / 2)], [65536, 131072], [n - 65536],
    Array.from({ length: 16 }, (_, i) => Math.floor(((i + 1) * n) / 17)),
    Array.from({ length: 40 }, (_, i) => (i + 1) * 26_000).filter((c) => c < n),
  ];

  it('one byte over the limit is EMSGSIZE for every cut; exactly the limit is read', async () => {
    for (const [bytes, ok] of [[MAX_LINE_BYTES + 1, false], [MAX_LINE_BYTES, true]] as const) {
      const line = typesLine(bytes);
      for (const cuts of patterns(line.length)) {
        const stop = await splitting(line, cuts);
        try {
          const client = await DaemonClient.connect(temp.socketPath);
          if (ok) assert.equal((await client.types())[0]?.description?.length, bytes - 38, `cuts ${cuts.join(' ')}`);
          else await assert.rejects(client.types(), { code: 'EMSGSIZE' }, `cuts ${cuts.join(' ')}`);
          await client.close().catch(() => undefined);
        } finally {
          await stop();
        }
      }
    }
  });
});
