// The migration parity (issue 12 part 3): the guest's `migration` phase runs the parity
// suite on Linux's mtty (its records are the outcomes whose case starts "migration: ");
// here the same suite runs on the host over a vGPU on the mock kernel, and the two are
// compared row by row: identical, declared (a row the suite states differs by design,
// with the reason), or differing (a failure).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ReportCase } from './evaluate.js';
import { compareOutcomes, paritySummary, runMockConformance, writeParityTable } from './parity.js';
import { parseOutcomes, type Outcome } from './outcomes.js';
import { cacheDir, repoRoot } from './paths.js';

export const migrationParityFile = 'dist/test/migration-parity/parity.test.js';
const PREFIX = 'migration: ';

export function isMigrationOutcome(o: Outcome): boolean {
  return o.case.startsWith(PREFIX);
}

/** The guest phase, when the suite is built. */
export function migrationPhase(): { name: string; files: string[] } | undefined {
  return existsSync(join(repoRoot, migrationParityFile)) ? { name: 'migration', files: [migrationParityFile] } : undefined;
}

export async function migrationParityCase(release: string, real: readonly Outcome[], timeoutSeconds: number): Promise<ReportCase> {
  const name = 'harness: the migration parity suite matches on mtty and a vGPU';
  const records = real.filter(isMigrationOutcome);
  if (records.length === 0) {
    return { name, status: 'skip', detail: `no migration records from ${release} (6.1's mtty has no migration)` };
  }
  const mock = await runMockConformance('6.12', [migrationParityFile], join(cacheDir, 'outcomes-migration-mock.jsonl'), timeoutSeconds);
  const mockOutcomes = parseOutcomes(mock.outcomes);
  const parity = compareOutcomes(mockOutcomes.outcomes, records);
  const tablePath = join(cacheDir, `migration-parity-${release}.md`);
  writeParityTable(tablePath, `Migration parity: a vGPU on the mock kernel vs mtty on Linux ${release} (the "version-dependent" rows are the device-specific ones the suite declares)`, parity);
  const summary = `${paritySummary(`migration ${release}`, parity)} (table: ${tablePath})`;
  if (parity.differing === 0 && parity.rows.length > 0 && mockOutcomes.invalid.length === 0 && mock.exitCode === 0) {
    return { name, status: 'pass', detail: summary };
  }
  const differences = parity.rows.filter((r) => r.status !== 'identical' && r.status !== 'declared');
  return {
    name, status: 'fail', detail: [
      summary,
      ...(mock.exitCode !== 0 ? [`the mock run exited ${mock.exitCode}`] : []),
      ...differences.slice(0, 20).map((r) => `${r.status}: ${r.case}: mock ${r.mock ?? '—'} / real ${r.real ?? '—'}`),
    ].join('\n'),
  };
}
