// VFIO_USER_VERSION: the body, and the capability JSON both ways, with the JSON QEMU
// 10.1 and libvfio-user actually send.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import {
  QEMU_VFIO_USER_MINOR, VFIO_USER_MAJOR, type VfioUserCapabilities, decodeVersion, defaultCapabilities, encodeVersion,
  formatVersionCapabilities, negotiatedMinor, parseVersionCapabilities,
} from '../../src/uapi/index.js';

function einval(fn: () => unknown, pattern: RegExp): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSysError(err, 'EINVAL'), `expected EINVAL, got ${String(err)}`);
    assert.match(err.message, pattern);
    message = err.message;
    return true;
  });
  return message;
}

const caps = (members: string): string => `{"capabilities":{${members}}}`;

/** What QEMU 10.1's caps_json() produces (its QDict orders keys by hash). */
const qemuJson = '{"capabilities":{"migration":{"pgsize":4096,"max_bitmap_size":268435456},"max_msg_fds":16,' +
  '"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true}}';

describe('VFIO_USER_VERSION body', () => {
  it('major, minor, then the JSON and its NUL', () => {
    const body = encodeVersion(0, 0, '{}');
    assert.equal(Buffer.from(body).toString('hex'), '00000000' + '7b7d' + '00');
    assert.deepEqual(decodeVersion(body), { major: 0, minor: 0, capabilities: '{}' });
    const v = encodeVersion(0x0102, 0x0304, qemuJson);
    assert.equal(Buffer.from(v.subarray(0, 4)).toString('hex'), '02010403');
    assert.equal(v[v.byteLength - 1], 0);
    assert.equal(decodeVersion(v).capabilities, qemuJson);
  });

  it('the JSON is optional', () => {
    assert.deepEqual(decodeVersion(encodeVersion(0, 1)), { major: 0, minor: 1, capabilities: undefined });
  });

  it('reads up to the first NUL', () => {
    const body = new Uint8Array([0, 0, 1, 0, 0x7b, 0x7d, 0, 0x78, 0]);
    assert.equal(decodeVersion(body).capabilities, '{}');
  });

  it('refuses a short body, a missing NUL, bad UTF-8, a NUL inside the JSON', () => {
    einval(() => decodeVersion(new Uint8Array(3)), /at least 4/);
    einval(() => decodeVersion(new Uint8Array([0, 0, 0, 0, 0x7b, 0x7d])), /no terminating NUL/);
    einval(() => decodeVersion(new Uint8Array([0, 0, 0, 0, 0xff, 0xfe, 0])), /not valid UTF-8/);
    assert.throws(() => encodeVersion(0, 0, 'a\0b'), RangeError);
  });

  it('the version QEMU 10.1 speaks, and the minor a server replies with', () => {
    assert.equal(VFIO_USER_MAJOR, 0);
    assert.equal(QEMU_VFIO_USER_MINOR, 0);
    assert.equal(negotiatedMinor(QEMU_VFIO_USER_MINOR), 0);
    assert.equal(negotiatedMinor(1), 1);
    assert.equal(negotiatedMinor(7), 1);
  });
});

describe('VERSION capabilities: parsing', () => {
  it('QEMU 10.1\'s JSON', () => {
    assert.deepEqual(parseVersionCapabilities(qemuJson), {
      maxMsgFds: 16, maxDataXferSize: 1048576, pgsizes: 4096n, maxDmaMaps: 65535, writeMultiple: true,
      migration: { pgsize: 4096, maxBitmapSize: 268435456 },
    });
  });

  it('libvfio-user\'s JSON, with defaults for what it leaves out', () => {
    assert.deepEqual(parseVersionCapabilities(caps('"max_msg_fds":8,"max_data_xfer_size":1048576,"migration":{"pgsize":4096}')), {
      maxMsgFds: 8, maxDataXferSize: 1048576, pgsizes: 4096n, maxDmaMaps: 65535, writeMultiple: false,
      migration: { pgsize: 4096, maxBitmapSize: 268435456 },
    });
  });

  it('the spec\'s defaults when keys, the capabilities object or the JSON are absent', () => {
    const defaults = { maxMsgFds: 1, maxDataXferSize: 1048576, pgsizes: 4096n, maxDmaMaps: 65535, writeMultiple: false };
    assert.deepEqual(defaultCapabilities(), defaults);
    assert.deepEqual(parseVersionCapabilities(undefined), defaults);
    assert.deepEqual(parseVersionCapabilities('{}'), defaults);
    assert.deepEqual(parseVersionCapabilities(' {"capabilities" : {}}\n'), defaults);
  });

  it('ignores unknown keys, inside and outside capabilities', () => {
    const parsed = parseVersionCapabilities('{"capabilities":{"future":[1,{"x":null},"s\\u0041"],"max_msg_fds":4},"other":true}');
    assert.equal(parsed.maxMsgFds, 4);
  });

  it('twin_socket, with and without fd_index', () => {
    assert.deepEqual(parseVersionCapabilities(caps('"twin_socket":{"supported":true,"fd_index":0}')).twinSocket, { supported: true, fdIndex: 0 });
    assert.deepEqual(parseVersionCapabilities(caps('"twin_socket":{}')).twinSocket, { supported: false });
  });

  it('pgsizes is read exactly, past what a double holds', () => {
    assert.equal(parseVersionCapabilities(caps('"pgsizes":18446744073709547520')).pgsizes, 0xfffffffffffff000n);
    // 2^60 + 4097 is no multiple of 4096; JSON.parse would round it to 2^60 + 4096, which is.
    einval(() => parseVersionCapabilities(caps('"pgsizes":1152921504606851073')), /pgsizes/);
    einval(() => parseVersionCapabilities(caps('"pgsizes":18446744073709551616')), /pgsizes/);
  });

  const badFields: [string, string][] = [
    ['"max_msg_fds":-1', 'max_msg_fds'],
    ['"max_msg_fds":1025', 'max_msg_fds'],
    ['"max_msg_fds":1.5', 'max_msg_fds'],
    ['"max_msg_fds":8e0', 'max_msg_fds'],
    ['"max_msg_fds":"8"', 'max_msg_fds'],
    ['"max_msg_fds":null', 'max_msg_fds'],
    ['"max_data_xfer_size":0', 'max_data_xfer_size'],
    ['"max_data_xfer_size":4294967296', 'max_data_xfer_size'],
    ['"pgsizes":0', 'pgsizes'],
    ['"pgsizes":512', 'pgsizes'],
    ['"pgsizes":12288.5', 'pgsizes'],
    ['"pgsizes":4097', 'pgsizes'],
    ['"max_dma_maps":-5', 'max_dma_maps'],
    ['"max_dma_maps":true', 'max_dma_maps'],
    ['"write_multiple":"yes"', 'write_multiple'],
    ['"write_multiple":1', 'write_multiple'],
    ['"migration":4096', 'migration'],
    ['"migration":{"pgsize":100}', 'migration.pgsize'],
    ['"migration":{"max_bitmap_size":0}', 'migration.max_bitmap_size'],
    ['"twin_socket":[]', 'twin_socket'],
    ['"twin_socket":{"supported":1}', 'twin_socket.supported'],
    ['"twin_socket":{"supported":true,"fd_index":253}', 'twin_socket.fd_index'],
  ];
  for (const [members, field] of badFields) {
    it(`refuses ${members}, naming ${field}`, () => {
      einval(() => parseVersionCapabilities(caps(members)), new RegExp(`capabilities: ${field.replace('.', '\\.')} must be`));
    });
  }

  it('refuses JSON that is no object, or whose capabilities are none', () => {
    einval(() => parseVersionCapabilities('[1]'), /not an object/);
    einval(() => parseVersionCapabilities('"capabilities"'), /not an object/);
    einval(() => parseVersionCapabilities('{"capabilities":3}'), /capabilities must be an object/);
  });

  const badSyntax: [string, string, RegExp][] = [
    ['empty', '', /ends where a value should be at offset 0/],
    ['truncated', '{"capabilities":{"max_msg_fds":8', /no "," or "}" after a member at offset 32/],
    ['trailing text', '{} x', /text after the value at offset 3/],
    ['a repeated key', '{"capabilities":{"max_msg_fds":1,"max_msg_fds":16}}', /repeats a key/],
    ['single quotes', "{'capabilities':{}}", /no key where one should be/],
    ['a trailing comma', '{"capabilities":{},}', /no key where one should be/],
    ['a leading zero', caps('"max_msg_fds":08'), /no "," or "}"/],
    ['a bare word', caps('"max_msg_fds":eight'), /no value where one should be/],
    ['a control character in a string', '{"a\nb":1}', /control character/],
    ['a bad escape', '{"a\\x":1}', /unknown escape/],
    ['a bad \\u escape', '{"a\\u12":1}', /malformed \\u escape/],
    ['an unterminated string', '{"abc', /ends inside a string/],
    ['deeply nested arrays', `{"capabilities":{"x":${'['.repeat(20)}${']'.repeat(20)}}}`, /nests deeper than 8/],
    ['deeply nested objects', `{"capabilities":{"x":${'{"y":'.repeat(20)}0${'}'.repeat(20)}}}`, /nests deeper than 8/],
  ];
  for (const [name, json, pattern] of badSyntax) {
    it(`refuses invalid JSON: ${name}`, () => {
      einval(() => parseVersionCapabilities(json), pattern);
    });
  }

  it('refuses a huge string without reading or quoting it', () => {
    const huge = caps(`"x":"${'A'.repeat(200_000)}"`);
    const message = einval(() => parseVersionCapabilities(huge), /200\d+ characters, more than 65536/);
    assert.ok(message.length < 200);
  });

  it('never quotes the peer\'s text back', () => {
    const message = einval(() => parseVersionCapabilities(caps('"max_msg_fds":"SECRET-MARKER"')), /max_msg_fds/);
    assert.doesNotMatch(message, /SECRET/);
    const syntax = einval(() => parseVersionCapabilities('{"SECRET-MARKER": nope}'), /unknown word at offset 18/);
    assert.doesNotMatch(syntax, /SECRET/);
  });
});

describe('VERSION capabilities: formatting', () => {
  it('every core value explicitly', () => {
    assert.equal(formatVersionCapabilities(defaultCapabilities()),
      '{"capabilities":{"max_msg_fds":1,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":false}}');
  });

  it('round-trips through the parser, migration, twin socket and a 64-bit pgsizes included', () => {
    const ours: VfioUserCapabilities = {
      maxMsgFds: 16, maxDataXferSize: 1 << 20, pgsizes: 0xfffffffffffff000n, maxDmaMaps: 1024, writeMultiple: true,
      migration: { pgsize: 4096, maxBitmapSize: 1 << 20 }, twinSocket: { supported: true, fdIndex: 0 },
    };
    const json = formatVersionCapabilities(ours);
    assert.match(json, /"pgsizes":18446744073709547520/);
    assert.match(json, /"twin_socket":\{"supported":true,"fd_index":0\}/);
    assert.deepEqual(parseVersionCapabilities(json), ours);
    assert.deepEqual(decodeVersion(encodeVersion(0, 0, json)).capabilities, json);
  });

  it('refuses values a peer would refuse', () => {
    einval(() => formatVersionCapabilities({ ...defaultCapabilities(), maxMsgFds: -1 }), /max_msg_fds/);
    einval(() => formatVersionCapabilities({ ...defaultCapabilities(), pgsizes: 1024n }), /pgsizes/);
    einval(() => formatVersionCapabilities({ ...defaultCapabilities(), maxDataXferSize: 0.5 }), /max_data_xfer_size/);
  });
});
