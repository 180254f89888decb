// DefinitionStore: mdevctl's layout and bytes, validation of every name, corrupt files
// reported by path while the others load, temporary files never taken for definitions,
// modes, and the parent directory's life.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Definition } from '../../src/host/api.js';
import { DEFAULT_DEFINITIONS_ROOT, DefinitionStore, definitionsRoot } from '../../src/host/definitions.js';
import { TEMP_PREFIX, writeFileAtomic } from '../../src/host/atomic-write.js';
import { validateAttrName, validateParentName, validateTypeId, validateUuid } from '../../src/host/names.js';

const U1 = '11111111-2222-4333-8444-555555555555';
const U2 = '22222222-2222-4333-8444-555555555555';

function withRoot(fn: (root: string, store: DefinitionStore) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'vgpu-defs-'));
  try {
    fn(root, new DefinitionStore(root));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const def = (over: Partial<Definition> = {}): Definition =>
  ({ uuid: U1, parent: 'simgpu0', type: 'simgpu-4Q', start: 'manual', attrs: [], ...over });

function assertEinval(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'EINVAL');
    assert.equal(err.errno, 22);
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

test('names: UUIDs in either case come back lower case; anything else is EINVAL naming the value', () => {
  assert.equal(validateUuid('AAAAAAAA-bbbb-4CCC-8ddd-EEEEEEEEEEEE'), 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee');
  for (const bad of ['', 'xyz', `${U1}0`, U1.slice(1), U1.replace(/-/g, ''), `{${U1.slice(2)}}`, U1.replace('1', 'g'), `../${U1.slice(3)}`]) {
    assertEinval(() => validateUuid(bad), bad === '' ? /a UUID must not be empty/ : new RegExp(`^invalid UUID ${JSON.stringify(bad).replace(/[{}.]/g, '\\$&')}`));
  }
  assertEinval(() => validateUuid(42), /a UUID must be a string, not number/);
});

test('names: parents are PCI addresses or simple names, one path component, at most 64 characters', () => {
  for (const good of ['0000:00:02.0', 'simgpu0', 'mtty', '0.0.0008', 'matrix', 'a_b-c', 'x'.repeat(64)]) assert.equal(validateParentName(good), good);
  for (const bad of ['.', '..', '../x', 'a/b', '/abs', 'a b', 'a\0b', 'é', 'x'.repeat(65), 'scripts.d', '']) {
    assertEinval(() => validateParentName(bad), /parent name/);
  }
  assertEinval(() => validateParentName('../etc'), /^invalid parent name "..\/etc": use letters/);
  assertEinval(() => validateParentName('scripts.d'), /reserved for mdevctl's callout scripts/);
  assertEinval(() => validateParentName('x'.repeat(65)), /longer than 64 characters/);
  // A dot parent would be written, then invisible to list and impossible to undefine.
  for (const dot of ['.hidden', '.git', '..x', '.0000:00:02.0']) assertEinval(() => validateParentName(dot), /must not start with "\."/);
});

test('names: type ids and attribute names', () => {
  for (const good of ['nvidia-63', 'simgpu-4Q', 'i915-GVTg_V5_4', 'mtty-2', 'vfio_ap-passthrough']) assert.equal(validateTypeId(good), good);
  for (const bad of ['.', '..', 'a/b', 'a b', 'nvidia:63', '', 'x'.repeat(65)]) assertEinval(() => validateTypeId(bad), /type/);
  for (const good of ['ecc', 'vgpu_params', 'weird name:1', '.hidden']) assert.equal(validateAttrName(good), good);
  for (const bad of ['.', '..', 'a/b', '../remove', 'a\0b', '']) assertEinval(() => validateAttrName(bad), /attribute name/);
});

test('the root: the flag, else VGPU_DEFINITIONS_ROOT, else /etc/vfio-vgpu.d', () => {
  assert.equal(DEFAULT_DEFINITIONS_ROOT, '/etc/vfio-vgpu.d');
  assert.equal(definitionsRoot(undefined, {}), '/etc/vfio-vgpu.d');
  assert.equal(definitionsRoot(undefined, { VGPU_DEFINITIONS_ROOT: '/etc/mdevctl.d' }), '/etc/mdevctl.d');
  assert.equal(definitionsRoot('/srv/defs', { VGPU_DEFINITIONS_ROOT: '/etc/mdevctl.d' }), '/srv/defs');
});

test('save writes <root>/<parent>/<uuid> in mdevctl\'s bytes, files 0644 and directories 0755 whatever the umask', () => {
  withRoot((root, store) => {
    const old = process.umask(0o077);
    try {
      store.save(def({ uuid: U1.toUpperCase(), start: 'auto', attrs: [{ name: 'ecc', value: 'on' }] }));
    } finally {
      process.umask(old);
    }
    const path = join(root, 'simgpu0', U1);
    assert.equal(readFileSync(path, 'utf8'), '{\n  "mdev_type": "simgpu-4Q",\n  "start": "auto",\n  "attrs": [\n    {\n      "ecc": "on"\n    }\n  ]\n}');
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.deepEqual(readdirSync(join(root, 'simgpu0')), [U1]);
    assert.equal(store.pathOf('simgpu0', U1.toUpperCase()), path);
    assert.deepEqual(store.get('simgpu0', U1), def({ start: 'auto', attrs: [{ name: 'ecc', value: 'on' }] }));
  });
});

test('save creates the root and replaces a definition whole', () => {
  withRoot((root) => {
    const store = new DefinitionStore(join(root, 'a', 'b'));
    store.save(def({ attrs: [{ name: 'x', value: '1' }, { name: 'y', value: '2' }] }));
    store.save(def({ type: 'simgpu-1Q' }));
    assert.deepEqual(store.load(), { definitions: [def({ type: 'simgpu-1Q' })], errors: [] });
    assert.equal(statSync(join(root, 'a', 'b', 'simgpu0')).mode & 0o777, 0o755);
  });
});

test('the folders save creates are 0755 whatever the umask (077 here); an existing one keeps its mode', () => {
  withRoot((root) => {
    const previous = process.umask(0o077);
    try {
      mkdirSync(join(root, 'kept'), { mode: 0o700 });
      new DefinitionStore(join(root, 'a', 'b')).save(def({}));
      new DefinitionStore(join(root, 'kept')).save(def({}));
    } finally {
      process.umask(previous);
    }
    for (const dir of ['a', 'a/b', 'a/b/simgpu0', 'kept/simgpu0']) assert.equal(statSync(join(root, dir)).mode & 0o777, 0o755, dir);
    assert.equal(statSync(join(root, 'kept')).mode & 0o777, 0o700);
  });
});

test('save refuses bad names and bad content, and writes nothing', () => {
  withRoot((root, store) => {
    assertEinval(() => store.save(def({ parent: '../outside' })), /^invalid parent name "..\/outside"/);
    assertEinval(() => store.save(def({ uuid: '../../etc/passwd' })), /^invalid UUID/);
    assertEinval(() => store.save(def({ type: '../x' })), /^invalid type/);
    assertEinval(() => store.save(def({ attrs: [{ name: '../remove', value: '1' }] })), /^invalid attribute name/);
    assertEinval(() => store.save(def({ start: 'later' as 'auto' })), /"start" must be "auto" or "manual"/);
    assert.deepEqual(readdirSync(root), []);
  });
});

test('load: sorted by parent then UUID, one UUID may be defined under several parents; find and get', () => {
  withRoot((_root, store) => {
    store.save(def({ uuid: U2, parent: 'simgpu0' }));
    store.save(def({ uuid: U1, parent: 'simgpu0' }));
    store.save(def({ uuid: U1, parent: '0000:00:02.0', type: 'i915-GVTg_V5_4' }));
    const { definitions, errors } = store.load();
    assert.deepEqual(errors, []);
    assert.deepEqual(definitions.map((d) => `${d.parent}/${d.uuid}`), [`0000:00:02.0/${U1}`, `simgpu0/${U1}`, `simgpu0/${U2}`]);
    assert.deepEqual(store.find(U1).map((d) => d.parent), ['0000:00:02.0', 'simgpu0']);
    assert.deepEqual(store.find(U1.toUpperCase()).length, 2);
    assert.deepEqual(store.find('99999999-2222-4333-8444-555555555555'), []);
    assert.equal(store.get('mtty', U1), undefined);
    assert.equal(store.get('simgpu0', U2)?.uuid, U2);
    assertEinval(() => store.get('..', U1), /parent name/);
    assertEinval(() => store.find('nope'), /invalid UUID "nope"/);
  });
});

test('save refuses a parent starting with "." and writes nothing', () => {
  withRoot((root, store) => {
    assertEinval(() => store.save(def({ parent: '.hidden' })), /invalid parent name "\.hidden": it must not start with "\."/);
    assert.deepEqual(readdirSync(root), []);
  });
});

test('load: a missing root has no definitions', () => {
  const store = new DefinitionStore(join(tmpdir(), 'vgpu-no-such-root-' + process.pid));
  assert.deepEqual(store.load(), { definitions: [], errors: [] });
  assert.deepEqual(store.find(U1), []);
  assert.equal(store.remove('simgpu0', U1), false);
});

test('load: each corrupt file is one error with its path and reason; every other definition loads', () => {
  withRoot((root, store) => {
    store.save(def({ uuid: U1 }));
    const dir = join(root, 'simgpu0');
    const corrupt: Record<string, [string, RegExp]> = {
      '33333333-2222-4333-8444-555555555555': ['{"mdev_type": "simgpu-4Q", "sta', /not valid JSON/],
      '44444444-2222-4333-8444-555555555555': ['', /not valid JSON/],
      '55555555-2222-4333-8444-555555555555': ['{"mdev_type": "simgpu-4Q"}', /has no "start"/],
      '66666666-2222-4333-8444-555555555555': ['{"mdev_type": "a/b", "start": "auto"}', /invalid type "a\/b"/],
      '77777777-2222-4333-8444-555555555555': ['[1, 2]', /not an array/],
    };
    for (const [name, [text]] of Object.entries(corrupt)) writeFileSync(join(dir, name), text);
    const { definitions, errors } = store.load();
    assert.deepEqual(definitions, [def({ uuid: U1 })]);
    assert.deepEqual(errors.map((e) => e.path), Object.keys(corrupt).map((n) => join(dir, n)));
    for (const e of errors) {
      const [, reason] = corrupt[e.path.slice(dir.length + 1)];
      assert.match(e.message, reason);
      assert.ok(e.message.startsWith(`${e.path}: `), e.message);
    }
    // get names the file too, as one line.
    assert.throws(() => store.get('simgpu0', '55555555-2222-4333-8444-555555555555'), { code: 'EINVAL', message: `${join(dir, '55555555-2222-4333-8444-555555555555')}: the definition has no "start"` });
  });
});

test('load: an unreadable file is an error naming it (skipped when running as root)', (t) => {
  if (process.getuid?.() === 0) {
    t.skip('root reads files whatever their mode');
    return;
  }
  withRoot((root, store) => {
    store.save(def());
    chmodSync(join(root, 'simgpu0', U1), 0o000);
    const { definitions, errors } = store.load();
    assert.deepEqual(definitions, []);
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /^cannot read .*: permission denied$/);
  });
});

test('load: what is not a definition is skipped (mdevctl\'s scripts.d, dot files, non-UUID names, directories); a bad parent directory is an error', () => {
  withRoot((root, store) => {
    store.save(def());
    mkdirSync(join(root, 'scripts.d', 'callouts'), { recursive: true });
    mkdirSync(join(root, 'scripts.d', 'notifiers'));
    writeFileSync(join(root, 'scripts.d', U2), '{}');
    mkdirSync(join(root, '.git'));
    writeFileSync(join(root, '.git', U2), '{}');
    writeFileSync(join(root, 'README'), 'not a parent');
    writeFileSync(join(root, 'simgpu0', 'notes.txt'), 'x');
    writeFileSync(join(root, 'simgpu0', `${U2}~`), 'editor backup');
    mkdirSync(join(root, 'simgpu0', U2));
    mkdirSync(join(root, 'bad parent'));
    writeFileSync(join(root, 'bad parent', U2), '{"mdev_type": "t", "start": "auto"}');
    const { definitions, errors } = store.load();
    assert.deepEqual(definitions, [def()]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].path, join(root, 'bad parent'));
    assert.match(errors[0].message, /^invalid parent name "bad parent"/);
  });
});

test('load: a parent directory reached through a symlink loads like mdevctl\'s (it follows links)', () => {
  withRoot((root, store) => {
    mkdirSync(join(root, '.store'));
    writeFileSync(join(root, '.store', U1), '{"mdev_type": "simgpu-4Q", "start": "manual", "attrs": []}');
    symlinkSync('.store', join(root, 'simgpu0'));
    assert.deepEqual(store.load(), { definitions: [def()], errors: [] });
  });
});

test('a file named by an upper-case UUID (mdevctl reads those) loads in lower case, and save or remove replace it', () => {
  withRoot((root, store) => {
    mkdirSync(join(root, 'simgpu0'));
    writeFileSync(join(root, 'simgpu0', U2.toUpperCase()), '{"mdev_type": "simgpu-1Q", "start": "auto", "attrs": []}');
    assert.deepEqual(store.load().definitions, [def({ uuid: U2, type: 'simgpu-1Q', start: 'auto' })]);
    assert.equal(store.get('simgpu0', U2)?.type, 'simgpu-1Q');
    store.save(def({ uuid: U2 }));
    assert.deepEqual(readdirSync(join(root, 'simgpu0')), [U2]);
    writeFileSync(join(root, 'simgpu0', U1.toUpperCase()), '{"mdev_type": "simgpu-1Q", "start": "auto", "attrs": []}');
    assert.equal(store.remove('simgpu0', U1), true);
    assert.deepEqual(readdirSync(join(root, 'simgpu0')), [U2]);
  });
});

test('remove: true when it existed, false after; the last definition of a parent takes the empty directory with it', () => {
  withRoot((root, store) => {
    store.save(def({ uuid: U1 }));
    store.save(def({ uuid: U2 }));
    assert.equal(store.remove('simgpu0', U1), true);
    assert.equal(store.remove('simgpu0', U1), false);
    assert.ok(existsSync(join(root, 'simgpu0')));
    assert.equal(store.remove('simgpu0', U2.toUpperCase()), true);
    assert.equal(existsSync(join(root, 'simgpu0')), false);
    assert.deepEqual(readdirSync(root), []);
    assert.equal(store.remove('mtty', U1), false);
    assertEinval(() => store.remove('../x', U1), /parent name/);
  });
});

test('remove keeps a parent directory that holds anything else', () => {
  withRoot((root, store) => {
    store.save(def());
    writeFileSync(join(root, 'simgpu0', 'notes.txt'), 'mine');
    assert.equal(store.remove('simgpu0', U1), true);
    assert.deepEqual(readdirSync(join(root, 'simgpu0')), ['notes.txt']);
  });
});

test('temporary files: never a definition; a dead writer\'s are cleared by load, a live writer\'s kept until old', () => {
  withRoot((root, store) => {
    store.save(def());
    const dir = join(root, 'simgpu0');
    const dead = `${TEMP_PREFIX}999999999-1-${U2}`; // no such pid
    const live = `${TEMP_PREFIX}${process.pid}-7-${U2}`;
    const stale = `${TEMP_PREFIX}${process.pid}-8-${U2}`;
    for (const name of [dead, live, stale]) writeFileSync(join(dir, name), '{"mdev_type": "half');
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(join(dir, stale), hourAgo, hourAgo);
    assert.deepEqual(store.load(), { definitions: [def()], errors: [] });
    assert.deepEqual(readdirSync(dir).sort(), [U1, live].sort());
    // A live writer's temporary file keeps the directory when its last definition goes.
    assert.equal(store.remove('simgpu0', U1), true);
    assert.deepEqual(readdirSync(dir), [live]);
  });
});

test('writeFileAtomic leaves no temporary file behind when it fails, and the old content stays', () => {
  withRoot((root) => {
    const target = join(root, 'file');
    writeFileAtomic(target, 'old');
    mkdirSync(join(root, 'dir'));
    // Renaming a file over a directory fails (EISDIR): the old directory stays, no temp file.
    assert.throws(() => writeFileAtomic(join(root, 'dir'), 'new'), { code: 'EISDIR' });
    assert.deepEqual(readdirSync(root).sort(), ['dir', 'file']);
    assert.equal(readFileSync(target, 'utf8'), 'old');
    writeFileAtomic(target, new Uint8Array([0x6e, 0x65, 0x77]), 0o600);
    assert.equal(readFileSync(target, 'utf8'), 'new');
    assert.equal(statSync(target).mode & 0o777, 0o600);
  });
});

test('save reports a parent path that is a file as one line naming it', () => {
  withRoot((root, store) => {
    writeFileSync(join(root, 'simgpu0'), 'a file where a directory belongs');
    assert.throws(() => store.save(def()), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EEXIST');
      assert.equal(err.errno, 17);
      assert.equal(err.message, `cannot create ${join(root, 'simgpu0')}: file already exists`);
      return true;
    });
  });
});
