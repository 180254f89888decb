// Migration parity cases: each observes an outcome that must equal what is expected of
// the device under test, recorded as conformance cases are (conformance/outcome.ts:
// VGPU_CONFORMANCE_OUT, one JSON line per case) so that the mock run and the mtty run are
// compared row by row; the kernel harness takes them apart by the "migration: " prefix.
// A row whose expected value differs between mtty and our vGPUs is declared with the
// reason, carried as versionDependent: the field the comparison allows a difference for.
import { conformanceCase } from '../conformance/outcome.js';
import type { MigrationTarget } from './target.js';

export { attempt, fails, ok } from '../conformance/outcome.js';
export type { Outcome } from '../conformance/outcome.js';

/** A row both devices must answer alike. */
export function parityCase<T>(t: MigrationTarget, name: string, expected: T, observe: () => T): void {
  conformanceCase(t, name, expected, observe);
}

/** A row where mtty and our vGPUs differ by design: both values and the reason are stated. */
export function declaredCase<T>(t: MigrationTarget, name: string, values: { mtty: T; vgpu: T }, reason: string, observe: () => T): void {
  conformanceCase(t, name, values[t.device], observe, { versionDependent: `device-specific: ${reason}` });
}
