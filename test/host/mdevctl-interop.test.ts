// Interoperability with the real mdevctl (Debian's package), both ways. mdevctl runs in a
// private mount namespace with a temporary folder bound on /etc/mdevctl.d (and, for types
// and live devices, a fake sysfs tree bound on /sys/class, /sys/bus and /sys/devices), so
// the machine's own /etc and /sys are never touched. Where mdevctl is missing, or
// namespaces or mounts are not allowed, each test says so and is reported skipped.
//
// Only fixed, valid names are ever passed to mdevctl: it does not check them itself
// (`mdevctl define -p ../x` writes outside its root).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Definition, LiveDevice, TypeInfo } from '../../src/host/api.js';
import { DefinitionStore } from '../../src/host/definitions.js';
import { definedListJson, definitionFileText, liveListJson, parseDefinedListJson, typesJson } from '../../src/host/mdevctl-json.js';

const MARKER = '.vgpu-interop-sandbox';

interface Sandbox {
  /** Bound on /etc/mdevctl.d. */
  conf: string;
  /** Holds class/, bus/, devices/: bound on /sys/class, /sys/bus, /sys/devices when asked. */
  sysfs: string;
  store: DefinitionStore;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The mount-then-exec script: refuses to run the command unless every bind took. */
const SCRIPT = [
  'mount --bind "$1" /etc/mdevctl.d && test -e /etc/mdevctl.d/' + MARKER + ' || exit 97',
  'shift',
  'if [ "$1" = --sysfs ]; then',
  '  mount --bind "$2/class" /sys/class && mount --bind "$2/bus" /sys/bus && mount --bind "$2/devices" /sys/devices || exit 98',
  '  shift 2',
  'fi',
  'exec "$@"',
].join('\n');

function inNamespace(box: Sandbox, command: string[], sysfs = false): Run {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', SCRIPT, 'sh', box.conf, ...(sysfs ? ['--sysfs', box.sysfs] : []), ...command], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

function mdevctl(box: Sandbox, args: string[], sysfs = false): string {
  const r = inNamespace(box, ['mdevctl', ...args], sysfs);
  assert.equal(r.status, 0, `mdevctl ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

function hasMdevctl(): boolean {
  return spawnSync('sh', ['-c', 'command -v mdevctl'], { encoding: 'utf8' }).status === 0;
}

function newSandbox(top: string): Sandbox {
  const conf = join(top, 'mdevctl.d');
  // mdevctl refuses to run without its callout folders.
  mkdirSync(join(conf, 'scripts.d', 'callouts'), { recursive: true });
  mkdirSync(join(conf, 'scripts.d', 'notifiers'));
  writeFileSync(join(conf, MARKER), 'a temporary folder bound on /etc/mdevctl.d by a test\n');
  const sysfs = join(top, 'sys');
  for (const d of ['class', 'bus', 'devices']) mkdirSync(join(sysfs, d), { recursive: true });
  return { conf, sysfs, store: new DefinitionStore(conf) };
}

/**
 * Runs `fn` in a fresh sandbox, or skips with the reason: mdevctl missing, not root, no
 * /etc/mdevctl.d to mount on, or the namespace or a bind mount refused.
 */
function withSandbox(t: TestContext, sysfs: boolean, fn: (box: Sandbox) => void): void {
  if (!hasMdevctl()) return void t.skip('mdevctl is not installed: apt-get install mdevctl');
  if (process.getuid?.() !== 0) return void t.skip('needs root for unshare --mount and mount --bind');
  if (!existsSync('/etc/mdevctl.d')) return void t.skip('/etc/mdevctl.d does not exist to mount on (reinstall mdevctl)');
  const top = mkdtempSync(join(tmpdir(), 'vgpu-mdevctl-'));
  try {
    const box = newSandbox(top);
    const probe = inNamespace(box, ['true'], sysfs);
    if (probe.status !== 0) {
      const why = probe.status === 97 ? 'mount --bind on /etc/mdevctl.d' : probe.status === 98 ? 'mount --bind on /sys' : 'unshare --mount';
      return void t.skip(`${why} is not permitted here: ${probe.stderr.trim() || `exit ${probe.status}`}`);
    }
    fn(box);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
}

const U1 = '0a000000-0000-4000-8000-000000000001';
const U2 = '0b000000-0000-4000-8000-000000000002';
const U3 = '0c000000-0000-4000-8000-000000000003';
const U4 = '0d000000-0000-4000-8000-000000000004';

test('mdevctl reads the definitions we write: list --defined --dumpjson equals ours, byte for byte', (t) => {
  withSandbox(t, false, (box) => {
    const ours: Definition[] = [
      { uuid: U2, parent: 'simgpu0', type: 'simgpu-4Q', start: 'auto', attrs: [{ name: 'ecc', value: 'on' }, { name: 'note', value: 'tab\tquote" back\\ é' }] },
      { uuid: U1, parent: 'simgpu0', type: 'simgpu-1Q', start: 'manual', attrs: [] },
      { uuid: U3, parent: '0000:00:02.0', type: 'i915-GVTg_V5_4', start: 'manual', attrs: [{ name: 'x', value: '' }] },
      { uuid: U1, parent: '0000:00:02.0', type: 'i915-GVTg_V5_8', start: 'auto', attrs: [] },
    ];
    for (const d of ours) box.store.save(d);
    const listed = mdevctl(box, ['list', '--defined', '--dumpjson']);
    assert.equal(listed, `${definedListJson(ours)}\n`);
    assert.deepEqual(new Set(parseDefinedListJson(listed).map((d) => JSON.stringify(d))), new Set(ours.map((d) => JSON.stringify(d))));
    // Filters: one parent; one UUID defined once prints bare; one UUID under two parents prints the tree.
    assert.equal(mdevctl(box, ['list', '--defined', '--dumpjson', '-p', 'simgpu0']), `${definedListJson(ours.filter((d) => d.parent === 'simgpu0'))}\n`);
    assert.equal(mdevctl(box, ['list', '--defined', '--dumpjson', '-u', U2]), `${definedListJson([ours[0]], { uuidFilter: true })}\n`);
    assert.equal(mdevctl(box, ['list', '--defined', '--dumpjson', '-u', U1]), `${definedListJson(ours.filter((d) => d.uuid === U1), { uuidFilter: true })}\n`);
    // The plain listing names each of them with its start mode.
    assert.equal(mdevctl(box, ['list', '--defined']),
      `${U1} 0000:00:02.0 i915-GVTg_V5_8 auto\n${U3} 0000:00:02.0 i915-GVTg_V5_4 manual\n${U1} simgpu0 simgpu-1Q manual\n${U2} simgpu0 simgpu-4Q auto\n\n`);
  });
});

test('we read what mdevctl writes: define, --auto, modify --addattr/--index/--delattr, --jsonfile, undefine', (t) => {
  withSandbox(t, false, (box) => {
    // define needs no /sys/class/mdev_bus: a parent named alone is enough.
    mdevctl(box, ['define', '-u', U1, '-p', 'simgpu0', '-t', 'simgpu-4Q']);
    mdevctl(box, ['define', '-u', U2, '-p', '0000:00:02.0', '-t', 'i915-GVTg_V5_4', '--auto']);
    mdevctl(box, ['modify', '-u', U1, '--addattr', 'ecc', '--value', 'on']);
    mdevctl(box, ['modify', '-u', U1, '--addattr', 'first', '--value', 'a b', '--index', '0']);
    mdevctl(box, ['modify', '-u', U1, '--addattr', 'gone', '--value', 'x']);
    mdevctl(box, ['modify', '-u', U1, '--delattr']);
    mdevctl(box, ['modify', '-u', U2, '--manual']);
    mdevctl(box, ['modify', '-u', U2, '--auto', '-t', 'i915-GVTg_V5_8']);
    // --jsonfile: a definition in the bytes we write.
    const jsonfile = join(box.conf, '..', 'def.json');
    writeFileSync(jsonfile, definitionFileText({ type: 'simgpu-1Q', start: 'auto', attrs: [{ name: 'k', value: 'v' }] }));
    mdevctl(box, ['define', '-u', U3, '-p', 'simgpu0', '--jsonfile', jsonfile]);
    mdevctl(box, ['define', '-u', U4, '-p', 'simgpu0', '-t', 'simgpu-1Q']);
    mdevctl(box, ['undefine', '-u', U4]);

    const expected: Definition[] = [
      { uuid: U2, parent: '0000:00:02.0', type: 'i915-GVTg_V5_8', start: 'auto', attrs: [] },
      { uuid: U1, parent: 'simgpu0', type: 'simgpu-4Q', start: 'manual', attrs: [{ name: 'first', value: 'a b' }, { name: 'ecc', value: 'on' }] },
      { uuid: U3, parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto', attrs: [{ name: 'k', value: 'v' }] },
    ];
    assert.deepEqual(box.store.load(), { definitions: expected, errors: [] });
    assert.deepEqual(box.store.find(U1), [expected[1]]);
    // Our listing of the same tree is mdevctl's, byte for byte; mdevctl's files are ours.
    assert.equal(`${definedListJson(box.store.load().definitions)}\n`, mdevctl(box, ['list', '--defined', '--dumpjson']));
    for (const d of expected) assert.equal(readFileSync(join(box.conf, d.parent, d.uuid), 'utf8'), definitionFileText(d));
    // mdevctl's undefine leaves the empty parent directory; our load does not mind it.
    mdevctl(box, ['undefine', '-u', U2]);
    assert.deepEqual(readdirSync(join(box.conf, '0000:00:02.0')), []);
    assert.deepEqual(box.store.load(), { definitions: expected.slice(1), errors: [] });
  });
});

test('each side changes what the other wrote: we replace and remove mdevctl\'s files, mdevctl modifies ours', (t) => {
  withSandbox(t, false, (box) => {
    mdevctl(box, ['define', '-u', U1, '-p', 'simgpu0', '-t', 'simgpu-4Q']);
    box.store.save({ uuid: U1, parent: 'simgpu0', type: 'simgpu-8Q', start: 'auto', attrs: [{ name: 'a', value: '1' }] });
    assert.equal(mdevctl(box, ['list', '--defined', '--dumpjson', '-u', U1]), '{\n  "mdev_type": "simgpu-8Q",\n  "start": "auto",\n  "attrs": [\n    {\n      "a": "1"\n    }\n  ]\n}\n');
    mdevctl(box, ['modify', '-u', U1, '--addattr', 'b', '--value', '2', '--index', '0']);
    assert.deepEqual(box.store.get('simgpu0', U1)?.attrs, [{ name: 'b', value: '2' }, { name: 'a', value: '1' }]);
    assert.equal(box.store.remove('simgpu0', U1), true);
    assert.equal(mdevctl(box, ['list', '--defined', '--dumpjson']), '[]\n');
    assert.equal(mdevctl(box, ['list', '--defined']), '\n');
  });
});

/** A fake sysfs: parents under devices/, linked from class/mdev_bus, live mdevs linked from bus/mdev/devices. */
function buildSysfs(root: string, types: TypeInfo[], parents: string[], live: LiveDevice[]): void {
  mkdirSync(join(root, 'class', 'mdev_bus'));
  mkdirSync(join(root, 'bus', 'mdev', 'devices'), { recursive: true });
  for (const parent of parents) {
    mkdirSync(join(root, 'devices', 'fake', parent, 'mdev_supported_types'), { recursive: true });
    symlinkSync(`../../devices/fake/${parent}`, join(root, 'class', 'mdev_bus', parent));
  }
  for (const t of types) {
    const dir = join(root, 'devices', 'fake', t.parent, 'mdev_supported_types', t.id);
    mkdirSync(dir);
    writeFileSync(join(dir, 'available_instances'), `${t.availableInstances}\n`);
    writeFileSync(join(dir, 'device_api'), `${t.deviceApi}\n`);
    // The kernel leaves out name and description when a driver has none.
    if (t.name !== '') writeFileSync(join(dir, 'name'), t.name);
    if (t.description !== '') writeFileSync(join(dir, 'description'), t.description);
    mkdirSync(join(dir, 'devices'));
  }
  for (const d of live) {
    const dir = join(root, 'devices', 'fake', d.parent, d.uuid);
    mkdirSync(dir);
    symlinkSync(`../mdev_supported_types/${d.type}`, join(dir, 'mdev_type'));
    symlinkSync(`../../../devices/fake/${d.parent}/${d.uuid}`, join(root, 'bus', 'mdev', 'devices', d.uuid));
  }
}

test('types --dumpjson and list --dumpjson of live devices: ours equal mdevctl\'s on the same (fake) sysfs', (t) => {
  withSandbox(t, true, (box) => {
    const type = (parent: string, id: string, availableInstances: number, name: string, description: string): TypeInfo =>
      ({ parent, id, name, description, deviceApi: 'vfio-pci', availableInstances, attributes: {} });
    const types: TypeInfo[] = [
      type('simgpu0', 'simgpu-4Q', 1, 'SimGPU 4Q\n', 'framebuffer=4096M\nmax_heads=4\n'),
      type('simgpu0', 'simgpu-1Q', 7, 'SimGPU 1Q\n', ''),
      type('0000:00:02.0', 'i915-GVTg_V5_8', 0, '', 'low_gm_size: 64MB\nweight: 2\n'),
      type('0000:00:02.0', 'i915-GVTg_V5_4', 2, '', ''),
    ];
    const parents = ['simgpu0', '0000:00:02.0', 'mtty'];
    const live: LiveDevice[] = [
      { uuid: U3, parent: 'simgpu0', type: 'simgpu-1Q', open: false, group: 11 },
      { uuid: U1, parent: 'simgpu0', type: 'simgpu-4Q', defined: 'auto', open: true, group: 10 },
      { uuid: U2, parent: '0000:00:02.0', type: 'i915-GVTg_V5_4', open: false, group: 12 },
    ];
    buildSysfs(box.sysfs, types, parents, live);
    box.store.save({ uuid: U1, parent: 'simgpu0', type: 'simgpu-4Q', start: 'auto', attrs: [{ name: 'ecc', value: 'on' }] });

    assert.equal(mdevctl(box, ['types', '--dumpjson'], true), `${typesJson(types, parents)}\n`);
    assert.equal(mdevctl(box, ['types', '--dumpjson', '-p', 'mtty'], true), `${typesJson([], ['mtty'])}\n`);
    const definitions = box.store.load().definitions;
    assert.equal(mdevctl(box, ['list', '--dumpjson'], true), `${liveListJson(live, { definitions })}\n`);
    assert.equal(mdevctl(box, ['list', '--dumpjson', '-u', U1], true), `${liveListJson([live[1]], { definitions, uuidFilter: true })}\n`);
    assert.equal(mdevctl(box, ['list', '--dumpjson', '-p', '0000:00:02.0'], true), `${liveListJson([live[2]], { definitions })}\n`);
  });
});
