// What a broken or hostile client can send: every bad line gets one clear error
// response (with its id when it had one), the connection stays usable, and nobody else
// notices. Abrupt disconnects, half lines and oversize lines cost only their sender.
import { strict as assert } from 'node:assert';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { serve, type Daemon } from '../../src/host/daemon.js';
import { MAX_LINE_BYTES } from '../../src/host/protocol.js';
import { FakeHost, typeInfo } from './fixtures/fake-host.js';
import { RawClient, tempSocket } from './fixtures/sockets.js';

const EINVAL = { code: 'EINVAL', errno: 22 };

describe('daemon: bad requests', () => {
  let temp: ReturnType<typeof tempSocket>;
  let host: FakeHost;
  let daemon: Daemon;
  let raw: RawClient;

  before(async () => {
    temp = tempSocket();
    host = new FakeHost();
    daemon = await serve(host, { socketPath: temp.socketPath, handleSignals: false, log: () => undefined, maxPendingPerConnection: 2 });
  });
  after(async () => {
    await daemon.close();
    temp.cleanup();
  });
  beforeEach(async () => {
    raw?.destroy();
    raw = await RawClient.connect(temp.socketPath);
    host.calls.length = 0;
  });

  /** Sends each line and expects exactly these responses, then a good request still works. */
  async function expectAnswers(lines: string[], answers: unknown[]): Promise<void> {
    raw.send(lines.map((line) => `${line}\n`).join(''));
    raw.send('{"id":999,"method":"types"}\n');
    const got = await raw.responses(answers.length + 1);
    assert.deepEqual(got.slice(0, -1), answers);
    assert.deepEqual(got.at(-1), { id: 999, result: [typeInfo] });
  }

  it('lines that are not JSON, or not an object, are EINVAL with id null', async () => {
    await expectAnswers(['[1,2]', '42', 'null', '"text"'], Array(4).fill(
      { id: null, error: { ...EINVAL, message: 'request must be a JSON object {"id", "method", "params"}' } }));
    raw.lines.length = 0;
    raw.send('hello there\n{"id": 1,\n');
    const answers = await raw.responses(2) as { id: unknown; error: { code: string; errno: number; message: string } }[];
    for (const answer of answers) {
      assert.equal(answer.id, null);
      assert.equal(answer.error.code, 'EINVAL');
      assert.equal(answer.error.errno, 22);
      // The parser's own words (V8's, which vary by version) follow in parentheses.
      assert.match(answer.error.message, /^request is not JSON \(.+\)$/);
    }
    assert.deepEqual(host.calls, [['types', {}]]);
  });

  it('a missing or bad id, an unknown field, a missing or unknown method', async () => {
    await expectAnswers([
      '{"method":"types"}', '{"id":"1","method":"types"}', '{"id":-1,"method":"types"}', '{"id":1.5,"method":"types"}',
      '{"id":2,"method":"types","extra":1}', '{"id":3}', '{"id":4,"method":5}', '{"id":5,"method":"format"}', '{"id":6,"method":"__proto__"}',
    ], [
      { id: null, error: { ...EINVAL, message: 'request.id must be a non-negative integer' } },
      { id: null, error: { ...EINVAL, message: 'request.id must be a non-negative integer' } },
      { id: null, error: { ...EINVAL, message: 'request.id must be a non-negative integer' } },
      { id: null, error: { ...EINVAL, message: 'request.id must be a non-negative integer' } },
      { id: 2, error: { ...EINVAL, message: "request has an unknown field 'extra' (known: id, method, params)" } },
      { id: 3, error: { ...EINVAL, message: 'request.method must be a string' } },
      { id: 4, error: { ...EINVAL, message: 'request.method must be a string' } },
      { id: 5, error: { code: 'ENOSYS', errno: 38, message: "unknown method 'format' (methods: hello, types, list, listDefined, start, stop, define, undefine, modify, info, screenshot)" } },
      { id: 6, error: { code: 'ENOSYS', errno: 38, message: "unknown method '__proto__' (methods: hello, types, list, listDefined, start, stop, define, undefine, modify, info, screenshot)" } },
    ]);
  });

  it('params of the wrong shape name the field at fault', async () => {
    const cases: [string, string][] = [
      ['{"id":1,"method":"stop","params":{}}', 'params.uuid must be a string'],
      ['{"id":2,"method":"stop","params":{"uuid":7}}', 'params.uuid must be a string'],
      ['{"id":3,"method":"stop","params":"u"}', 'params must be an object'],
      ['{"id":4,"method":"types","params":[]}', 'params must be an object'],
      ['{"id":5,"method":"types","params":{"parent":null}}', 'params.parent must be a string'],
      ['{"id":6,"method":"list","params":{"uuid":"u","type":"t"}}', "params has an unknown field 'type' (known: uuid, parent)"],
      ['{"id":7,"method":"define","params":{"start":"sometimes"}}', 'params.start must be "auto" or "manual"'],
      ['{"id":8,"method":"define","params":{"attrs":{"a":"1"}}}', 'params.attrs must be an array of {name, value}'],
      ['{"id":9,"method":"define","params":{"attrs":[{"a":"1"}]}}', "params.attrs[0] has an unknown field 'a' (known: name, value)"],
      ['{"id":10,"method":"define","params":{"attrs":[{"name":"a","value":"1"},{"name":"b","value":2}]}}', 'params.attrs[1].value must be a string'],
      ['{"id":11,"method":"start","params":{"definition":{"start":"auto"}}}', 'params.definition.type must be a string'],
      ['{"id":12,"method":"start","params":{"definition":{"type":"t","attrs":[null]}}}', 'params.definition.attrs[0] must be an object'],
      ['{"id":13,"method":"modify","params":{"uuid":"u","addAttr":{"name":"n"}}}', 'params.addAttr.value must be a string'],
      ['{"id":14,"method":"modify","params":{"uuid":"u","addAttr":{"name":"n","value":"v","index":-1}}}', 'params.addAttr.index must be a non-negative integer'],
      ['{"id":15,"method":"modify","params":{"uuid":"u","delAttr":{"index":"1"}}}', 'params.delAttr.index must be a non-negative integer'],
      ['{"id":16,"method":"modify","params":{"uuid":"u","delAttr":true}}', 'params.delAttr must be an object'],
      ['{"id":17,"method":"undefine","params":{"uuid":"u","parent":1}}', 'params.parent must be a string'],
      ['{"id":18,"method":"info","params":{}}', 'params.target must be a string'],
      ['{"id":19,"method":"hello","params":{"x":1}}', "params has an unknown field 'x' (known: none)"],
      ['{"id":20,"method":"modify","params":{"uuid":"u","__proto__":{"type":"t"}}}', "params has an unknown field '__proto__' (known: uuid, parent, type, start, addAttr, delAttr, definition)"],
    ];
    await expectAnswers(cases.map(([line]) => line), cases.map(([, message], i) => ({ id: i + 1, error: { ...EINVAL, message } })));
    assert.deepEqual(host.calls, [['types', {}]]);
  });

  it('blank lines and CRLF endings are fine; null params mean none only when absent', async () => {
    raw.send('\n\r\n   \n{"id":1,"method":"types","params":{"parent":"simgpu0"}}\r\n');
    assert.deepEqual(await raw.responses(1), [{ id: 1, result: [typeInfo] }]);
    assert.deepEqual(host.calls, [['types', { parent: 'simgpu0' }]]);
  });

  it('a line longer than the limit is EMSGSIZE; the rest of it is skipped, the next line served', async () => {
    const big = Buffer.alloc(MAX_LINE_BYTES + 1, 0x61);
    // Sent in pieces, so the limit is met across chunks and the newline comes much later.
    raw.send(big.subarray(0, 1000));
    raw.send(big.subarray(1000));
    raw.send(Buffer.alloc(300_000, 0x62));
    raw.send('\n{"id":2,"method":"info","params":{"target":"x"}}\n');
    const [first, second] = await raw.responses(2);
    assert.deepEqual(first, { id: null, error: { code: 'EMSGSIZE', errno: 90, message: `request line longer than ${MAX_LINE_BYTES} bytes; skipped to the next newline` } });
    assert.deepEqual(second, { id: 2, result: { name: 'x', lines: ['Region 0: BAR0 16M', '  Status: Cap+ 66MHz-'] } });
    assert.deepEqual(host.calls, [['info', 'x']]);
  });

  it('a line of exactly the limit is read (and judged on its content)', async () => {
    const prefix = '{"id":3,"method":"info","params":{"target":"';
    const line = prefix + 'x'.repeat(MAX_LINE_BYTES - prefix.length - 3) + '"}}';
    assert.equal(Buffer.byteLength(line), MAX_LINE_BYTES);
    raw.send(`${line}\n`);
    // The answer is longer than a line, so it comes as parts (protocol.ts's responseLines).
    let parts: { id: number; part: string; end?: true }[] = [];
    for (let n = 1; !parts.at(-1)?.end; n++) parts = await raw.responses(n) as typeof parts;
    assert.ok(parts.length > 1 && parts.every((p) => p.id === 3));
    assert.ok(raw.lines.every((l) => Buffer.byteLength(l) <= MAX_LINE_BYTES));
    const answer = JSON.parse(parts.map((p) => p.part).join('')) as { id: number; result: { name: string } };
    assert.equal(answer.id, 3);
    assert.equal(answer.result.name.length, MAX_LINE_BYTES - prefix.length - 3);
  });

  it('more requests in flight than a connection may have are EAGAIN', async () => {
    const release = host.gate('info');
    raw.send('{"id":1,"method":"info","params":{"target":"a"}}\n{"id":2,"method":"info","params":{"target":"b"}}\n{"id":3,"method":"types"}\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The refusal waits its turn behind the two answers before it.
    assert.deepEqual(raw.lines, []);
    release();
    const answers = await raw.responses(3);
    assert.deepEqual(answers.map((a) => (a as { id: number }).id), [1, 2, 3]);
    assert.deepEqual(answers[2], { id: 3, error: { code: 'EAGAIN', errno: 11, message: 'more than 2 requests in flight on this connection' } });
  });

  it('answers go out in the order the lines were read, also when a line fails to parse', async () => {
    const release = host.gate('info');
    raw.send('{"id":1,"method":"info","params":{"target":"a"}}\nnot json\n{"id":2,"method":"nope"}\n{"id":3,"method":"types"}\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(raw.lines, []);
    release();
    const answers = await raw.responses(4) as { id: number | null; error?: { code: string } }[];
    assert.deepEqual(answers.map((a) => [a.id, a.error?.code]), [[1, undefined], [null, 'EINVAL'], [2, 'ENOSYS'], [3, undefined]]);
  });

  it('a client that half-closes gets its answers, then the end of the stream', async () => {
    raw.send('{"id":1,"method":"types"}\n{"id":2,"method":"undefine","params":{"uuid":"u"}}');
    raw.socket.end();
    await raw.end();
    // The last request had no newline: a half line at the end is dropped, not guessed at.
    assert.deepEqual(raw.lines.map((line) => JSON.parse(line)), [{ id: 1, result: [typeInfo] }]);
    assert.deepEqual(host.calls, [['types', {}]]);
  });

  it('abrupt disconnects, mid-line or mid-request, leave the daemon serving others', async () => {
    const client = await DaemonClient.connect(temp.socketPath);
    try {
      const halfLine = await RawClient.connect(temp.socketPath);
      halfLine.send('{"id":1,"method":"sto');
      halfLine.destroy();
      const release = host.gate('start');
      const midRequest = await RawClient.connect(temp.socketPath);
      midRequest.send('{"id":1,"method":"start","params":{"uuid":"gone"}}\n{"id":2,"method":"stop","params":{"uuid":"gone"}}\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
      midRequest.destroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      release();
      // Complete requests of a vanished client still run (in order); their answers go nowhere.
      assert.deepEqual(await client.types(), [typeInfo]);
      assert.deepEqual(host.calls, [['start', { uuid: 'gone' }], ['stop', 'gone'], ['types', {}]]);
    } finally {
      await client.close();
    }
  });
});
