// Step 4b: what one boot says. Every guest test becomes a case named "<phase>: <test>",
// and the harness's own checks (QEMU, markers, binding, uname, TAP completeness, IOMMU
// faults) become cases of the "harness" phase, so one list tells the whole story.
import type { BootResult } from './boot.js';
import { checkFaults, type FaultCheck } from './faults.js';
import type { GuestPhase } from './guest-init.js';
import { fact, parseSerial, type SerialLog } from './markers.js';
import { parseOutcomes, type OutcomeFile } from './outcomes.js';
import { parseTap, type CaseStatus } from './tap.js';

export interface ReportCase {
  name: string;
  status: CaseStatus;
  detail?: string;
}

export interface Evaluation {
  cases: ReportCase[];
  serial: SerialLog;
  faults?: FaultCheck;
  outcomes?: OutcomeFile;
  /** Non-empty stderr of each phase's test runner. */
  stderr: Map<string, string[]>;
}

export interface Expectations {
  release: string;
  phases: readonly GuestPhase[];
  /** Faults each phase may provoke on the test device. */
  allowedFaults: Readonly<Record<string, number>>;
  /** The device as the IOMMU names it, e.g. 00:04.0. */
  faultDevice: string;
  /** What the guest binds to vfio-pci, as the check names it; default "edu". */
  deviceLabel?: string;
  /** The mdev parents the guest must list after loading the kernel's samples (none: not checked). */
  mdevParents?: readonly string[];
}

/** One of the harness's own checks; the detail explains a failure. */
function check(name: string, ok: boolean, detail?: string): ReportCase {
  const c: ReportCase = { name: `harness: ${name}`, status: ok ? 'pass' : 'fail' };
  if (!ok && detail) c.detail = detail;
  return c;
}

export function evaluateBoot(boot: BootResult, want: Expectations): Evaluation {
  const serial = parseSerial(boot.serial);
  const cases: ReportCase[] = [];
  const stderr = new Map<string, string[]>();

  if (boot.spawnError !== undefined) cases.push(check('QEMU starts', false, boot.spawnError));
  cases.push(check('the guest finishes before the timeout', !boot.timedOut, 'killed at the timeout'));
  const killedAfterDone = serial.done && boot.signal === 'SIGKILL' && !boot.timedOut;
  const qemuOk = boot.exitCode === 0 || killedAfterDone;
  const qemuDetail = `exit ${boot.exitCode ?? boot.signal}${boot.qemuStderr.trim() ? `\n${boot.qemuStderr.trim()}` : ''}`;
  if (!boot.timedOut) cases.push(check('QEMU exits cleanly', qemuOk, qemuDetail));
  cases.push(check('the guest runs /init to its end', serial.done, 'no "done" marker: the guest died or hung'));
  const uname = fact(serial, 'uname');
  cases.push(check(`uname -r is ${want.release}`, uname === want.release, `uname -r: ${uname ?? '(not printed)'}`));
  const setupError = fact(serial, 'setup-error');
  const device = fact(serial, 'device');
  cases.push(check(`the guest loads VFIO and binds ${want.deviceLabel ?? 'edu'} to vfio-pci`,
    setupError === undefined && device !== undefined && /driver vfio-pci$/.test(device),
    setupError ?? device ?? 'the guest did not get that far'));

  if (want.mdevParents?.length) {
    const listed = fact(serial, 'mdev')?.split(/\s+/) ?? [];
    const missing = want.mdevParents.filter((p) => !listed.includes(p));
    cases.push(check(`the guest loads the kernel's mdev samples (${want.mdevParents.join(', ')})`, missing.length === 0,
      fact(serial, 'mdev-error') ?? `/sys/class/mdev_bus lists ${listed.join(' ') || 'nothing'}`));
  }

  for (const phase of want.phases) {
    const section = serial.sections.get(`tap:${phase.name}`);
    const err = serial.sections.get(`stderr:${phase.name}`)?.lines.filter((l) => l.trim()) ?? [];
    if (err.length) stderr.set(phase.name, err);
    if (!section) {
      cases.push({ name: `${phase.name}: (did not run)`, status: 'fail', detail: 'the guest never reached this phase' });
      continue;
    }
    const tap = parseTap(section.lines.join('\n'));
    for (const c of tap.cases) {
      const rc: ReportCase = { name: `${phase.name}: ${c.path.join(' > ')}`, status: c.status };
      if (c.detail) rc.detail = c.detail;
      cases.push(rc);
    }
    const failed = tap.cases.filter((c) => c.status === 'fail').length;
    const where = `${phase.name}'s test run`;
    cases.push(check(`${where} is complete`, section.complete && tap.summary.tests !== undefined,
      section.complete ? 'no summary (# tests) in its TAP' : 'cut off: the guest died while it ran'));
    cases.push(check(`${where} ran tests`, tap.cases.length > 0, `no test in its TAP${err.length ? `\n${err.slice(-20).join('\n')}` : ''}`));
    if (section.complete && section.rc !== 0 && failed === 0) {
      cases.push(check(`${where} exits 0`, false, `node --test exited ${section.rc ?? '?'}${err.length ? `\n${err.slice(-20).join('\n')}` : ''}`));
    }
    if ((tap.summary.fail ?? 0) > failed) {
      cases.push(check(`${where} reports no failure it did not list`, false, `summary says ${tap.summary.fail} failed, ${failed} listed`));
    }
  }

  const evaluation: Evaluation = { cases, serial, stderr };
  const dmesg = serial.sections.get('dmesg');
  if (dmesg?.complete) {
    evaluation.faults = checkFaults(dmesg.lines, want.allowedFaults, want.faultDevice);
    cases.push(check('no unexpected IOMMU faults', evaluation.faults.problems.length === 0, evaluation.faults.problems.join('\n')));
  } else {
    cases.push(check('the guest prints its kernel log', false, 'no complete dmesg section'));
  }
  const outcomes = serial.sections.get('outcomes');
  if (outcomes) {
    evaluation.outcomes = parseOutcomes(outcomes.lines.join('\n'));
    const bad = evaluation.outcomes.invalid;
    cases.push(check('every outcome record is valid', outcomes.complete && bad.length === 0,
      outcomes.complete ? bad.slice(0, 10).join('\n') : 'cut off'));
  }
  return evaluation;
}
