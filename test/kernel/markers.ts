// The guest's /init and the host's parser agree on these lines on the serial console:
//   @@VGPU@@ <word> [text]      a single fact (init, uname, device, setup-error, done)
//   @@VGPU@@ begin <section>    ... lines ...   @@VGPU@@ end <section> [rc=N]
// Section names: tap:<phase>, stderr:<phase>, outcomes, dmesg. Kernel log lines are kept
// off the console while the tests run (dmesg -n 1), so sections hold only what the
// guest printed; a serial console ends lines with CR LF, which the parser drops.

export const marker = '@@VGPU@@';

/** What the kernel log gets at each phase boundary (written to /dev/kmsg). */
export const kmsgPhaseBegin = 'VGPU-MARK phase-begin';
export const kmsgPhaseEnd = 'VGPU-MARK phase-end';

export interface Section {
  lines: string[];
  /** False when the guest died before the end marker. */
  complete: boolean;
  /** The rc=N on the end marker, when there was one. */
  rc?: number;
}

export interface SerialLog {
  /** Single facts in order: [word, text]. */
  facts: Array<[string, string]>;
  sections: Map<string, Section>;
  done: boolean;
}

export function fact(log: SerialLog, word: string): string | undefined {
  return log.facts.find(([w]) => w === word)?.[1];
}

/** Splits the serial console text into the guest's facts and sections. */
export function parseSerial(text: string): SerialLog {
  const log: SerialLog = { facts: [], sections: new Map(), done: false };
  let open: Section | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r+$/, '');
    const at = line.indexOf(marker);
    if (at < 0) {
      open?.lines.push(line);
      continue;
    }
    // A marker may follow leftover text on the same line (output without a final newline).
    if (at > 0) open?.lines.push(line.slice(0, at));
    const [word = '', ...rest] = line.slice(at + marker.length).trim().split(/\s+/);
    const text = rest.join(' ');
    if (word === 'begin') {
      open = { lines: [], complete: false };
      log.sections.set(rest[0] ?? '', open);
    } else if (word === 'end') {
      const section = log.sections.get(rest[0] ?? '');
      if (section) {
        section.complete = true;
        const rc = /(?:^|\s)rc=(\d+)/.exec(text);
        if (rc) section.rc = Number(rc[1]);
      }
      open = undefined;
    } else {
      if (word === 'done') log.done = true;
      log.facts.push([word, text]);
    }
  }
  return log;
}
