// Migration parity cases: each observes an outcome that must equal what is expected of
// the device under test, and is recorded (VGPU_MIGRATION_OUT: one JSON line per case,
// {"case","observed","kernel","sys","device","passed","versionDependent"?}) so the mock run and
// the mtty run can be compared row by row. A row whose expected value differs between
// mtty and our vGPUs is declared, with the reason; every other row must be identical.
// Without VGPU_MIGRATION_OUT the records go where the conformance suite's go
// (VGPU_CONFORMANCE_OUT: the kernel harness's guest and its mock runs), and the harness
// takes them apart by the "migration: " prefix; a declared row carries its reason as
// versionDependent, the field the harness's comparison allows a difference for.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { test } from 'node:test';
import { stableJson } from '../conformance/outcome.js';
import type { MigrationTarget } from './target.js';

export { attempt, fails, ok } from '../conformance/outcome.js';
export type { Outcome } from '../conformance/outcome.js';

const names = new Set<string>();

function record(t: MigrationTarget, name: string, observed: unknown, passed: boolean, declared: string | undefined): void {
  const file = process.env['VGPU_MIGRATION_OUT'] || process.env['VGPU_CONFORMANCE_OUT'];
  if (!file) return;
  const line: Record<string, unknown> = { case: name, observed, kernel: t.release, sys: t.kind, device: t.device, passed };
  if (declared !== undefined) line['versionDependent'] = `device-specific: ${declared}`;
  appendFileSync(file, `${stableJson(line)}\n`);
}

function define<T>(t: MigrationTarget, name: string, expected: T, declared: string | undefined, observe: () => T): void {
  if (names.has(name)) throw new Error(`duplicate migration case name: ${name}`);
  names.add(name);
  test(name, () => {
    let observed: T;
    try {
      observed = observe();
    } catch (err) {
      record(t, name, { threw: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, false, declared);
      throw err;
    }
    let passed = true;
    try {
      assert.deepStrictEqual(observed, expected);
    } catch (err) {
      passed = false;
      throw err;
    } finally {
      record(t, name, observed, passed, declared);
    }
  });
}

/** A row both devices must answer alike. */
export function parityCase<T>(t: MigrationTarget, name: string, expected: T, observe: () => T): void {
  define(t, name, expected, undefined, observe);
}

/** A row where mtty and our vGPUs differ by design: both values and the reason are stated. */
export function declaredCase<T>(t: MigrationTarget, name: string, values: { mtty: T; vgpu: T }, reason: string, observe: () => T): void {
  define(t, name, values[t.device], reason, observe);
}
