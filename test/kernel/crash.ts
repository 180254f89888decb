// A guest whose kernel died before /init (an oops under TCG, seen once on a loaded
// machine) has run no test: it is not a test failure and yields no outcomes. It is told
// apart by its console carrying none of /init's markers; its crash is shown, and that boot
// is retried once; a second such boot fails the run.
import type { BootResult } from './boot.js';
import type { ReportCase } from './evaluate.js';
import { parseSerial } from './markers.js';

/** A boot that never reached /init, and the lines of its console that show why. */
export interface BootCrash {
  excerpt: string[];
}

const crashStart = /Oops|BUG:|Kernel panic|general protection fault|invalid opcode|Call Trace:|RIP:/;
const excerptLines = 40;

/** The crash when the guest never reached /init; undefined when it did (or QEMU never started). */
export function crashBeforeInit(boot: BootResult): BootCrash | undefined {
  if (boot.spawnError !== undefined) return undefined;
  const serial = parseSerial(boot.serial);
  if (serial.facts.length > 0 || serial.sections.size > 0) return undefined;
  const lines = boot.serial.replace(/\r/g, '').split('\n');
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop();
  const first = lines.findIndex((l) => crashStart.test(l));
  const excerpt = first >= 0 ? lines.slice(Math.max(0, first - 2), first + excerptLines) : lines.slice(-excerptLines);
  if (boot.timedOut) excerpt.push('(killed at the timeout)');
  return { excerpt: excerpt.length ? excerpt : ['(the console is empty)'] };
}

export interface BootAttempts {
  /** The boot to judge: the retry when the first one crashed. */
  result: BootResult;
  /** The first boot's crash, when it was retried. */
  retriedAfter?: BootCrash;
  /** Set when the boot judged never reached /init either: there is nothing to evaluate. */
  crash?: BootCrash;
}

/** Boots; a boot that never reached /init is shown and retried once, saying so. */
export async function bootWithRetry(run: () => Promise<BootResult>, say: (line: string) => void): Promise<BootAttempts> {
  const first = await run();
  const firstCrash = crashBeforeInit(first);
  if (!firstCrash) return { result: first };
  say('the guest never reached /init (its kernel crashed); retrying this boot once. Its console:');
  for (const l of firstCrash.excerpt) say(`  | ${l}`);
  const second = await run();
  const crash = crashBeforeInit(second);
  if (crash) {
    say('the retried boot never reached /init either: failing');
    return { result: second, retriedAfter: firstCrash, crash };
  }
  say('the retried boot reached /init; its results stand');
  return { result: second, retriedAfter: firstCrash };
}

const reachCase = 'harness: the guest reaches /init';

/**
 * The harness case for the boot itself: passes (saying so when a retry was needed), or for
 * a guest that never ran fails once with its crash, in place of the test failures it would
 * otherwise be reported as.
 */
export function bootCase(attempts: BootAttempts): ReportCase {
  if (attempts.crash) {
    return { name: reachCase, status: 'fail', detail: ['the kernel crashed before /init on the boot and on its retry; the last crash:', ...attempts.crash.excerpt].join('\n') };
  }
  if (attempts.retriedAfter) {
    const what = attempts.retriedAfter.excerpt.find((l) => crashStart.test(l))?.trim() ?? 'no marker on the console';
    return { name: reachCase, status: 'pass', detail: `on the retry: the first boot crashed before /init (${what})` };
  }
  return { name: reachCase, status: 'pass' };
}

/** The parity case of a guest that never ran: not computed, and so not a difference. */
export function parityNotComputed(): ReportCase {
  return { name: 'harness: the mock kernel matches the real one', status: 'skip', detail: 'not computed: the guest never reached /init, so no real outcome exists to compare' };
}
