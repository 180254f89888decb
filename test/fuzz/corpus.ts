// The saved inputs: test/fuzz/corpus/<target>-<seed>-<index>.json, each a finding of
// some run ({ target, seed, index, kind, message, input }), kept after its fix and
// replayed by corpus.test.ts so the bug stays fixed.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Finding } from './engine.js';

/** The corpus in the source tree (dist/test/fuzz → test/fuzz/corpus). */
export const CORPUS_DIR = fileURLToPath(new URL('../../../test/fuzz/corpus', import.meta.url));

export function saveFinding(finding: Finding, dir = CORPUS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${finding.target}-${finding.seed}-${finding.index}.json`);
  writeFileSync(path, `${JSON.stringify(finding, null, 2)}\n`);
  return path;
}

export function loadCorpus(dir = CORPUS_DIR): { file: string; finding: Finding }[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((file) => ({ file, finding: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Finding }));
}
