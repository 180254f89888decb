// Step 5: the mock kernel against the real one. The conformance suite runs on the host
// over the mock kernel, pretending to be the same kernel series, and records its
// outcomes the way the guest did; each case's observed outcome must be the same on
// both, except for cases the suite marks versionDependent, which are listed apart.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { canonicalJson, isVersionDependent, type Outcome } from './outcomes.js';
import { parseTap, type TapResult } from './tap.js';
import { run } from './exec.js';
import { repoRoot } from './paths.js';

export type ParityStatus = 'identical' | 'declared' | 'differs' | 'only-mock' | 'only-kernel';

export interface ParityRow {
  case: string;
  status: ParityStatus;
  mock?: string;
  real?: string;
  versionDependent: boolean;
  /** The suite's reason, when it gave one. */
  reason?: string;
}

export interface Parity {
  rows: ParityRow[];
  identical: number;
  /** Cases the suite declares version-dependent, whatever their outcome. */
  versionDependent: number;
  /** versionDependent cases whose outcomes differ: allowed. */
  declared: number;
  /** Differences that fail the run (including cases seen on one side only). */
  differing: number;
}

/** Keys cases by name; a name seen again gets " #2", " #3"... so repeats pair up in order. */
function byCase(outcomes: readonly Outcome[]): Map<string, Outcome> {
  const map = new Map<string, Outcome>();
  const seen = new Map<string, number>();
  for (const o of outcomes) {
    const n = (seen.get(o.case) ?? 0) + 1;
    seen.set(o.case, n);
    map.set(n === 1 ? o.case : `${o.case} #${n}`, o);
  }
  return map;
}

export function compareOutcomes(mock: readonly Outcome[], real: readonly Outcome[]): Parity {
  const m = byCase(mock);
  const r = byCase(real);
  const names = [...new Set([...r.keys(), ...m.keys()])];
  const rows: ParityRow[] = names.map((name) => {
    const a = m.get(name);
    const b = r.get(name);
    const versionDependent = isVersionDependent(a) || isVersionDependent(b);
    const row: ParityRow = { case: name, status: 'identical', versionDependent };
    const reason = [a?.versionDependent, b?.versionDependent].find((v): v is string => typeof v === 'string' && v !== '');
    if (reason !== undefined) row.reason = reason;
    if (a) row.mock = canonicalJson(a.observed);
    if (b) row.real = canonicalJson(b.observed);
    if (!a) row.status = 'only-kernel';
    else if (!b) row.status = 'only-mock';
    else if (row.mock !== row.real) row.status = versionDependent ? 'declared' : 'differs';
    return row;
  });
  return {
    rows,
    identical: rows.filter((x) => x.status === 'identical').length,
    versionDependent: rows.filter((x) => x.versionDependent).length,
    declared: rows.filter((x) => x.status === 'declared').length,
    differing: rows.filter((x) => x.status === 'differs' || x.status === 'only-mock' || x.status === 'only-kernel').length,
  };
}

/** "282 cases, 282 identical (5 declared version-dependent), 0 differing". */
function counts(p: Parity): string {
  const allowed = p.declared ? `, ${p.declared} of them differing as allowed` : '';
  return `${p.rows.length} cases, ${p.identical} identical (${p.versionDependent} declared version-dependent${allowed}), ${p.differing} differing`;
}

export function paritySummary(label: string, p: Parity): string {
  return `parity ${label}: ${counts(p)}`;
}

const cell = (s: string | undefined): string => (s === undefined ? '—' : `\`${s.replace(/\|/g, '\\|').replace(/`/g, "'")}\``);

/** The comparison as a Markdown document. */
export function parityTable(title: string, p: Parity): string {
  const text = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const table = (rows: ParityRow[], withReason: boolean): string[] => [
    `| case | mock | real kernel | status |${withReason ? ' why it may differ |' : ''}`,
    `|---|---|---|---|${withReason ? '---|' : ''}`,
    ...rows.map((r) => `| ${text(r.case)} | ${cell(r.mock)} | ${cell(r.real)} | ${r.status} |` +
      (withReason ? ` ${text(r.reason ?? '')} |` : '')),
  ];
  const fixed = p.rows.filter((r) => !r.versionDependent);
  const dependent = p.rows.filter((r) => r.versionDependent);
  return [
    `# ${title}`,
    '',
    `${counts(p)}.`,
    '',
    '## Cases that must match',
    '',
    ...table(fixed, false),
    '',
    '## Version-dependent cases (a difference is allowed)',
    '',
    ...(dependent.length ? table(dependent, true) : ['(none)']),
    '',
  ].join('\n');
}

export interface MockRun {
  outcomes: string;
  tap: TapResult;
  exitCode: number;
  stderr: string;
}

/** Runs the conformance files on the host over the mock kernel of `series`. */
export async function runMockConformance(series: string, files: readonly string[], outPath: string, timeoutSeconds: number): Promise<MockRun> {
  rmSync(outPath, { force: true });
  const r = await run(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', ...files], {
    cwd: repoRoot,
    allowFailure: true,
    timeoutMs: timeoutSeconds * 1000,
    env: { ...process.env, VGPU_SYS: 'mock', VGPU_MOCK_KERNEL: series, VGPU_CONFORMANCE_OUT: outPath, NO_COLOR: '1' },
  });
  const outcomes = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  return { outcomes, tap: parseTap(r.stdout), exitCode: r.code, stderr: r.stderr };
}

export function writeParityTable(path: string, title: string, p: Parity): void {
  writeFileSync(path, parityTable(title, p));
}
