// The struct codec (src/uapi/struct.ts): little-endian fields of every type at their
// offsets, partial writes, bounds, and the compiled methods it makes on first use.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineStruct } from '../../src/uapi/struct.js';

const sample = defineStruct('sample', 24, {
  a: ['u8', 0],
  b: ['u16', 2],
  c: ['u32', 4],
  d: ['s32', 8],
  e: ['u64', 16],
});

describe('defineStruct', () => {
  it('lays each type out little-endian at its offset, and reads back what it wrote', () => {
    const values = { a: 0xfe, b: 0x1234, c: 0x89abcdef, d: -2, e: 0xfedcba9876543210n };
    const buf = sample.encode(values);
    assert.deepEqual([...buf], [
      0xfe, 0, 0x34, 0x12, 0xef, 0xcd, 0xab, 0x89, 0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0,
      0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
    ]);
    assert.deepEqual(sample.decode(buf), values);
    assert.deepEqual(Object.keys(sample.decode(buf)), ['a', 'b', 'c', 'd', 'e']);
  });

  it('writes only the fields named, at an offset, and keeps the low bits as the kernel would see them', () => {
    const buf = new Uint8Array(40).fill(0xaa);
    sample.write(buf, { c: 0x1_0000_0001, e: -1n }, 8);
    const back = sample.decode(buf, 8);
    assert.equal(back.c, 1); // a u32 keeps 32 bits
    assert.equal(back.e, (1n << 64n) - 1n); // a u64 keeps 64
    assert.equal(back.a, 0xaa);
    assert.equal(back.b, 0xaaaa);
    assert.deepEqual([...buf.subarray(0, 8)], Array(8).fill(0xaa));
    sample.write(buf, { a: undefined, b: 7 }, 8);
    assert.equal(sample.decode(buf, 8).a, 0xaa);
    assert.equal(sample.decode(buf, 8).b, 7);
  });

  it('refuses a buffer too short for the struct at that offset, naming it', () => {
    assert.throws(() => sample.decode(new Uint8Array(23)), { name: 'RangeError', message: 'sample needs 24 bytes at 0, buffer has 23' });
    assert.throws(() => sample.write(new Uint8Array(30), { a: 1 }, 8), { name: 'RangeError', message: 'sample needs 24 bytes at 8, buffer has 30' });
  });

  it('keeps working through methods taken before their first use, and names them for stack traces', () => {
    const fresh = defineStruct('fresh', 8, { x: ['u64', 0] });
    const { decode, write } = fresh;
    const buf = new Uint8Array(8);
    write(buf, { x: 5n });
    assert.equal(decode(buf).x, 5n);
    assert.notEqual(fresh.decode, decode); // the codec now holds its compiled form
    write(buf, { x: 6n });
    assert.equal(fresh.decode(buf).x, 6n);
    assert.equal(fresh.decode.name, 'decode_fresh');
    assert.equal(fresh.write.name, 'write_fresh');
    // A struct may be named like a keyword: the compiled functions are prefixed.
    assert.equal(defineStruct('delete', 1, { default: ['u8', 0] }).decode(new Uint8Array([9])).default, 9);
  });

  it('accepts only identifiers, known types and whole numbers, since they become code', () => {
    assert.throws(() => defineStruct('bad name', 4, { x: ['u32', 0] }), /a name must be an identifier/);
    assert.throws(() => defineStruct('s', 4, { 'x: 1 }); globalThis.pwned = 1; ({ y': ['u32', 0] }), /a field needs an identifier/);
    assert.throws(() => defineStruct('s', 4, { x: ['u24' as 'u32', 0] }), /a field needs an identifier/);
    assert.throws(() => defineStruct('s', 4, JSON.parse('{"__proto__": ["u32", 0]}') as { x: ['u32', 0] }), /a field needs an identifier/);
    assert.throws(() => defineStruct('s', 4, { x: ['u8', 0.5] }), /a field needs an identifier/);
    assert.throws(() => defineStruct('s', 4, { x: ['u32', 2] }), /s\.x lies outside 4 bytes/);
    assert.equal((globalThis as { pwned?: number }).pwned, undefined);
  });
});
