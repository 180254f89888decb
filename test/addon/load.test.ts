// Where the addon is loaded from: the package's build/Release, else build/Debug, and
// nowhere else (bindings is told both, so it searches no other folder). Each case is a
// copy of the compiled addon.js in a package tree of its own, loaded in a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const packageRoot = join(here, '../../..');
const compiledAddonJs = join(packageRoot, 'dist/src/addon/addon.js');
const builtAddon = join(packageRoot, 'build/Release/vfio_vgpu.node');

/** A package tree with the compiled addon.js and the addon in each of `builds` (Release, Debug). */
function packageTree(builds: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'vgpu-addon-load-'));
  mkdirSync(join(root, 'dist/src/addon'), { recursive: true });
  copyFileSync(compiledAddonJs, join(root, 'dist/src/addon/addon.js'));
  copyFileSync(join(packageRoot, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(packageRoot, 'node_modules'), join(root, 'node_modules'));
  for (const build of builds) {
    mkdirSync(join(root, 'build', build), { recursive: true });
    copyFileSync(builtAddon, join(root, 'build', build, 'vfio_vgpu.node'));
  }
  return root;
}

/** Loads the tree's addon in a child: the path it came from, or the error's message. */
function load(root: string): { path?: string; error?: string } {
  const url = pathToFileURL(join(root, 'dist/src/addon/addon.js')).href;
  const script = `import(${JSON.stringify(url)}).then(({ addon }) => {
    const a = addon();
    if (!(a.pageSize > 0)) throw new Error('no pageSize');
    console.log(JSON.stringify({ path: a.path }));
  }, (err) => { throw err; }).catch((err) => console.log(JSON.stringify({ error: err.message })));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: tmpdir(), encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as { path?: string; error?: string };
}

describe('addon loading', () => {
  const trees: string[] = [];
  after(() => { for (const tree of trees) rmSync(tree, { recursive: true, force: true }); });

  it('build/Release first', () => {
    const root = packageTree(['Release', 'Debug']);
    trees.push(root);
    assert.deepEqual(load(root), { path: join(root, 'build/Release/vfio_vgpu.node') });
  });

  it('build/Debug when there is no Release build', () => {
    const root = packageTree(['Debug']);
    trees.push(root);
    assert.deepEqual(load(root), { path: join(root, 'build/Debug/vfio_vgpu.node') });
  });

  it('no build: an error naming the two places looked in, and only those', () => {
    const root = packageTree([]);
    trees.push(root);
    const { error } = load(root);
    const tried = (error ?? '').split('\n');
    assert.equal(tried[0], 'Could not locate the bindings file. Tried:');
    assert.deepEqual(tried.slice(1).map((line) => line.replace(/^ → /, '')),
      [join(root, 'build/Release/vfio_vgpu.node'), join(root, 'build/Debug/vfio_vgpu.node')]);
  });
});
