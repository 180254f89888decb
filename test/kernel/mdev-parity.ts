// The mdev parity suites (test/mdev-parity) in the harness: their guest phase, run on the
// real kernel with the samples loaded, and their comparison with the same files on the
// mock kernel. Their outcome records reach the host in the one outcomes section every
// phase writes to; they are told apart by case name, compared here in two tables of
// their own (the mdev bus; the display vGPU against mbochs), and kept out of the
// conformance parity, whose mock run does not run them.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { GuestPhase } from './guest-init.js';
import type { ReportCase } from './evaluate.js';
import type { KernelSeries } from './fetch.js';
import { parseOutcomes, type Outcome } from './outcomes.js';
import { compareOutcomes, paritySummary, runMockConformance, writeParityTable, type Parity } from './parity.js';
import { cacheDir, repoRoot } from './paths.js';
import { log, seconds } from './log.js';

export const MDEV_PARITY_FILES = ['dist/test/mdev-parity/sysfs.test.js', 'dist/test/mdev-parity/display.test.js'] as const;

/** The two tables: which cases each holds (by the suites' case-name prefixes), and its harness case. */
const TABLES = [
  { key: 'mdev-sysfs', prefix: 'mdev sysfs ', title: 'the mdev bus', caseName: 'harness: the mock kernel\'s mdev bus matches the real one (mtty, mdpy, mbochs)' },
  { key: 'display', prefix: 'display parity: ', title: 'the display vGPU against mbochs', caseName: 'harness: the display vGPU matches mbochs' },
] as const;

export function isMdevParityCase(o: Outcome): boolean {
  return TABLES.some((t) => o.case.startsWith(t.prefix));
}

/** The guest phase, or a harness failure when the suites are not built. */
export function mdevParityPhase(): { phase?: GuestPhase; missing?: ReportCase } {
  const absent = MDEV_PARITY_FILES.filter((f) => !existsSync(join(repoRoot, f)));
  if (absent.length) return { missing: { name: 'harness: the mdev parity suites are built', status: 'fail', detail: `missing: ${absent.join(', ')}` } };
  return { phase: { name: 'mdev-parity', files: [...MDEV_PARITY_FILES] } };
}

function tableCase(name: string, label: string, p: Parity, tablePath: string, mockInvalid: readonly string[]): ReportCase {
  const summary = `${paritySummary(label, p)} (table: ${tablePath})`;
  if (p.differing === 0 && p.rows.length > 0 && mockInvalid.length === 0) return { name, status: 'pass', detail: summary };
  const differences = p.rows.filter((r) => r.status !== 'identical' && r.status !== 'declared');
  return {
    name, status: 'fail', detail: [
      summary,
      ...(p.rows.length === 0 ? ['no outcome recorded on either side'] : []),
      ...differences.slice(0, 20).map((r) => `${r.status}: ${r.case}: mock ${r.mock ?? '—'} / real ${r.real ?? '—'}`),
      ...(differences.length > 20 ? [`... and ${differences.length - 20} more in the table`] : []),
      ...mockInvalid.slice(0, 5).map((l) => `bad mock record ${l}`),
    ].join('\n'),
  };
}

/**
 * Runs the suites on the mock kernel of `series` and compares them with the guest's
 * records: one harness case per table, written to .cache/kernel/<key>-parity-<release>.md.
 */
export async function mdevParityCases(series: KernelSeries, release: string, real: readonly Outcome[], timeoutSeconds: number): Promise<ReportCase[]> {
  const start = performance.now();
  const mock = await runMockConformance(series, MDEV_PARITY_FILES, join(cacheDir, `outcomes-mdev-mock-${series}.jsonl`), timeoutSeconds);
  const failed = mock.tap.cases.filter((c) => c.status === 'fail').length;
  log(`${series}: mock mdev parity run: ${mock.tap.cases.length} tests, ${failed} failed (exit ${mock.exitCode}) in ${seconds(start)}`);
  const mockOutcomes = parseOutcomes(mock.outcomes);
  return TABLES.map((t) => {
    const mine = (o: Outcome): boolean => o.case.startsWith(t.prefix);
    const parity = compareOutcomes(mockOutcomes.outcomes.filter(mine), real.filter(mine));
    const tablePath = join(cacheDir, `${t.key}-parity-${release}.md`);
    writeParityTable(tablePath, `Mock kernel ${series} vs Linux ${release}: ${t.title}`, parity);
    return tableCase(t.caseName, `${t.key} ${release}`, parity, tablePath, mockOutcomes.invalid);
  });
}
