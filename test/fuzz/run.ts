// `npm run fuzz -- [--seed N] [--inputs N] [--targets a,b] [--no-save] [--json FILE]`:
// fuzzes every boundary (test/fuzz/targets) with one seed, the inputs split over the
// targets by weight, each target in a child process watched for hangs (no progress in
// --hang-ms) and crashes (the child dies). Findings are saved to test/fuzz/corpus (one
// JSON file each, replayed by corpus.test.ts) and the run prints, per target, the inputs
// tried, the findings and the time. The same command gives the same inputs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { saveFinding } from './corpus.js';
import { inputAt, type Finding, type TargetRun } from './engine.js';
import { TARGETS, targetNamed } from './targets/index.js';

/** Share of the inputs each target gets: about equal time per target at the rates measured. */
const WEIGHTS: Record<string, number> = { ioctl: 40, sysfs: 20, config: 14, protocol: 10, definition: 8, 'vfio-user': 8 };

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    inputs: { type: 'string', default: '10000' },
    targets: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
    json: { type: 'string' },
    'hang-ms': { type: 'string', default: '60000' },
  },
});
const seed = Number(values.seed);
const total = Number(values.inputs);
if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(total) || total < 1) throw new Error('--seed and --inputs take integers (inputs >= 1)');
const hangMs = Number(values['hang-ms']);
const targets = values.targets ? values.targets.split(',').map((n) => targetNamed(n)) : TARGETS;
const weightSum = targets.reduce((n, t) => n + (WEIGHTS[t.name] ?? 10), 0);
const worker = fileURLToPath(new URL('./worker.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'vgpu-fuzz-'));

interface Slice { result?: TargetRun; died?: string; last: number }

/** Runs one child on [from, from+count); returns its result, or how it died and the input it was on. */
function runChild(name: string, from: number, count: number): Promise<Slice> {
  const progressPath = join(work, `${name}.progress`);
  writeFileSync(progressPath, Buffer.alloc(8));
  const child = spawn(process.execPath, [worker, name, String(seed), String(from), String(count), progressPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const readIndex = (): number => {
    try {
      return readFileSync(progressPath).readDoubleLE(0);
    } catch {
      return from;
    }
  };
  let last = -1;
  let lastChange = Date.now();
  let hung = false;
  const watchdog = setInterval(() => {
    const now = readIndex();
    if (now !== last) { last = now; lastChange = Date.now(); return; }
    if (Date.now() - lastChange > hangMs) { hung = true; child.kill('SIGKILL'); }
  }, 1000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      const index = readIndex();
      if (hung) { resolve({ died: `hang: no progress in ${hangMs} ms`, last: index }); return; }
      if (code === 0 && out.trim()) { resolve({ result: JSON.parse(out.trim()) as TargetRun, last: index }); return; }
      resolve({ died: `crash: exit ${code ?? signal}: ${err.slice(-2000)}`, last: index });
    });
  });
}

async function fuzzTarget(name: string, count: number): Promise<TargetRun> {
  const started = performance.now();
  const run: TargetRun = { target: name, seed, from: 0, inputs: 0, findings: [], ms: 0 };
  for (let from = 0; from < count;) {
    const slice = await runChild(name, from, count - from);
    if (slice.result) {
      run.inputs += slice.result.inputs;
      run.findings.push(...slice.result.findings);
      // A slice that stopped early (too many findings) is resumed after its last input.
      from = slice.result.from + slice.result.inputs;
      if (slice.result.findings.length >= 10) from = count;
      continue;
    }
    // A hang or a crash: that input is a finding; the run goes on after it.
    const index = slice.last;
    run.inputs += index - from + 1;
    run.findings.push({
      target: name, seed, index, kind: slice.died!.startsWith('hang') ? 'hang' : 'crash', message: slice.died!,
      input: await inputAt(targetNamed(name), seed, index),
    });
    from = index + 1;
  }
  run.ms = performance.now() - started;
  return run;
}

const runs: TargetRun[] = [];
let assigned = 0;
for (const [i, t] of targets.entries()) {
  const count = i === targets.length - 1 ? total - assigned : Math.floor((total * (WEIGHTS[t.name] ?? 10)) / weightSum);
  assigned += count;
  if (count <= 0) continue;
  process.stderr.write(`fuzz ${t.name}: ${count} inputs (seed ${seed}): ${t.covers}\n`);
  const run = await fuzzTarget(t.name, count);
  runs.push(run);
  const rate = Math.round(run.inputs / (run.ms / 1000));
  process.stderr.write(`  ${run.inputs} inputs in ${(run.ms / 1000).toFixed(1)} s (${rate}/s), ${run.findings.length} findings\n`);
  for (const f of run.findings) {
    const saved = values['no-save'] ? '' : ` saved to ${saveFinding(f)}`;
    process.stderr.write(`  finding at input ${f.index} (${f.kind}): ${f.message.slice(0, 400)}${saved}\n`);
  }
}
rmSync(work, { recursive: true, force: true });

const all = runs.reduce((n, r) => n + r.inputs, 0);
const findings: Finding[] = runs.flatMap((r) => r.findings);
const ms = runs.reduce((n, r) => n + r.ms, 0);
process.stdout.write(`target       inputs  findings  seconds  inputs/s\n`);
for (const r of runs) {
  process.stdout.write(`${r.target.padEnd(12)} ${String(r.inputs).padStart(7)} ${String(r.findings.length).padStart(9)} ${(r.ms / 1000).toFixed(1).padStart(8)} ${String(Math.round(r.inputs / (r.ms / 1000))).padStart(9)}\n`);
}
process.stdout.write(`${'total'.padEnd(12)} ${String(all).padStart(7)} ${String(findings.length).padStart(9)} ${(ms / 1000).toFixed(1).padStart(8)}\n`);
if (values.json) writeFileSync(values.json, `${JSON.stringify({ seed, total: all, runs: runs.map((r) => ({ ...r, findings: r.findings.map((f) => ({ ...f, input: undefined })) })) }, null, 2)}\n`);
process.exitCode = findings.length ? 1 : 0;
