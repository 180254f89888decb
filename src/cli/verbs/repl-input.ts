// Input for `vgpu repl` that is not a terminal (a pipe, a file): node's REPL reads every
// line it already has even while an earlier line's `await` is pending, so piped lines
// ran out of order. Here the REPL gets one line at a time, the next only once it prompts
// again (that line, awaited or not, is done). At the end of the input the REPL's input
// ends after the last line has finished.
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';

export interface LineFeeder {
  /** What the REPL reads. */
  readonly input: PassThrough;
  /** The REPL prompts: it wants its next line. */
  ready(): void;
  /** The REPL is gone: stop reading the source. */
  close(): void;
}

export function feedLinesInOrder(source: NodeJS.ReadableStream): LineFeeder {
  const input = new PassThrough();
  const queue: string[] = [];
  let ended = false;
  let wanted = false;
  const feed = (): void => {
    if (!wanted) return;
    const line = queue.shift();
    if (line !== undefined) {
      wanted = false;
      input.write(`${line}\n`);
    } else if (ended) {
      wanted = false;
      input.end();
    }
  };
  const lines = createInterface({ input: source, crlfDelay: Infinity });
  lines.on('line', (line) => { queue.push(line); feed(); });
  lines.on('close', () => { ended = true; feed(); });
  return {
    input,
    ready() {
      wanted = true;
      feed();
    },
    close() {
      lines.close();
      source.pause();
    },
  };
}
