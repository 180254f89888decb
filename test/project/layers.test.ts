// The layer rule, checked on the sources: each folder of src/ imports only the layers
// listed before it in README.md's layer table (and itself), and the vGPU core and
// vendors reach the mock kernel only where they really talk to it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const src = join(root, 'src');

/** Layer folders (src/<name>) in README's table order, bottom first. */
function layerOrder(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('| layer | folder | holds |');
  const rows = readme.slice(start).split('\n').slice(2);
  const order: string[] = [];
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    const folder = /`src\/([a-z-]+)\/`/.exec(row);
    if (folder) order.push(folder[1]!);
  }
  return order;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative import of a file, as a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((spec) => relative(src, resolve(dirname(file), spec)));
}

const layerOf = (pathUnderSrc: string): string => pathUnderSrc.split('/')[0]!;

test('README lists every folder of src/ as a layer', () => {
  const order = layerOrder();
  const folders = readdirSync(src).filter((name) => statSync(join(src, name)).isDirectory());
  assert.deepEqual([...folders].sort(), [...order].sort());
});

test('each layer imports only itself and the layers below it', () => {
  const order = layerOrder();
  const violations: string[] = [];
  for (const file of sourceFiles(src)) {
    const from = layerOf(relative(src, file));
    if (!order.includes(from)) continue; // src/index.ts, the package's front door, may import any layer
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      if (!order.includes(to)) continue; // src/index.ts and the like
      if (order.indexOf(to) > order.indexOf(from)) violations.push(`${relative(root, file)} imports src/${target}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the vGPU core and vendors import the mock kernel only in the mdev bus and the simulated edu parent', () => {
  const allowed = ['vgpu/mdev/', 'vendors/edu/'];
  const violations: string[] = [];
  for (const dir of ['vgpu', 'vendors']) {
    for (const file of sourceFiles(join(src, dir))) {
      const at = relative(src, file);
      if (allowed.some((prefix) => at.startsWith(prefix))) continue;
      for (const target of importsOf(file)) if (target.startsWith('sys/mock')) violations.push(`${at} imports src/${target}`);
    }
  }
  assert.deepEqual(violations, []);
});
