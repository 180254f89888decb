// Progress lines of the harness, each prefixed so they stand apart from guest output.
export function log(message: string): void {
  process.stdout.write(`[kernel] ${message}\n`);
}

/** Seconds since `start` (a performance.now() value), one decimal. */
export function seconds(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}
