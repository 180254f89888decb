// Runs inputs [from, from+count) of one target for one seed, checks each, and keeps
// what failed. A finding ends the target's context (it may be damaged) and a fresh one
// carries on. Each input is announced to `progress` before it runs, so a watchdog in
// another process can name the input of a hang or a crash (run.ts).
import { Rng } from './rng.js';
import { describe, type ErasedTarget, type OpenTarget } from './target.js';

export interface Finding {
  target: string;
  seed: number;
  index: number;
  kind: 'invariant' | 'exception' | 'hang' | 'crash';
  message: string;
  input: unknown;
}

export interface TargetRun {
  target: string;
  seed: number;
  from: number;
  inputs: number;
  findings: Finding[];
  ms: number;
}

export interface RunOptions {
  seed: number;
  from?: number;
  count: number;
  /** Stop after this many findings (default 10). */
  maxFindings?: number;
  progress?: (index: number) => void;
}

/** The input `index` of a run: a pure function of target, seed and index. */
export async function inputAt(target: ErasedTarget, seed: number, index: number, open?: OpenTarget): Promise<unknown> {
  const ctx = open ?? await target.open();
  try {
    return ctx.generate(Rng.forInput(target.name, seed, index));
  } finally {
    if (!open) await ctx.close();
  }
}

export async function runTarget(target: ErasedTarget, options: RunOptions): Promise<TargetRun> {
  const started = performance.now();
  const from = options.from ?? 0;
  const findings: Finding[] = [];
  let ctx = await target.open();
  let done = 0;
  for (let index = from; index < from + options.count && findings.length < (options.maxFindings ?? 10); index++) {
    options.progress?.(index);
    let input: unknown;
    try {
      input = ctx.generate(Rng.forInput(target.name, options.seed, index));
      await ctx.run(input);
    } catch (err) {
      const kind = err instanceof Error && err.name === 'FuzzFinding' ? 'invariant' : 'exception';
      findings.push({ target: target.name, seed: options.seed, index, kind, message: describe(err), input });
      try { await ctx.close(); } catch { /* the finding is reported; its context is beyond use */ }
      ctx = await target.open();
    }
    done++;
  }
  await ctx.close();
  return { target: target.name, seed: options.seed, from, inputs: done, findings, ms: performance.now() - started };
}

/** Replays one saved input in a fresh context: throws what the run found. */
export async function replay(target: ErasedTarget, input: unknown): Promise<void> {
  const ctx = await target.open();
  try {
    await ctx.run(input);
  } finally {
    await ctx.close();
  }
}
