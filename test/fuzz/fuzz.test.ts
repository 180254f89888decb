// The short fuzz run of npm test: every boundary, a few hundred inputs each, seed 1
// (the same inputs every time; `npm run fuzz` runs long ones). Any finding fails it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTarget } from './engine.js';
import { TARGETS } from './targets/index.js';

const SHORT: Record<string, number> = { ioctl: 600, sysfs: 300, config: 200, definition: 100, protocol: 200, 'vfio-user': 150 };

describe('fuzz (short run, seed 1)', () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${target.covers}`, async () => {
      const run = await runTarget(target, { seed: 1, count: SHORT[target.name] ?? 100 });
      assert.deepEqual(run.findings.map((f) => `input ${f.index}: ${f.message}`), []);
      assert.equal(run.inputs, SHORT[target.name] ?? 100);
    });
  }
});
