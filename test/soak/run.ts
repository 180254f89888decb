// `npm run soak -- [--cycles N] [--every N] [--paths daemon,vfio-user] [--json FILE]`:
// 10,000 cycles (default) of create / open / DMA map / simgpu batch / unmap / close /
// remove on each path (soak.ts), printing the samples and, per figure, its value after
// warm-up (the first 10% of cycles), at the end, and its range in between.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { growth, soak, type Sample, type SoakPath } from './soak.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '10000' },
    every: { type: 'string', default: '500' },
    paths: { type: 'string', default: 'daemon,vfio-user' },
    json: { type: 'string' },
  },
});
const cycles = Number(values.cycles);
const every = Number(values.every);
const paths = values.paths.split(',') as SoakPath[];
const report: Record<string, { samples: Sample[]; seconds: number; growth: ReturnType<typeof growth> }> = {};
for (const path of paths) {
  process.stdout.write(`soak ${path}: ${cycles} cycles\n`);
  const started = performance.now();
  const samples = await soak({ path, cycles, every, onSample: (s) => process.stdout.write(`  ${JSON.stringify(s)}\n`) });
  const seconds = (performance.now() - started) / 1000;
  const g = growth(samples, Math.max(1, Math.floor(cycles / 10)));
  report[path] = { samples, seconds, growth: g };
  process.stdout.write(`  ${cycles} cycles in ${seconds.toFixed(1)} s (${(cycles / seconds).toFixed(0)}/s)\n`);
  for (const [key, v] of Object.entries(g)) process.stdout.write(`  ${key.padEnd(13)} after warm-up ${v.atWarmup}, last ${v.last}, range ${v.min}..${v.max}\n`);
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
