// IOMMU faults in the guest's kernel log, each attributed to the test phase it happened
// in (the guest writes a mark into the log at each phase boundary). A phase may be
// allowed a number of faults from the test device: the e2e test makes edu DMA to an
// unmapped IOVA on purpose, and the IOMMU must block it. Any other fault fails the run.
import { kmsgPhaseBegin, kmsgPhaseEnd } from './markers.js';

export interface FaultCheck {
  /** Every DMAR/IOMMU fault line, for the report. */
  lines: string[];
  /** Fault records per phase; faults outside any phase count under "(no phase)". */
  perPhase: Map<string, string[]>;
  /** Why the faults are not acceptable; empty when they are. */
  problems: string[];
}

export const outsidePhases = '(no phase)';

/** A line that reports an IOMMU fault in any form (status lines included). */
function isFaultLine(line: string): boolean {
  return /DMAR|DRHD|IOMMU|iommu/.test(line) && /\bfault/i.test(line);
}

/** A line for one fault record (not the "handling fault status reg" summary line). */
function isFaultRecord(line: string): boolean {
  return isFaultLine(line) && !/handling fault status/i.test(line);
}

/**
 * Checks faults against `allowed` (phase -> how many records from `device`, written
 * like "00:04.0", that phase may provoke).
 */
export function checkFaults(dmesg: readonly string[], allowed: Readonly<Record<string, number>>, device: string): FaultCheck {
  const lines: string[] = [];
  const perPhase = new Map<string, string[]>();
  let phase = outsidePhases;
  for (const line of dmesg) {
    const begin = line.indexOf(kmsgPhaseBegin);
    if (begin >= 0) {
      phase = line.slice(begin + kmsgPhaseBegin.length).trim();
      continue;
    }
    if (line.includes(kmsgPhaseEnd)) {
      phase = outsidePhases;
      continue;
    }
    if (!isFaultLine(line)) continue;
    lines.push(line);
    if (isFaultRecord(line)) perPhase.set(phase, [...(perPhase.get(phase) ?? []), line]);
  }
  const problems: string[] = [];
  for (const [p, records] of perPhase) {
    const limit = allowed[p] ?? 0;
    const foreign = records.filter((r) => !r.includes(device));
    if (foreign.length > 0) problems.push(`${foreign.length} fault(s) from another device in ${p}`);
    if (records.length > limit) {
      problems.push(`${records.length} fault(s) in ${p}, ${limit} expected at most`);
    }
  }
  return { lines, perPhase, problems };
}
