// The fuzzer's checks can fail: a leak, a non-errno exception and a broken invariant
// each become a finding with the input that caused it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sysError } from '../../src/addon/errors.js';
import { runTarget } from './engine.js';
import { Rng, mutate } from './rng.js';
import { FuzzFinding, erase, expectRefusalOnly, type FuzzTarget } from './target.js';
import { accounting, checkBalanced, fuzzWorld } from './world.js';

test('a mock fd left open after an input unbalances the accounting', () => {
  const world = fuzzWorld();
  try {
    const before = accounting(world);
    const fd = world.sys.open('/dev/vfio/vfio');
    assert.throws(() => checkBalanced(before, accounting(world), 'leak'), (err: unknown) => err instanceof FuzzFinding && /mockFds 0 before, 1 after/.test(err.message));
    world.sys.close(fd);
    checkBalanced(before, accounting(world), 'closed');
  } finally {
    world.close();
  }
});

test('an errno is a refusal; any other exception is a finding', () => {
  assert.equal(expectRefusalOnly('x', () => { throw sysError('EINVAL', 'ioctl'); }), undefined);
  assert.throws(() => expectRefusalOnly('x', () => { throw new RangeError('offset out of bounds'); }), FuzzFinding);
});

test('the engine records a finding with its index and input, and goes on with a fresh context', async () => {
  let opened = 0;
  const flaky: FuzzTarget<number, number> = {
    name: 'flaky', covers: 'a target that fails on odd inputs',
    open: () => ++opened,
    generate: (rng) => rng.below(1000),
    run: (_ctx, input) => { if (input % 2) throw new FuzzFinding(`odd ${input}`); },
    close: () => undefined,
  };
  const run = await runTarget(erase(flaky), { seed: 7, count: 20, maxFindings: 100 });
  assert.equal(run.inputs, 20);
  assert.ok(run.findings.length > 0);
  for (const f of run.findings) assert.equal(f.message, `FuzzFinding: odd ${String(f.input)}`);
  assert.equal(opened, run.findings.length + 1);
});

test('inputs are a function of target, seed and index', () => {
  const a = Rng.forInput('ioctl', 1, 42);
  const b = Rng.forInput('ioctl', 1, 42);
  assert.deepEqual(mutate(a, new Uint8Array(32)), mutate(b, new Uint8Array(32)));
  assert.notEqual(Rng.forInput('ioctl', 1, 43).u32(), Rng.forInput('ioctl', 1, 42).u32());
});
