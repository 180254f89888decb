// Inside a vm guest: asks the host for something (a screenshot) with an `ask` marker on
// the serial console, and waits for the host's one-line answer on the console's input
// ("answer <what> ok|fail <detail>"). The harness's timeout bounds the wait.
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { marker } from '../markers.js';

const consoleTty = '/dev/ttyS0';

export interface HostAnswer {
  ok: boolean;
  detail: string;
}

export function askHost(what: string, text = ''): HostAnswer {
  writeFileSync(consoleTty, `\n${marker} ask ${what} ${text}\n`);
  const fd = openSync(consoleTty, 'r');
  try {
    const buf = Buffer.alloc(4096);
    let pending = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      pending += buf.subarray(0, n).toString('utf8');
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^answer (\S+) (ok|fail)\s*(.*)$/.exec(line.trim());
        if (m && m[1] === what) return { ok: m[2] === 'ok', detail: m[3] ?? '' };
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** A figure for the host's report (a timing), on the console as a `figure` fact. */
export function reportFigure(name: string, value: string): void {
  writeFileSync(consoleTty, `\n${marker} figure ${name} ${value}\n`);
}
