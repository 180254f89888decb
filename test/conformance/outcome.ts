// Observed outcomes, asserted and recorded uniformly for cross-kernel parity.
//
// A case returns what it observed (an ioctl's return value or errno, and the output
// fields or bytes that matter); that is compared with the expected value, and, when
// VGPU_CONFORMANCE_OUT names a file, appended there as one JSON line:
//   {"case", "observed", "kernel": os.release(), "sys", "passed", "mockKernel"?, "versionDependent"?}
// so that the same case can be compared between the mock and real kernels.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { test } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import type { Target } from './target.js';

/** What a system call did: its return value (or 'fd' for a new fd, whose number varies), or its errno. */
export type Outcome = { ret: number | 'fd' } | { errno: string };

/** Runs one system call; a SysError becomes {errno}, anything else is a bug and is rethrown. */
export function attempt(fn: () => number): Outcome {
  try {
    return { ret: fn() };
  } catch (err) {
    if (isSysError(err)) return { errno: err.code };
    throw err;
  }
}

export const ok = (ret = 0): Outcome => ({ ret });
export const fails = (errno: string): Outcome => ({ errno });
export const FD: Outcome = { ret: 'fd' };

export function succeeded(o: Outcome): boolean {
  return 'ret' in o;
}

/** JSON with bigints as 0x-prefixed hex strings and byte arrays as hex. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return `0x${v.toString(16)}`;
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    return v;
  });
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export interface CaseOptions {
  /** Why the expected value differs between kernels (recorded with the outcome). */
  versionDependent?: string;
}

/** What a record names of the system under test (every parity suite's target has it). */
export type RecordTarget = Pick<Target, 'kind' | 'flavour' | 'release'>;

const names = new Set<string>();

function record(t: RecordTarget, name: string, observed: unknown, passed: boolean, opts: CaseOptions): void {
  const file = process.env['VGPU_CONFORMANCE_OUT'];
  if (!file) return;
  const line: Record<string, unknown> = { case: name, observed, kernel: t.release, sys: t.kind, passed };
  if (t.kind === 'mock') line['mockKernel'] = t.flavour;
  if (opts.versionDependent !== undefined) line['versionDependent'] = opts.versionDependent;
  appendFileSync(file, `${stableJson(line)}\n`);
}

/**
 * One conformance case: `observe` returns the observed outcome, which must equal
 * `expected` (deepStrictEqual). Names are unique and stable ("area: what").
 */
export function conformanceCase<T>(t: RecordTarget, name: string, expected: T, observe: () => T | Promise<T>, opts: CaseOptions = {}): void {
  if (names.has(name)) throw new Error(`duplicate conformance case name: ${name}`);
  names.add(name);
  test(name, async () => {
    let observed: T;
    try {
      observed = await observe();
    } catch (err) {
      record(t, name, { threw: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, false, opts);
      throw err;
    }
    let passed = true;
    try {
      assert.deepStrictEqual(observed, expected);
    } catch (err) {
      passed = false;
      throw err;
    } finally {
      record(t, name, observed, passed, opts);
    }
  });
}

/** The expected value for the target's kernel flavour. */
export function byFlavour<T>(t: Target, values: { '6.1': T; '6.12': T }): T {
  return values[t.flavour];
}
