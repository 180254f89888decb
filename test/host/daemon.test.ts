// The daemon and its client together over a real unix socket, with a fake host: every
// method round-trips its params and result, host errors come back with code, errno and
// message, requests run one at a time across clients.
import { strict as assert } from 'node:assert';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve, type Daemon } from '../../src/host/daemon.js';
import { MAX_LINE_BYTES, METHODS, PROTOCOL_VERSION } from '../../src/host/protocol.js';
import { isSysError } from '../../src/addon/errors.js';
import { FakeHost, UUID, definition, hostError, liveDevice, report, typeInfo } from './fixtures/fake-host.js';
import { tempSocket } from './fixtures/sockets.js';

describe('daemon round trips', () => {
  let temp: ReturnType<typeof tempSocket>;
  let host: FakeHost;
  let daemon: Daemon;
  let client: DaemonClient;

  before(async () => {
    temp = tempSocket();
    host = new FakeHost();
    daemon = await serve(host, { socketPath: temp.socketPath, handleSignals: false, log: () => undefined, hostInfo: { sys: 'mock', root: '/tmp/defs' } });
    client = await DaemonClient.connect(temp.socketPath);
  });
  after(async () => {
    await client.close();
    await daemon.close();
    temp.cleanup();
  });
  beforeEach(() => { host.calls.length = 0; });

  it('says hello with the protocol version, the methods and the host facts', async () => {
    const hello = await client.hello();
    assert.equal(hello.protocol, PROTOCOL_VERSION);
    assert.equal(hello.server, 'vfio-vgpu');
    assert.equal(hello.version, '0.1.0');
    assert.equal(hello.pid, process.pid);
    assert.deepEqual(hello.methods, ['hello', 'types', 'list', 'listDefined', 'start', 'stop', 'define', 'undefine', 'modify', 'info', 'screenshot']);
    assert.deepEqual(hello.methods, METHODS);
    assert.deepEqual(hello.host, { sys: 'mock', root: '/tmp/defs' });
    assert.ok(!Number.isNaN(Date.parse(hello.startedAt)));
    assert.deepEqual(client.server, hello);
    assert.deepEqual(host.calls, []);
  });

  it('types, list, listDefined: filters in, records out', async () => {
    assert.deepEqual(await client.types(), [typeInfo]);
    assert.deepEqual(await client.types({ parent: 'simgpu0' }), [typeInfo]);
    assert.deepEqual(await client.list({ uuid: UUID }), [liveDevice]);
    assert.deepEqual(await client.listDefined({ parent: 'simgpu0', uuid: UUID }), [definition]);
    assert.deepEqual(host.calls, [
      ['types', {}], ['types', { parent: 'simgpu0' }], ['list', { uuid: UUID }], ['listDefined', { parent: 'simgpu0', uuid: UUID }],
    ]);
  });

  it('start, stop, define, undefine, modify, info: arguments arrive as sent', async () => {
    const json = { type: 'simgpu-2Q', start: 'manual' as const, attrs: [{ name: 'a', value: '1' }, { name: 'b', value: '' }] };
    assert.equal(await client.start({ parent: 'simgpu0', type: 'simgpu-4Q' }), UUID);
    assert.equal(await client.start({ uuid: 'u-1', parent: 'p', definition: json }), 'u-1');
    assert.equal(await client.stop(UUID), undefined);
    assert.equal(await client.define({ uuid: 'u-2', parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto', attrs: [{ name: 'k', value: 'v' }] }), 'u-2');
    assert.equal(await client.define({ parent: 'simgpu0', definition: json }), UUID);
    assert.equal(await client.undefine(UUID), 2);
    assert.equal(await client.undefine(UUID, 'simgpu0'), 1);
    assert.deepEqual(await client.modify({ uuid: 'u-3', type: 't', start: 'manual', addAttr: { name: 'n', value: 'v', index: 0 } }), { ...definition, uuid: 'u-3' });
    assert.deepEqual(await client.modify({ uuid: 'u-4', delAttr: {} }), { ...definition, uuid: 'u-4' });
    assert.deepEqual(await client.modify({ uuid: 'u-5', parent: 'simgpu0', delAttr: { index: 3 }, definition: json }), { ...definition, uuid: 'u-5' });
    assert.deepEqual(await client.info('0000:00:02.0'), { ...report, name: '0000:00:02.0' });
    assert.deepEqual(host.calls, [
      ['start', { parent: 'simgpu0', type: 'simgpu-4Q' }],
      ['start', { uuid: 'u-1', parent: 'p', definition: json }],
      ['stop', UUID],
      ['define', { uuid: 'u-2', parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto', attrs: [{ name: 'k', value: 'v' }] }],
      ['define', { parent: 'simgpu0', definition: json }],
      ['undefine', UUID, undefined],
      ['undefine', UUID, 'simgpu0'],
      ['modify', { uuid: 'u-3', type: 't', start: 'manual', addAttr: { name: 'n', value: 'v', index: 0 } }],
      ['modify', { uuid: 'u-4', delAttr: {} }],
      ['modify', { uuid: 'u-5', parent: 'simgpu0', delAttr: { index: 3 }, definition: json }],
      ['info', '0000:00:02.0'],
    ]);
  });

  it('a host SysError comes back with its code, errno, message, syscall and operation', async () => {
    host.fail('start', hostError('ENOSPC', "no available instances of simgpu-4Q on simgpu0"));
    await assert.rejects(client.start({ parent: 'simgpu0', type: 'simgpu-4Q' }), (err: unknown) => {
      assert.ok(isSysError(err, 'ENOSPC'));
      assert.equal(err.errno, 28);
      assert.equal(err.message, 'no available instances of simgpu-4Q on simgpu0');
      assert.equal(err.syscall, 'write');
      assert.equal(err.operation, 'create');
      return true;
    });
    host.fail('undefine', hostError('EEXIST', 'x'));
    await assert.rejects(client.undefine(UUID), { code: 'EEXIST', errno: 17, message: 'x' });
    // The connection is still good.
    assert.equal(await client.undefine(UUID), 2);
  });

  it('a non-SysError from the host is EIO "internal error", and the daemon goes on', async () => {
    host.fail('info', new TypeError("Cannot read properties of undefined (reading 'x')"));
    await assert.rejects(client.info('x'), (err: unknown) => {
      assert.ok(isSysError(err, 'EIO'));
      assert.equal(err.errno, 5);
      assert.equal(err.message, "internal error: Cannot read properties of undefined (reading 'x')");
      assert.equal(err.syscall, 'info');
      return true;
    });
    host.fail('stop', 'a string');
    await assert.rejects(client.stop(UUID), { code: 'EIO', message: 'internal error: a string' });
    assert.deepEqual(await client.types(), [typeInfo]);
  });

  it('a result JSON cannot carry (a bigint) is an EIO error, not a dead daemon', async () => {
    const original = host.info.bind(host);
    host.info = async () => ({ name: 'big', lines: [], size: 1n } as never);
    try {
      await assert.rejects(client.info('x'), (err: unknown) => isSysError(err, 'EIO') && /^result could not be encoded \(/.test(err.message));
    } finally {
      host.info = original;
    }
    assert.equal((await client.info('y')).name, 'y');
  });

  it('requests from two clients run one at a time, in arrival order', async () => {
    const other = await DaemonClient.connect(temp.socketPath);
    try {
      const release = host.gate('start');
      const first = client.start({ uuid: 'a', parent: 'p', type: 't' });
      await new Promise((resolve) => setTimeout(resolve, 30));
      const second = other.stop('a');
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The stop waits behind the start, though the start is stuck in the host.
      assert.deepEqual(host.calls, [['start', { uuid: 'a', parent: 'p', type: 't' }]]);
      release();
      assert.equal(await first, 'a');
      await second;
      assert.deepEqual(host.calls, [['start', { uuid: 'a', parent: 'p', type: 't' }], ['stop', 'a']]);
    } finally {
      await other.close();
    }
  });

  it('many requests in flight on one connection each get their own answer', async () => {
    const results = await Promise.all([client.info('a'), client.undefine('u'), client.start({ uuid: 'z' }), client.info('b')]);
    assert.deepEqual(results, [{ ...report, name: 'a' }, 2, 'z', { ...report, name: 'b' }]);
  });

  it('the client refuses a request longer than the line limit before sending it', async () => {
    await assert.rejects(client.info('x'.repeat(MAX_LINE_BYTES)), { code: 'EMSGSIZE', errno: 90, message: `the info request is longer than ${MAX_LINE_BYTES} bytes` });
    assert.deepEqual(host.calls, []);
  });
});

describe('daemon client timeouts', () => {
  let temp: ReturnType<typeof tempSocket>;
  let host: FakeHost;
  let daemon: Daemon;

  beforeEach(async () => {
    temp = tempSocket();
    host = new FakeHost();
    daemon = await serve(host, { socketPath: temp.socketPath, handleSignals: false, log: () => undefined });
  });
  afterEach(async () => {
    await daemon.close();
    temp.cleanup();
  });

  it('a request the daemon does not answer in time is ETIMEDOUT; a later answer is dropped', async () => {
    const client = await DaemonClient.connect(temp.socketPath, { requestTimeoutMs: 100 });
    const release = host.gate('info');
    await assert.rejects(client.info('slow'), {
      code: 'ETIMEDOUT', errno: 110, syscall: 'info', message: `the vgpu daemon at ${temp.socketPath} did not answer info within 100 ms`,
    });
    release();
    assert.deepEqual(await client.types(), [typeInfo]);
    await client.close();
  });
});
