// The daemon's life: the socket's folder and modes, one instance per socket, a stale
// socket replaced, a clean shutdown (in-flight request finished, queued ones refused,
// host closed, socket removed) from close() and from SIGTERM/SIGINT in a real process.
// And the client's view of a daemon that is missing, gone or confused.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DaemonClient, connectIfRunning } from '../../src/host/daemon-client.js';
import { serve, type Daemon } from '../../src/host/daemon.js';
import { isSysError } from '../../src/addon/errors.js';
import { FakeHost, typeInfo } from './fixtures/fake-host.js';
import { RawClient, tempSocket } from './fixtures/sockets.js';

const quiet = { handleSignals: false, log: () => undefined };

describe('daemon lifecycle', () => {
  let temp: ReturnType<typeof tempSocket>;
  const daemons: Daemon[] = [];

  beforeEach(() => { temp = tempSocket(); });
  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.close();
    temp.cleanup();
  });

  async function start(host = new FakeHost(), extra: { mode?: number } = {}): Promise<Daemon> {
    const daemon = await serve(host, { socketPath: temp.socketPath, ...quiet, ...extra });
    daemons.push(daemon);
    return daemon;
  }

  it('creates the socket folder 0755 and the socket 0600', async () => {
    await start();
    assert.equal(statSync(dirname(temp.socketPath)).mode & 0o7777, 0o755);
    const stat = statSync(temp.socketPath);
    assert.ok(stat.isSocket());
    assert.equal(stat.mode & 0o7777, 0o600);
    assert.equal(stat.uid, process.getuid?.());
  });

  it('takes another mode when told, and leaves an existing folder as it is', async () => {
    mkdirSync(dirname(temp.socketPath), { mode: 0o700 });
    await start(new FakeHost(), { mode: 0o660 });
    assert.equal(statSync(temp.socketPath).mode & 0o7777, 0o660);
    assert.equal(statSync(dirname(temp.socketPath)).mode & 0o7777, 0o700);
  });

  it('refuses a second instance on the same socket; the first goes on serving', async () => {
    await start();
    await assert.rejects(serve(new FakeHost(), { socketPath: temp.socketPath, ...quiet }), {
      code: 'EADDRINUSE', errno: 98, syscall: 'bind',
      message: `a vgpu daemon already runs at ${temp.socketPath} (stop it first, or choose another --socket)`,
    });
    const client = await DaemonClient.connect(temp.socketPath);
    assert.deepEqual(await client.types(), [typeInfo]);
    await client.close();
  });

  it('a listener that is not a vgpu daemon (answers no hello) is neither replaced nor called a daemon', async () => {
    mkdirSync(dirname(temp.socketPath));
    const other = createServer((socket) => { socket.on('data', () => socket.write('HTTP/1.0 400 Bad Request\r\n\r\n')); });
    await new Promise<void>((resolve) => other.listen(temp.socketPath, resolve));
    try {
      await assert.rejects(serve(new FakeHost(), { socketPath: temp.socketPath, ...quiet }), {
        code: 'EADDRINUSE', syscall: 'bind',
        message: `something other than a vgpu daemon listens at ${temp.socketPath} (it did not answer hello); not replacing it`,
      });
      assert.ok(statSync(temp.socketPath).isSocket());
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('replaces a stale socket file a killed daemon left behind', async () => {
    mkdirSync(dirname(temp.socketPath));
    const killed = spawnSync(process.execPath, ['-e',
      `require('net').createServer().listen(${JSON.stringify(temp.socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(statSync(temp.socketPath).isSocket());
    assert.equal(await connectIfRunning(temp.socketPath), undefined);
    await assert.rejects(DaemonClient.connect(temp.socketPath), {
      code: 'ECONNREFUSED', errno: 111, syscall: 'connect',
      message: `no vgpu daemon runs at ${temp.socketPath} (start one with \`vgpu serve\`)`,
    });
    await start();
    const client = await DaemonClient.connect(temp.socketPath);
    assert.deepEqual(await client.types(), [typeInfo]);
    await client.close();
  });

  it('refuses to replace a file that is not a socket, and leaves it intact', async () => {
    mkdirSync(dirname(temp.socketPath));
    writeFileSync(temp.socketPath, 'precious');
    await assert.rejects(serve(new FakeHost(), { socketPath: temp.socketPath, ...quiet }), {
      code: 'EEXIST', errno: 17, message: `${temp.socketPath} exists and is not a socket; not replacing it`,
    });
    assert.equal(readFileSync(temp.socketPath, 'utf8'), 'precious');
  });

  it('close(): finishes the request in flight, refuses queued ones, closes the host once, removes the socket', async () => {
    const host = new FakeHost();
    const daemon = await start(host);
    const raw = await RawClient.connect(temp.socketPath);
    const release = host.gate('start');
    raw.send('{"id":1,"method":"start","params":{"uuid":"a"}}\n{"id":2,"method":"stop","params":{"uuid":"a"}}\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = daemon.close();
    assert.equal(daemon.close(), closed);
    // No new connections while the start finishes.
    assert.equal(await connectIfRunning(temp.socketPath), undefined);
    assert.equal(host.closed, 0);
    // The refusal of the queued stop waits its turn behind the start's answer.
    assert.deepEqual(raw.lines, []);
    release();
    await closed;
    assert.deepEqual(await raw.responses(2), [
      { id: 1, result: 'a' },
      { id: 2, error: { code: 'ECANCELED', errno: 125, message: 'the daemon is shutting down' } },
    ]);
    await raw.end();
    assert.equal(host.closed, 1);
    assert.deepEqual(host.calls, [['start', { uuid: 'a' }]]);
    assert.equal(existsSync(temp.socketPath), false);
    await daemon.close();
    assert.equal(host.closed, 1);
  });

  it('a client whose daemon shuts down gets ECONNRESET for later calls', async () => {
    const daemon = await start();
    const client = await DaemonClient.connect(temp.socketPath);
    await daemon.close();
    await assert.rejects(client.types(), (err: unknown) => isSysError(err, 'ECONNRESET') && err.message === `the vgpu daemon at ${temp.socketPath} closed the connection`);
    await client.close();
  });
});

describe('daemon client against a missing or confused daemon', () => {
  let temp: ReturnType<typeof tempSocket>;
  beforeEach(() => { temp = tempSocket(); mkdirSync(dirname(temp.socketPath)); });
  afterEach(() => temp.cleanup());

  it('no socket: ENOENT saying how to start one; connectIfRunning is undefined', async () => {
    await assert.rejects(DaemonClient.connect(temp.socketPath), {
      code: 'ENOENT', errno: 2, syscall: 'connect', message: `no vgpu daemon runs at ${temp.socketPath} (start one with \`vgpu serve\`)`,
    });
    assert.equal(await DaemonClient.connectIfRunning(temp.socketPath), undefined);
  });

  /** A server that answers each request line with `reply(line)` (undefined: close the connection). */
  async function fakeDaemon(reply: (request: { id: number; method: string }) => string | undefined): Promise<() => Promise<void>> {
    const server = createServer((socket) => {
      let buffer = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => {
        buffer += chunk.toString();
        for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
          const request = JSON.parse(buffer.slice(0, nl)) as { id: number; method: string };
          buffer = buffer.slice(nl + 1);
          const answer = reply(request);
          if (answer === undefined) socket.destroy();
          else socket.write(answer);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(temp.socketPath, resolve));
    return () => new Promise<void>((resolve) => server.close(() => resolve()));
  }

  const helloLine = (id: number, protocol = 1): string => `${JSON.stringify({ id, result: { protocol, server: 'vfio-vgpu', methods: [] } })}\n`;

  it('a daemon of another protocol version is EPROTO at connect', async () => {
    const stop = await fakeDaemon((r) => helloLine(r.id, 2));
    await assert.rejects(DaemonClient.connect(temp.socketPath), {
      code: 'EPROTO', errno: 71, message: `the vgpu daemon at ${temp.socketPath} speaks protocol 2, this client 1`,
    });
    await stop();
  });

  it('a daemon that drops the connection mid-request: ECONNRESET for that call and the next', async () => {
    const stop = await fakeDaemon((r) => (r.method === 'hello' ? helloLine(r.id) : undefined));
    const client = await DaemonClient.connect(temp.socketPath);
    await assert.rejects(client.stop('u'), { code: 'ECONNRESET', errno: 104, message: `the vgpu daemon at ${temp.socketPath} closed the connection` });
    await assert.rejects(client.types(), { code: 'ECONNRESET' });
    await client.close();
    await stop();
  });

  it('a daemon that sends garbage or wrong shapes: EPROTO, no crash', async () => {
    const stop = await fakeDaemon((r) => {
      if (r.method === 'hello') return helloLine(r.id);
      if (r.method === 'start') return `${JSON.stringify({ id: r.id, result: 42 })}\n`;
      if (r.method === 'undefine') return `${JSON.stringify({ id: r.id, error: { code: 'EWHAT', errno: 2, message: 'gone' } })}\n`;
      return 'this is not json\n';
    });
    const client = await DaemonClient.connect(temp.socketPath);
    await assert.rejects(client.start({ uuid: 'u' }), { code: 'EPROTO', errno: 71, syscall: 'start', message: "daemon answered 'start' with a result of the wrong shape" });
    // An unknown code falls back to the errno's own name.
    await assert.rejects(client.undefine('u'), { code: 'ENOENT', errno: 2, syscall: 'undefine', message: 'gone' });
    await assert.rejects(client.types(), { code: 'EPROTO', errno: 71, message: `daemon sent a line that is not JSON (${temp.socketPath})` });
    await assert.rejects(client.list(), { code: 'EPROTO' });
    await client.close();
    await stop();
  });
});

describe('daemon process signals', () => {
  const entry = fileURLToPath(new URL('./fixtures/serve-fake.js', import.meta.url));

  // SIGHUP too: a daemon started from a terminal that closes shuts down cleanly.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`${signal}: the request in flight is answered, the host closed, the socket removed, exit 0`, async () => {
      const temp = tempSocket();
      try {
        const child = spawn(process.execPath, [entry, temp.socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => { stdout += chunk; });
        child.stderr.on('data', (chunk) => { stderr += chunk; });
        const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
        for (let i = 0; !stdout.includes('listening\n'); i++) {
          assert.ok(i < 200, `daemon did not start: ${stderr}`);
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        assert.equal(statSync(temp.socketPath).mode & 0o7777, 0o600);
        const client = await DaemonClient.connect(temp.socketPath);
        assert.equal(client.server.pid, child.pid);
        assert.deepEqual(client.server.host, { sys: 'fake' });
        const slow = client.info('slow');
        await new Promise((resolve) => setTimeout(resolve, 100));
        child.kill(signal);
        assert.deepEqual(await slow, { name: 'slow', lines: ['Region 0: BAR0 16M', '  Status: Cap+ 66MHz-'] });
        assert.deepEqual(await exited, [0, null]);
        assert.equal(stdout, 'listening\nhost closed\n');
        assert.equal(stderr, '');
        assert.equal(existsSync(temp.socketPath), false);
        await client.close();
      } finally {
        temp.cleanup();
      }
    });
  }
});
