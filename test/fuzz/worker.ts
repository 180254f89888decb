// One fuzz target in its own process (started by run.ts): runs inputs [from, from+count)
// for a seed, writes the index of the input it is on to a progress file before each one
// (so the parent names the input of a hang or a crash), and prints the result as JSON.
import { closeSync, openSync, writeSync } from 'node:fs';
import { runTarget } from './engine.js';
import { targetNamed } from './targets/index.js';

const [name, seed, from, count, progressPath] = process.argv.slice(2);
const progress = openSync(progressPath!, 'w');
const slot = Buffer.alloc(8);
const result = await runTarget(targetNamed(name!), {
  seed: Number(seed),
  from: Number(from),
  count: Number(count),
  progress(index) {
    slot.writeDoubleLE(index, 0);
    writeSync(progress, slot, 0, 8, 0);
  },
});
closeSync(progress);
process.stdout.write(`${JSON.stringify(result)}\n`);
// Whatever a target left scheduled (it should leave nothing) must not keep the run waiting.
process.exit(0);
