// The conformance suite's outcome records: one JSON object per line in the file named by
// VGPU_CONFORMANCE_OUT: { case, observed, kernel, versionDependent? }.

export interface Outcome {
  case: string;
  observed: unknown;
  /** os.release() where it ran. */
  kernel?: unknown;
  /** Why the expected value differs between kernels (the suite writes a reason). */
  versionDependent?: string | boolean;
}

/** A case the suite declares version-dependent: a difference from the mock is allowed. */
export function isVersionDependent(o: Outcome | undefined): boolean {
  const v = o?.versionDependent;
  return v !== undefined && v !== false && v !== '';
}

export interface OutcomeFile {
  outcomes: Outcome[];
  /** Lines that are not such a record, with their line numbers. */
  invalid: string[];
}

export function parseOutcomes(text: string): OutcomeFile {
  const outcomes: Outcome[] = [];
  const invalid: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r+$/, '').trim();
    if (!line) return;
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === 'object' && v !== null && typeof (v as { case?: unknown }).case === 'string' && 'observed' in v) {
        outcomes.push(v as Outcome);
        return;
      }
    } catch {
      // reported below
    }
    invalid.push(`line ${i + 1}: ${line.slice(0, 200)}`);
  });
  return { outcomes, invalid };
}

/** JSON with object keys sorted, so equal values print equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  }) ?? 'undefined';
}
