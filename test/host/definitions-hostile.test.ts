// What a hostile local user can put in the definitions folder: a FIFO, a device, links
// to /dev/zero or to a secret, huge and sparse files. Each is skipped at once with a
// reason naming it, nothing blocks, nothing is read whole, no content is echoed.
// Loading runs in a child process with a timeout and a small heap, so a regression
// (a blocking open, a read of /dev/zero) fails the test instead of hanging it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefinitionStore } from '../../src/host/definitions.js';
import { MAX_DEFINITION_BYTES } from '../../src/host/definition-file.js';

const GOOD = '11111111-2222-4333-8444-555555555555';
const uuid = (n: number): string => `${String(n).padStart(8, '0')}-2222-4333-8444-555555555555`;
const storeModule = new URL('../../src/host/definitions.js', import.meta.url).href;

interface Loaded { definitions: { uuid: string }[]; errors: { path: string; message: string }[]; ms: number }

/** store.load() in a child with a 64 MB heap and a 10 s limit. */
function loadInChild(root: string): Loaded {
  const script = `const { DefinitionStore } = await import(${JSON.stringify(storeModule)});
    const t = Date.now(); const r = new DefinitionStore(${JSON.stringify(root)}).load();
    process.stdout.write(JSON.stringify({ ...r, ms: Date.now() - t }));`;
  const child = spawnSync(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script], { timeout: 10_000, encoding: 'utf8' });
  assert.equal(child.error, undefined, `load did not finish: ${String(child.error)}`);
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as Loaded;
}

function withRoot(fn: (root: string, dir: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'vgpu-hostile-'));
  try {
    new DefinitionStore(root).save({ uuid: GOOD, parent: 'simgpu0', type: 'simgpu-4Q', start: 'manual', attrs: [] });
    fn(root, join(root, 'simgpu0'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a FIFO among the definitions is skipped at once, named with its reason; the others load', () => {
  withRoot((root, dir) => {
    execFileSync('mkfifo', [join(dir, uuid(2))]);
    const loaded = loadInChild(root);
    assert.deepEqual(loaded.definitions.map((d) => d.uuid), [GOOD]);
    assert.deepEqual(loaded.errors, [{ path: join(dir, uuid(2)), message: `${join(dir, uuid(2))}: skipped: a FIFO, not a regular file` }]);
    assert.ok(loaded.ms < 2000, `took ${loaded.ms} ms`);
    // get() and find() of the FIFO's UUID refuse it too, without blocking.
    assert.throws(() => new DefinitionStore(root).get('simgpu0', uuid(2)), { code: 'EINVAL', message: /skipped: a FIFO/ });
  });
});

test('links are never followed: to /dev/zero, to a huge file, to a secret', () => {
  withRoot((root, dir) => {
    const secret = join(root, 'shadow');
    writeFileSync(secret, 'root:*:20200:0:99999:7:::\n');
    symlinkSync('/dev/zero', join(dir, uuid(2)));
    symlinkSync(secret, join(dir, uuid(3)));
    symlinkSync(join(root, 'simgpu0', GOOD), join(dir, uuid(4)));
    const loaded = loadInChild(root);
    assert.deepEqual(loaded.definitions.map((d) => d.uuid), [GOOD]);
    assert.deepEqual(loaded.errors.map((e) => e.path), [2, 3, 4].map((n) => join(dir, uuid(n))));
    for (const e of loaded.errors) {
      assert.match(e.message, /skipped: a symbolic link \(definitions are never followed through links\)$/);
      assert.doesNotMatch(e.message, /root:/);
    }
  });
});

test('a huge or sparse regular file is skipped by its size, never read; the cap is 64 KiB', () => {
  assert.equal(MAX_DEFINITION_BYTES, 65536);
  withRoot((root, dir) => {
    writeFileSync(join(dir, uuid(2)), '');
    truncateSync(join(dir, uuid(2)), 3 * 1024 ** 3); // 3 GB, sparse
    const body = '{"mdev_type": "simgpu-4Q", "start": "manual"}';
    writeFileSync(join(dir, uuid(3)), body.padEnd(MAX_DEFINITION_BYTES, ' ')); // at the cap: read
    writeFileSync(join(dir, uuid(4)), body.padEnd(MAX_DEFINITION_BYTES + 1, ' ')); // one over: skipped
    const loaded = loadInChild(root);
    assert.deepEqual(loaded.definitions.map((d) => d.uuid), [uuid(3), GOOD]);
    assert.deepEqual(loaded.errors, [
      { path: join(dir, uuid(2)), message: `${join(dir, uuid(2))}: skipped: ${3 * 1024 ** 3} bytes, over the 65536-byte limit of a definition` },
      { path: join(dir, uuid(4)), message: `${join(dir, uuid(4))}: skipped: 65537 bytes, over the 65536-byte limit of a definition` },
    ]);
    assert.ok(loaded.ms < 2000, `took ${loaded.ms} ms`);
  });
});

test('a file that is not JSON is reported by position, never by its content', () => {
  withRoot((root, dir) => {
    writeFileSync(join(dir, uuid(2)), 'root:*:20200:0:99999:7:::\n');
    writeFileSync(join(dir, uuid(3)), '{"mdev_type": "x" "secret-token"}');
    const { errors } = new DefinitionStore(root).load();
    assert.deepEqual(errors.map((e) => e.message), [
      `${join(dir, uuid(2))}: not valid JSON (unexpected character)`,
      `${join(dir, uuid(3))}: not valid JSON (at position 18)`,
    ]);
  });
});

test('save refuses a definition over the cap instead of writing a file readers would skip', () => {
  withRoot((root) => {
    const store = new DefinitionStore(root);
    assert.throws(() => store.save({ uuid: uuid(2), parent: 'simgpu0', type: 'simgpu-4Q', start: 'manual', attrs: [{ name: 'a', value: 'x'.repeat(MAX_DEFINITION_BYTES) }] }),
      { code: 'EINVAL', message: /over the 65536-byte limit of a definition file$/ });
    mkdirSync(join(root, 'simgpu0'), { recursive: true });
    assert.deepEqual(store.load().definitions.map((d) => d.uuid), [GOOD]);
  });
});
