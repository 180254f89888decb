// Parity suites besides conformance (the mdev bus, the display vGPU against mbochs,
// migration on mtty): each is a guest phase whose outcome records reach the host in the
// one outcomes section every phase writes to, told apart by case-name prefix. Here the
// same files run on the mock kernel and each table is compared row by row: identical,
// declared (a row the suite states differs by driver or version, with its reason), or
// differing (a failure). Their records are kept out of the conformance parity.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { GuestPhase } from './guest-init.js';
import type { ReportCase } from './evaluate.js';
import type { KernelSeries } from './fetch.js';
import { parseOutcomes, type Outcome } from './outcomes.js';
import { compareOutcomes, paritySummary, runMockConformance, writeParityTable, type Parity } from './parity.js';
import { cacheDir, repoRoot } from './paths.js';
import { log, seconds } from './log.js';

interface ParityTable {
  /** The table's file: .cache/kernel/<key>-parity-<release>.md. */
  readonly key: string;
  /** The case-name prefix of its records. */
  readonly prefix: string;
  readonly title: string;
  /** Its harness case. */
  readonly caseName: string;
}

export interface ParitySuite {
  /** The guest phase's name. */
  readonly phase: string;
  readonly files: readonly string[];
  readonly tables: readonly ParityTable[];
  /** The mock flavour to compare with (default: the guest's series). */
  readonly mockSeries?: KernelSeries;
  /** Set when a kernel may rightly record nothing (the case is then skipped, saying why). */
  readonly noRecordsReason?: string;
}

export const PARITY_SUITES: readonly ParitySuite[] = [
  {
    phase: 'migration',
    files: ['dist/test/migration-parity/parity.test.js'],
    tables: [{ key: 'migration', prefix: 'migration: ', title: 'VFIO migration v2, a vGPU vs mtty', caseName: 'harness: the migration parity suite matches on mtty and a vGPU' }],
    // mtty's migration is 6.12's; the mock's 6.12 flavour is its counterpart.
    mockSeries: '6.12',
    noRecordsReason: '6.1\'s mtty has no migration',
  },
  {
    phase: 'mdev-parity',
    files: ['dist/test/mdev-parity/sysfs.test.js', 'dist/test/mdev-parity/display.test.js'],
    tables: [
      { key: 'mdev-sysfs', prefix: 'mdev sysfs ', title: 'the mdev bus', caseName: 'harness: the mock kernel\'s mdev bus matches the real one (mtty, mdpy, mbochs)' },
      { key: 'display', prefix: 'display parity: ', title: 'the display vGPU against mbochs', caseName: 'harness: the display vGPU matches mbochs' },
    ],
  },
];

/** Whether a record belongs to one of these suites (and so not to the conformance parity). */
export function isSuiteOutcome(o: Outcome): boolean {
  return PARITY_SUITES.some((s) => s.tables.some((t) => o.case.startsWith(t.prefix)));
}

/** The suites' guest phases, and a harness failure for each suite that is not built. */
export function suitePhases(): { phases: GuestPhase[]; missing: ReportCase[] } {
  const phases: GuestPhase[] = [];
  const missing: ReportCase[] = [];
  for (const s of PARITY_SUITES) {
    const absent = s.files.filter((f) => !existsSync(join(repoRoot, f)));
    if (absent.length) missing.push({ name: `harness: the ${s.phase} suite is built`, status: 'fail', detail: `missing: ${absent.join(', ')}` });
    else phases.push({ name: s.phase, files: [...s.files] });
  }
  return { phases, missing };
}

function tableCase(table: ParityTable, label: string, p: Parity, tablePath: string, mockFailure: readonly string[]): ReportCase {
  const summary = `${paritySummary(label, p)} (table: ${tablePath})`;
  if (p.differing === 0 && p.rows.length > 0 && mockFailure.length === 0) return { name: table.caseName, status: 'pass', detail: summary };
  const differences = p.rows.filter((r) => r.status !== 'identical' && r.status !== 'declared');
  return {
    name: table.caseName, status: 'fail', detail: [
      summary,
      ...(p.rows.length === 0 ? ['no outcome recorded on either side'] : []),
      ...differences.slice(0, 20).map((r) => `${r.status}: ${r.case}: mock ${r.mock ?? '—'} / real ${r.real ?? '—'}`),
      ...(differences.length > 20 ? [`... and ${differences.length - 20} more in the table`] : []),
      ...mockFailure,
    ].join('\n'),
  };
}

/**
 * Runs a suite's files on the mock kernel and compares them with the guest's records:
 * one harness case per table, each written to .cache/kernel/<key>-parity-<release>.md.
 */
export async function suiteParityCases(suite: ParitySuite, series: KernelSeries, release: string, real: readonly Outcome[], timeoutSeconds: number): Promise<ReportCase[]> {
  const mine = (t: ParityTable) => (o: Outcome): boolean => o.case.startsWith(t.prefix);
  if (suite.noRecordsReason && !suite.tables.some((t) => real.some(mine(t)))) {
    return suite.tables.map((t) => ({ name: t.caseName, status: 'skip', detail: `no ${t.key} records from ${release} (${suite.noRecordsReason})` }));
  }
  const start = performance.now();
  const mockSeries = suite.mockSeries ?? series;
  const mock = await runMockConformance(mockSeries, suite.files, join(cacheDir, `outcomes-${suite.phase}-mock-${mockSeries}.jsonl`), timeoutSeconds);
  const failed = mock.tap.cases.filter((c) => c.status === 'fail').length;
  log(`${series}: mock ${suite.phase} run: ${mock.tap.cases.length} tests, ${failed} failed (exit ${mock.exitCode}) in ${seconds(start)}`);
  const mockOutcomes = parseOutcomes(mock.outcomes);
  const mockFailure = [
    ...(mock.exitCode !== 0 ? [`the mock run exited ${mock.exitCode}`] : []),
    ...mockOutcomes.invalid.slice(0, 5).map((l) => `bad mock record ${l}`),
  ];
  return suite.tables.map((t) => {
    const parity = compareOutcomes(mockOutcomes.outcomes.filter(mine(t)), real.filter(mine(t)));
    const tablePath = join(cacheDir, `${t.key}-parity-${release}.md`);
    writeParityTable(tablePath, `Mock kernel ${mockSeries} vs Linux ${release}: ${t.title}`, parity);
    return tableCase(t, `${t.key} ${release}`, parity, tablePath, mockFailure);
  });
}
