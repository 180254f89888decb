// Module hooks (node:module register) that append every ES module a process loads, one
// URL a line, to the file named in `initialize`'s data: what verb-loads.test.ts reads.
import { appendFileSync } from 'node:fs';

let record = '';

export function initialize(data: { record: string }): void {
  record = data.record;
}

interface LoadContext { format?: string | null }
interface LoadResult { format: string; source?: unknown; shortCircuit?: boolean }
type NextLoad = (url: string, context: LoadContext) => Promise<LoadResult>;

export async function load(url: string, context: LoadContext, nextLoad: NextLoad): Promise<LoadResult> {
  appendFileSync(record, `${url}\n`);
  return nextLoad(url, context);
}
