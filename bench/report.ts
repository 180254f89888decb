// The one way every bench takes rounds and prints a figure: aligned name, value and
// unit, and, when a baseline measured in the same run is given, the ratio to it ("1.21x C").
import { performance } from 'node:perf_hooks';

const NAME_WIDTH = 50;
const VALUE_WIDTH = 12;

/** A section title before a bench's figures. */
export function title(text: string): void {
  console.log(`\n${text}`);
}

/** A line under the figures: what the mock stands in for, what caps a figure. */
export function note(text: string): void {
  console.log(`  note: ${text}`);
}

/** Prints one figure; with a baseline, also value / baseline. */
export function report(name: string, value: number, unit: string, baselineName?: string, baselineValue?: number): void {
  console.log(figureLine(name, value, unit, baselineName, baselineValue));
}

function figureLine(name: string, value: number, unit: string, baselineName?: string, baselineValue?: number): string {
  let line = `  ${name.padEnd(NAME_WIDTH)}${format(value).padStart(VALUE_WIDTH)} ${unit}`;
  if (baselineName !== undefined && baselineValue !== undefined && baselineValue > 0) {
    line = `${line.padEnd(2 + NAME_WIDTH + VALUE_WIDTH + 1 + 10)} ${(value / baselineValue).toFixed(2)}x ${baselineName}`;
  }
  return line;
}

function format(value: number): string {
  if (value >= 1000) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * Nanoseconds per call of one timed run: `loop(iterations)` makes `iterations` calls.
 * The loop lives in the caller so the call under test is inlined there, not reached
 * through a shared, polymorphic callback.
 */
export function nsPerCall(iterations: number, loop: (iterations: number) => void): number {
  const start = performance.now();
  loop(iterations);
  return ((performance.now() - start) * 1e6) / iterations;
}

/**
 * The one way benches take rounds: each side measured once per round, in turn, so a
 * busy moment on the machine lands on every side alike; one call of each first, not
 * kept, warms the JIT up. Returns every side's values, round by round.
 */
export function alternate<S extends Record<string, () => unknown>>(rounds: number, sides: S): { [K in keyof S]: ReturnType<S[K]>[] } {
  const names = Object.keys(sides) as (keyof S)[];
  const out = {} as { [K in keyof S]: ReturnType<S[K]>[] };
  for (const name of names) {
    sides[name]!();
    out[name] = [];
  }
  for (let round = 0; round < rounds; round++) {
    for (const name of names) out[name].push(sides[name]!() as ReturnType<S[typeof name]>);
  }
  return out;
}

/** Min, median and max of one figure over alternating rounds. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) throw new Error('spread of no values');
  return { min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!, max: sorted[sorted.length - 1]! };
}

/** Prints a spread's median, with a baseline the ratio of the medians, then min..max. */
export function reportSpread(name: string, s: Spread, unit: string, baselineName?: string, baseline?: Spread): void {
  const line = figureLine(name, s.median, `${unit} median`, baselineName, baseline?.median);
  console.log(`${line.padEnd(2 + NAME_WIDTH + VALUE_WIDTH + 1 + 10 + 20)}  (${format(s.min)}..${format(s.max)})`);
}
