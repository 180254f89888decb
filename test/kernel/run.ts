// `npm run test:kernel`: Linux's own VFIO, in a QEMU guest per Debian kernel (6.1, then
// 6.12), runs the project's conformance and edu end-to-end suites on a real edu device;
// every guest test is reported here, and the conformance outcomes are compared with
// the mock kernel's. Exits non-zero on any failure. See test/kernel/README.md.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, repoRoot } from './paths.js';
import { checkHostTools, vmTools } from './host-tools.js';
import { fetchBusybox, fetchKernel, type KernelSeries } from './fetch.js';
import { addonPath, guestImage, projectLayer } from './image.js';
import type { Layer } from './cpio.js';
import type { GuestPhase } from './guest-init.js';
import { boot, type BootResult } from './boot.js';
import { evaluateBoot, type Evaluation, type ReportCase } from './evaluate.js';
import { compareOutcomes, paritySummary, runMockConformance, writeParityTable } from './parity.js';
import { parseOutcomes, type Outcome } from './outcomes.js';
import { parseOptions, usage, type Options } from './options.js';
import { log, seconds } from './log.js';
import { fact } from './markers.js';
import { listTree } from './hash.js';
import { runVm } from './vm/run.js';
import { bootCase, bootWithRetry, parityNotComputed } from './crash.js';
import { mdevImage } from './mdev-image.js';
import { isSuiteOutcome, PARITY_SUITES, suiteParityCases, suitePhases } from './suite-parity.js';

const conformanceDir = 'dist/test/conformance';
const e2eFile = 'dist/test/e2e/edu.test.js';
const mediatedFile = 'dist/test/e2e/edu-mediated.test.js';
/**
 * The one IOMMU fault the e2e test provokes: edu's DMA to an unmapped IOVA. The
 * mediated phase has its own marks and may provoke none: its isolation cases must stop
 * a vGPU's bad DMA before the physical device is ever programmed with it.
 */
const allowedFaults: Readonly<Record<string, number>> = { e2e: 1 };

interface Totals { passed: number; failed: number; skipped: number }

function conformanceFiles(): string[] {
  const dir = join(repoRoot, conformanceDir);
  if (!existsSync(dir)) return [];
  return listTree(dir, (f) => f.endsWith('.test.js')).map((f) => `${conformanceDir}/${f}`);
}

/** The guest's phases, and harness failures for the suites that are not there. */
function plan(): { phases: GuestPhase[]; missing: ReportCase[]; conformance: string[] } {
  const phases: GuestPhase[] = [{ name: 'environment', files: ['dist/test/kernel/guest/environment.js'] }];
  const missing: ReportCase[] = [];
  const conformance = conformanceFiles();
  if (conformance.length) phases.push({ name: 'conformance', files: conformance });
  else missing.push({ name: 'harness: the conformance suite is built', status: 'fail', detail: `no *.test.js in ${conformanceDir}` });
  if (existsSync(join(repoRoot, e2eFile))) phases.push({ name: 'e2e', files: [e2eFile] });
  else missing.push({ name: 'harness: the edu end-to-end test is built', status: 'fail', detail: `no ${e2eFile}` });
  if (existsSync(join(repoRoot, mediatedFile))) phases.push({ name: 'mediated', files: [mediatedFile] });
  else missing.push({ name: 'harness: the mediated edu end-to-end test is built', status: 'fail', detail: `no ${mediatedFile}` });
  // The kernel's mdev samples (mdev-samples.ts), loaded by /init.
  phases.push({ name: 'mdev-host', files: ['dist/test/kernel/guest/mdev-host.js'] });
  phases.push({ name: 'mdev-vfio', files: ['dist/test/kernel/guest/mdev-vfio.js'] });
  // The parity suites on the samples (suite-parity.ts): migration on mtty, the mdev bus, the display.
  const suites = suitePhases();
  phases.push(...suites.phases);
  missing.push(...suites.missing);
  return { phases, missing, conformance };
}

function printCases(cases: readonly ReportCase[]): Totals {
  const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    const label = { pass: 'ok  ', fail: 'FAIL', skip: 'skip', todo: 'todo' }[c.status];
    process.stdout.write(`  ${label} ${c.name}${c.status !== 'fail' && c.detail ? ` # ${c.detail}` : ''}\n`);
    if (c.status === 'fail' && c.detail) process.stdout.write(c.detail.split('\n').map((l) => `         ${l}\n`).join(''));
    if (c.status === 'pass') totals.passed++;
    else if (c.status === 'fail') totals.failed++;
    else totals.skipped++;
  }
  return totals;
}

/** Runs the conformance suite on the mock kernel and compares it with the real kernel's outcomes. */
async function parityCase(series: KernelSeries, release: string, real: readonly Outcome[], files: readonly string[],
  options: Options): Promise<ReportCase> {
  const name = 'harness: the mock kernel matches the real one';
  writeFileSync(join(cacheDir, `outcomes-${release}.jsonl`), real.map((o) => JSON.stringify(o)).join('\n'));
  const start = performance.now();
  const mock = await runMockConformance(series, files, join(cacheDir, `outcomes-mock-${series}.jsonl`), options.timeoutSeconds);
  const mockFailed = mock.tap.cases.filter((c) => c.status === 'fail').length;
  log(`${series}: mock conformance run: ${mock.tap.cases.length} tests, ${mockFailed} failed (exit ${mock.exitCode}) in ${seconds(start)}`);
  const mockOutcomes = parseOutcomes(mock.outcomes);
  const parity = compareOutcomes(mockOutcomes.outcomes, real);
  const tablePath = join(cacheDir, `parity-${release}.md`);
  writeParityTable(tablePath, `Mock kernel ${series} vs Linux ${release}: conformance outcomes`, parity);
  const summary = `${paritySummary(release, parity)} (table: ${tablePath})`;
  if (parity.differing === 0 && parity.rows.length > 0 && mockOutcomes.invalid.length === 0) {
    return { name, status: 'pass', detail: summary };
  }
  const differences = parity.rows.filter((r) => r.status !== 'identical' && r.status !== 'declared');
  return {
    name, status: 'fail', detail: [
      summary,
      ...(parity.rows.length === 0 ? ['no outcome recorded on either side'] : []),
      ...differences.slice(0, 20).map((r) => `${r.status}: ${r.case}: mock ${r.mock ?? '—'} / real ${r.real ?? '—'}`),
      ...(differences.length > 20 ? [`... and ${differences.length - 20} more in the table`] : []),
      ...mockOutcomes.invalid.slice(0, 5).map((l) => `bad mock record ${l}`),
    ].join('\n'),
  };
}

/** Fault lines always; runner stderr when something failed; the console's tail when the guest did not finish. */
function printDiagnostics(series: KernelSeries, result: BootResult, evaluation: Evaluation, failed: boolean, logPath: string): void {
  const faults = evaluation.faults;
  if (faults?.lines.length) {
    log(`${series}: DMAR/IOMMU fault lines in the guest's kernel log:`);
    for (const l of faults.lines) process.stdout.write(`    ${l}\n`);
    for (const [phase, records] of faults.perPhase) {
      log(`${series}: ${phase}: ${records.length} fault record(s), ${allowedFaults[phase] ?? 0} allowed`);
    }
  }
  if (failed) {
    for (const [phase, lines] of evaluation.stderr) {
      log(`${series}: stderr of the ${phase} run:`);
      for (const l of lines.slice(-30)) process.stdout.write(`    ${l}\n`);
    }
  }
  if (!evaluation.serial.done || result.timedOut || result.exitCode !== 0) {
    const tail = result.serial.replace(/\r/g, '').split('\n').slice(-60);
    log(`${series}: last ${tail.length} lines of the serial console (${logPath}):`);
    for (const l of tail) process.stdout.write(`  | ${l}\n`);
    if (result.qemuStderr.trim()) {
      log(`${series}: QEMU's stderr:`);
      for (const l of result.qemuStderr.trim().split('\n').slice(-20)) process.stdout.write(`  ! ${l}\n`);
    }
  }
}

async function runKernel(series: KernelSeries, options: Options, setup: Setup): Promise<Totals> {
  const buildStart = performance.now();
  const kernel = await fetchKernel(series);
  const mdev = await mdevImage(kernel);
  const image = await guestImage(kernel, setup.busybox, setup.project, mdev.layer ? [mdev.layer] : []);
  const rebuilt = image.layers.filter((l) => l.built).map((l) => l.name);
  log(`${series}: ${kernel.release} (${kernel.pkg}), image ready in ${seconds(buildStart)}` +
    (rebuilt.length ? ` (built: ${rebuilt.join(', ')})` : ' (all layers cached)'));

  const logPath = join(cacheDir, `serial-${kernel.release}.log`);
  log(`${series}: booting (timeout ${options.timeoutSeconds} s, console in ${logPath})`);
  const attempts = await bootWithRetry(
    () => boot({ vmlinuz: kernel.vmlinuz, initrd: image.initrd, logPath, timeoutSeconds: options.timeoutSeconds, echo: options.echo }),
    (line) => log(`${series}: ${line}`));
  const result = attempts.result;
  if (attempts.crash) {
    // Nothing ran: one failure showing the crash, and no parity from outcomes that do not exist.
    const cases = [...setup.missing, ...mdev.cases, bootCase(attempts), ...(parityWanted(options, setup) ? [parityNotComputed()] : [])];
    const totals = printCases(cases);
    log(`${series}: ${kernel.release}: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped (the guest never ran)`);
    return totals;
  }
  const evaluation = evaluateBoot(result, {
    release: kernel.release, phases: setup.phases, allowedFaults, faultDevice: '00:04.0', mdevParents: mdev.parents,
  });
  const cases = [...setup.missing, ...mdev.cases, bootCase(attempts), ...evaluation.cases];

  const real = evaluation.outcomes?.outcomes ?? [];
  if (parityWanted(options, setup)) {
    cases.push(await parityCase(series, kernel.release, real.filter((o) => !isSuiteOutcome(o)), setup.conformance, options));
  }
  // The suites need the samples: a failed sample build is its own failing case (mdevImage).
  for (const suite of PARITY_SUITES) {
    if (!options.parity || !mdev.parents.length || !setup.phases.some((p) => p.name === suite.phase)) continue;
    cases.push(...await suiteParityCases(suite, series, kernel.release, real, options.timeoutSeconds));
  }

  const timing = result.bootSeconds !== undefined
    ? `boot ${result.bootSeconds.toFixed(1)} s, boot to result ${result.totalSeconds.toFixed(1)} s`
    : `QEMU ran ${result.totalSeconds.toFixed(1)} s`;
  log(`${series}: guest uname -r: ${fact(evaluation.serial, 'uname') ?? '(not printed)'}; ${timing}`);
  const totals = printCases(cases);
  printDiagnostics(series, result, evaluation, totals.failed > 0, logPath);
  log(`${series}: ${kernel.release}: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  return totals;
}

/** The vm phases on one kernel: our vGPUs attached by QEMU 11 over vfio-user. */
async function runVmKernel(series: KernelSeries, options: Options, setup: Setup): Promise<Totals> {
  const kernel = await fetchKernel(series);
  let vm: Awaited<ReturnType<typeof runVm>>;
  try {
    vm = await runVm(kernel, setup.busybox, setup.project, setup.conformance, options);
  } catch (e) {
    const totals = printCases([{ name: 'harness: the vm phases run', status: 'fail', detail: e instanceof Error ? e.stack ?? e.message : String(e) }]);
    log(`vm ${series}: ${kernel.release}: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
    return totals;
  }
  const r = vm.result;
  const timing = r?.bootSeconds !== undefined
    ? `boot ${r.bootSeconds.toFixed(1)} s, boot to result ${r.totalSeconds.toFixed(1)} s` : `QEMU ran ${r?.totalSeconds.toFixed(1) ?? '?'} s`;
  const batch = vm.figures.get('simgpu-batch-ms');
  log(`vm ${series}: guest uname -r: ${vm.evaluation ? fact(vm.evaluation.serial, 'uname') ?? '(not printed)' : '?'}; ${timing}` +
    `${batch ? `; simgpu batch in the guest ${batch} ms` : ''}`);
  const totals = printCases(vm.cases);
  if (r && vm.evaluation) printDiagnostics(series, r, vm.evaluation, totals.failed > 0, vm.logPath);
  // Per phase, so the count of conformance cases that ran on the vGPU stands out.
  const perPhase = new Map<string, Totals>();
  for (const c of vm.cases) {
    const phase = c.name.split(':')[0] ?? '';
    const t = perPhase.get(phase) ?? { passed: 0, failed: 0, skipped: 0 };
    if (c.status === 'pass') t.passed++;
    else if (c.status === 'fail') t.failed++;
    else t.skipped++;
    perPhase.set(phase, t);
  }
  log(`vm ${series}: ${[...perPhase].map(([p, t]) => `${p} ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`).join('; ')}`);
  log(`vm ${series}: ${kernel.release}: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  return totals;
}

/** What every kernel shares. */
interface Setup {
  phases: GuestPhase[];
  /** Harness failures for suites that are not built. */
  missing: ReportCase[];
  conformance: string[];
  busybox: string;
  project: Layer;
}

/** Parity needs the conformance phase's outcomes (--phase may leave it out). */
function parityWanted(options: Options, setup: Setup): boolean {
  return options.parity && setup.conformance.length > 0 && setup.phases.some((p) => p.name === 'conformance');
}

async function prepare(only?: readonly string[]): Promise<Setup> {
  const planned = plan();
  const unknown = only?.filter((name) => !planned.phases.some((p) => p.name === name)) ?? [];
  if (unknown.length) throw new Error(`no phase ${unknown.join(', ')} (phases: ${planned.phases.map((p) => p.name).join(', ')})`);
  const phases = only ? planned.phases.filter((p) => only.includes(p.name)) : planned.phases;
  const { missing, conformance } = planned;
  if (!existsSync(addonPath)) log(`warning: ${addonPath} is missing (npm ci builds it); guest tests that need it will fail`);
  const start = performance.now();
  const busybox = await fetchBusybox();
  const project = await projectLayer(phases);
  log(`busybox and the project layer ready in ${seconds(start)}${project.built ? ' (project layer built)' : ' (cached)'}`);
  return { phases, missing, conformance, busybox, project };
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (process.argv.includes('--help')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const tools = checkHostTools(options.vm ? vmTools : []);
  if (tools.missing.length) {
    process.stderr.write(`test:kernel needs ${tools.missing.join(', ')}. Install them with:\n  ${tools.installCommand}\n`);
    return 2;
  }
  mkdirSync(cacheDir, { recursive: true });
  const start = performance.now();
  const setup = await prepare(options.phases);
  const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
  const add = (t: Totals): void => {
    totals.passed += t.passed;
    totals.failed += t.failed;
    totals.skipped += t.skipped;
  };
  if (options.edu) for (const series of options.kernels) add(await runKernel(series, options, setup));
  if (options.vm) for (const series of options.kernels) add(await runVmKernel(series, options, setup));
  log(`${options.kernels.join(' + ')} done in ${seconds(start)}`);
  process.stdout.write(`kernel: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
  return totals.failed === 0 ? 0 : 1;
}

// Exit through process.exit so that the 'exit' handlers kill QEMU and test runners.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

main().then((code) => {
  process.exitCode = code;
}, (e: unknown) => {
  process.stderr.write(`test:kernel failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.stdout.write('kernel: 0 passed, 1 failed\n');
  process.exitCode = 1;
});
