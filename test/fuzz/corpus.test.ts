// Replays every input a fuzz run found (test/fuzz/corpus): each must now pass its
// target's invariants. The file says what it found and how it was fixed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCorpus } from './corpus.js';
import { replay } from './engine.js';
import { targetNamed } from './targets/index.js';

describe('fuzz corpus', () => {
  const corpus = loadCorpus();
  it('has the findings of past runs', () => assert.ok(corpus.length > 0));
  for (const { file, finding } of corpus) {
    it(`${file}: ${finding.message.slice(0, 120)}`, async () => {
      await replay(targetNamed(finding.target), finding.input);
    });
  }
});
