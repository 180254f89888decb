// What a fuzz target is: a boundary of the project, how to make inputs for it
// (structured: mutations of valid messages; random: bytes), how to run one, and the
// invariants checked after each. Inputs are plain JSON so a failing one is saved
// as it is and replayed by test/fuzz/corpus.test.ts.
import { isSysError } from '../../src/addon/errors.js';
import type { Rng } from './rng.js';

export interface FuzzTarget<C, I> {
  readonly name: string;
  /** What the target covers, for the run's report. */
  readonly covers: string;
  /** Made once per run (and once per replayed input). */
  open(): Promise<C> | C;
  /** Input `rng` stands for: a mutation of a valid message or random bytes. */
  generate(rng: Rng, ctx: C): I;
  /** Runs one input and checks the invariants after it: throws a FuzzFinding when one breaks. */
  run(ctx: C, input: I): Promise<void> | void;
  /** Ends the context and checks that nothing is left behind. */
  close(ctx: C): Promise<void> | void;
}

/** A target with its context and input types hidden, as the engine holds it. */
export interface OpenTarget {
  generate(rng: Rng): unknown;
  run(input: unknown): Promise<void> | void;
  close(): Promise<void> | void;
}

export interface ErasedTarget {
  readonly name: string;
  readonly covers: string;
  open(): Promise<OpenTarget>;
}

/** Hides a target's types; an input handed back to run() is one its generate() made or a saved one. */
export function erase<C, I>(target: FuzzTarget<C, I>): ErasedTarget {
  return {
    name: target.name,
    covers: target.covers,
    async open() {
      const ctx = await target.open();
      return {
        generate: (rng) => target.generate(rng, ctx),
        run: (input) => target.run(ctx, input as I),
        close: () => target.close(ctx),
      };
    },
  };
}

/** An invariant that broke: the input is saved and the run goes on with a fresh context. */
export class FuzzFinding extends Error {
  constructor(message: string, readonly detail?: unknown) {
    super(message);
    this.name = 'FuzzFinding';
  }
}

/**
 * Runs what an input does at a boundary. A SysError is the boundary refusing bad input,
 * as it should; anything else thrown (TypeError, RangeError, a plain Error) escaped
 * validation and is a finding.
 */
export function expectRefusalOnly(what: string, fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    if (isSysError(err) && typeof err.code === 'string' && /^E[A-Z0-9]+$/.test(err.code)) return undefined;
    throw new FuzzFinding(`${what}: threw ${describe(err)}`, err);
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}${(err as { code?: unknown }).code ? ` ${String((err as { code?: unknown }).code)}` : ''}: ${err.message}`;
  return String(err);
}

export function check(condition: boolean, message: () => string): void {
  if (!condition) throw new FuzzFinding(message());
}
