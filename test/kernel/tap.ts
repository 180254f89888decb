// Step 4a: node's TAP output (`--test-reporter=tap`) back into test cases. Node nests a
// subtest 4 spaces deeper and prints it before its parent's test point; a YAML block
// (2 spaces deeper than its test point) holds the error of a failure.

export type CaseStatus = 'pass' | 'fail' | 'skip' | 'todo';

export interface TapCase {
  /** The names from the top level down. */
  path: string[];
  status: CaseStatus;
  /** The SKIP/TODO reason, or the failure's error and location. */
  detail?: string;
}

export interface TapSummary {
  tests?: number;
  pass?: number;
  fail?: number;
  cancelled?: number;
  skipped?: number;
  todo?: number;
}

export interface TapResult {
  /** Leaf tests, plus any parent that failed on its own (a hook, say). */
  cases: TapCase[];
  summary: TapSummary;
  /** Top-level `# ...` lines that are neither subtest headers nor the summary. */
  comments: string[];
}

interface Point {
  name: string;
  ok: boolean;
  directive?: { kind: 'SKIP' | 'TODO'; reason: string };
  yaml: Record<string, string>;
  children: Point[];
}

/** Splits "name \# x # SKIP why" into the unescaped name and the directive. */
function splitDescription(text: string): Pick<Point, 'name' | 'directive'> {
  let name = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && i + 1 < text.length) {
      const next = text[++i] as string;
      name += next === 'n' ? '\n' : next;
    } else if (c === '#') {
      const m = /^#\s*(SKIP|TODO)\b\s*(.*)$/i.exec(text.slice(i));
      if (m) {
        const kind = (m[1] as string).toUpperCase() as 'SKIP' | 'TODO';
        return { name: name.trimEnd(), directive: { kind, reason: m[2] ?? '' } };
      }
      name += c;
    } else {
      name += c;
    }
  }
  return { name: name.trimEnd() };
}

/** Reads a YAML block's top-level keys; block scalars (|-) are joined lines. */
function parseYaml(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const base = lines.length ? (lines[0] as string).length - (lines[0] as string).trimStart().length : 0;
  let key: string | undefined;
  for (const line of lines) {
    const indent = line.length - line.trimStart().length;
    const m = indent === base ? /^\s*([A-Za-z_]+):\s?(.*)$/.exec(line) : null;
    if (m) {
      key = m[1] as string;
      const value = m[2] ?? '';
      out[key] = /^[|>][-+]?$/.test(value) ? '' : value.replace(/^'(.*)'$/, '$1');
    } else if (key !== undefined) {
      out[key] = out[key] ? `${out[key]}\n${line.trim()}` : line.trim();
    }
  }
  return out;
}

export function parseTap(text: string): TapResult {
  const lines = text.split('\n').map((l) => l.replace(/\r+$/, ''));
  const pending = new Map<number, Point[]>();
  const summary: TapSummary = {};
  const comments: string[] = [];
  let last: Point | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const indent = line.length - line.trimStart().length;
    const body = line.trim();
    const point = /^(not ok|ok)\s+\d+(?:\s+-)?\s?(.*)$/.exec(body);
    if (point && indent % 4 === 0) {
      const depth = indent / 4;
      const p: Point = { ...splitDescription(point[2] ?? ''), ok: point[1] === 'ok', yaml: {}, children: pending.get(depth + 1) ?? [] };
      pending.delete(depth + 1);
      const siblings = pending.get(depth) ?? [];
      siblings.push(p);
      pending.set(depth, siblings);
      last = p;
      continue;
    }
    if (body === '---' && last) {
      const block: string[] = [];
      while (++i < lines.length && (lines[i] as string).trim() !== '...') block.push(lines[i] as string);
      last.yaml = parseYaml(block);
      continue;
    }
    if (indent === 0 && body.startsWith('#')) {
      const s = /^#\s+(tests|pass|fail|cancelled|skipped|todo)\s+(\d+)$/.exec(body);
      if (s) summary[s[1] as keyof TapSummary] = Number(s[2]);
      else if (!/^#\s+(Subtest:|suites\s|duration_ms\s)/.test(body)) comments.push(body.replace(/^#\s?/, ''));
    }
  }
  const cases: TapCase[] = [];
  const visit = (p: Point, parents: string[]): boolean => {
    const path = [...parents, p.name];
    let childFailed = false;
    for (const c of p.children) childFailed = visit(c, path) || childFailed;
    const failed = !p.ok && p.directive?.kind !== 'TODO';
    if (p.children.length === 0 || (failed && !childFailed)) {
      cases.push(toCase(p, path));
    }
    return failed;
  };
  for (const p of pending.get(0) ?? []) visit(p, []);
  return { cases, summary, comments };
}

function toCase(p: Point, path: string[]): TapCase {
  if (p.directive?.kind === 'SKIP') return { path, status: 'skip', detail: p.directive.reason };
  if (p.directive?.kind === 'TODO') return { path, status: 'todo', detail: p.directive.reason };
  if (p.ok) return { path, status: 'pass' };
  const detail = [p.yaml.error, p.yaml.location && `at ${p.yaml.location}`].filter(Boolean).join('\n');
  return detail ? { path, status: 'fail', detail } : { path, status: 'fail' };
}
