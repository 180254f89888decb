// How the CLI writes: lines to stdout/stderr, aligned tables, and colour only on a
// terminal (stdout is a TTY and NO_COLOR is unset, as no-color.org asks).

export interface Output {
  /** A line on stdout. */
  out(line?: string): void;
  /** A line on stderr. */
  err(line?: string): void;
  /** Raw bytes on stdout (`vgpu screenshot ID -`); process.stdout when absent. */
  bytes?(data: Uint8Array): void;
  /** Whether stdout takes ANSI colour. */
  color: boolean;
}

export function processOutput(): Output {
  const noColor = process.env['NO_COLOR'];
  return {
    out: (line = '') => { process.stdout.write(`${line}\n`); },
    err: (line = '') => { process.stderr.write(`${line}\n`); },
    bytes: (data) => { process.stdout.write(data); },
    color: process.stdout.isTTY === true && (noColor === undefined || noColor === ''),
  };
}

const codes = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 } as const;
export type Style = keyof typeof codes;

export function paint(output: Output, style: Style, text: string): string {
  return output.color ? `\x1b[${codes[style]}m${text}\x1b[0m` : text;
}

/** A cell: plain text, or text with a style applied only when colour is on. */
export type Cell = string | { text: string; style: Style };

/**
 * Rows of cells as aligned columns (two spaces between them, the last column unpadded),
 * so widths are measured on the plain text and colour never shifts a column.
 */
export function table(output: Output, rows: Cell[][], header?: string[]): string[] {
  const all: Cell[][] = header ? [header.map((text) => ({ text, style: 'bold' as const })), ...rows] : rows;
  const text = (c: Cell): string => (typeof c === 'string' ? c : c.text);
  const widths: number[] = [];
  for (const row of all) row.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, text(c).length); });
  return all.map((row) => row.map((c, i) => {
    const pad = i === row.length - 1 ? '' : ' '.repeat((widths[i] ?? 0) - text(c).length);
    return (typeof c === 'string' ? c : paint(output, c.style, c.text)) + pad;
  }).join('  '));
}

/** One line of cells joined by single spaces, as mdevctl prints its lists (scripts cut on a space). */
export function spaced(output: Output, cells: Cell[]): string {
  return cells.map((c) => (typeof c === 'string' ? c : paint(output, c.style, c.text))).join(' ');
}
