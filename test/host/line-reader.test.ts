// LineReader: the limit holds whatever the read boundaries: the same bytes cut at every
// place, in pieces of every size, give the same lines and the same oversize verdicts.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { LineReader } from '../../src/host/line-reader.js';

/** Feeds `data` cut at `cuts` and records what came out. */
function feed(max: number, data: Buffer, cuts: number[]): string[] {
  const reader = new LineReader(max);
  const out: string[] = [];
  const sink = { line: (b: Buffer) => { out.push(b.toString()); }, tooLong: () => { out.push('<too long>'); } };
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    reader.push(data.subarray(at, cut), sink);
    at = cut;
  }
  return out;
}

function random(seed: number): () => number {
  let x = seed;
  return () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
}

test('every cut of a stream gives the same lines; a line over the limit is refused however it arrives', () => {
  const max = 16;
  const lines = ['a', 'x'.repeat(16), 'y'.repeat(17), '', 'z'.repeat(40), 'b'.repeat(15), 'tail'];
  const data = Buffer.from(lines.join('\n') + '\n');
  const expected = ['a', 'x'.repeat(16), '<too long>', '', '<too long>', 'b'.repeat(15), 'tail'];
  assert.deepEqual(feed(max, data, []), expected);
  // One cut anywhere, two cuts anywhere, byte by byte, and random pieces.
  for (let i = 0; i <= data.length; i++) assert.deepEqual(feed(max, data, [i]), expected, `cut at ${i}`);
  for (let i = 0; i <= data.length; i++) for (let j = i; j <= data.length; j++) assert.deepEqual(feed(max, data, [i, j]), expected, `cuts ${i} ${j}`);
  assert.deepEqual(feed(max, data, [...data.keys()]), expected);
  const next = random(7);
  for (let round = 0; round < 500; round++) {
    const cuts = [...new Set(Array.from({ length: 1 + Math.floor(next() * 12) }, () => Math.floor(next() * data.length)))].sort((a, b) => a - b);
    assert.deepEqual(feed(max, data, cuts), expected, `cuts ${cuts.join(' ')}`);
  }
});

test('a sink that says stop leaves the rest of the read to the caller', () => {
  const reader = new LineReader(100);
  const got: string[] = [];
  const used = reader.push(Buffer.from('one\ntwo\nthree'), { line: (b) => { got.push(b.toString()); return false; }, tooLong: () => undefined });
  assert.equal(used, 4);
  assert.deepEqual(got, ['one']);
  assert.equal(reader.pendingBytes, 0);
});
