// The in-process Host on the mock kernel: every HostApi call with mdevctl's semantics,
// autostart, attr rollback, close, and the one-line errors a new user meets.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createHost, type Host } from '../../src/host/host.js';
import { createMockSys, type MockSysLayer } from '../../src/sys/index.js';
import { CounterParent, counterDriver } from '../../src/vendors/example/counter.js';
import { openPciDevice } from '../../src/vfio/index.js';
import { isUuid } from '../../src/vgpu/index.js';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';

let root: string;
let sys: MockSysLayer;
let host: Host;
let reports: string[];

function newHost(): Host {
  return createHost({ sys, definitionsRoot: root, report: (line) => reports.push(line) });
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vgpu-host-'));
  sys = createMockSys({ devices: [] });
  reports = [];
  host = newHost();
});

afterEach(async () => {
  await host.close();
  rmSync(root, { recursive: true, force: true });
});

function fileOf(parent: string, uuid: string): unknown {
  return JSON.parse(readFileSync(join(root, parent, uuid), 'utf8'));
}

describe('types', () => {
  it('lists simgpu0\'s types with available_instances, device_api and attributes', async () => {
    const types = await host.types({ parent: 'simgpu0' });
    assert.deepEqual(types.map((t) => `${t.parent} ${t.id} ${t.availableInstances}`), [
      'simgpu0 simgpu-0B 16', 'simgpu0 simgpu-0Q 16', 'simgpu0 simgpu-1B 8', 'simgpu0 simgpu-1Q 8',
      'simgpu0 simgpu-2B 4', 'simgpu0 simgpu-2Q 4', 'simgpu0 simgpu-4Q 2', 'simgpu0 simgpu-8Q 1',
    ]);
    const q4 = types.find((t) => t.id === 'simgpu-4Q')!;
    assert.equal(q4.name, 'GRID M60-4Q');
    assert.equal(q4.deviceApi, 'vfio-pci');
    assert.equal(q4.attributes['framebuffer'], String(4 * 1024 ** 3));
    assert.deepEqual((await host.types()).filter((t) => t.parent === 'simgpu0'), types);
  });

  it('offers the simulated display parent beside the simgpu board', async () => {
    assert.deepEqual((await host.types({ parent: 'display0' })).map((t) => `${t.id} ${t.availableInstances}`),
      ['display-vga 64', 'display-xga 16', 'display-hd 8']);
  });

  it('names an unknown parent, with a hint for a case mismatch', async () => {
    await assert.rejects(host.types({ parent: 'SimGpu0' }), { code: 'ENOENT', errno: 2, message: 'unknown parent SimGpu0 (did you mean simgpu0?)' });
    await assert.rejects(host.types({ parent: 'gpu9' }), { code: 'ENOENT', message: 'unknown parent gpu9 (parents: simgpu0, display0)' });
  });
});

describe('start and stop', () => {
  it('starts a one-off from parent and type, returning a generated UUID; stop removes it', async () => {
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-1Q' });
    assert.equal(isUuid(uuid), true);
    assert.deepEqual(await host.list(), [{ uuid, parent: 'simgpu0', type: 'simgpu-1Q', open: false, group: sys.kernel.groupOf(uuid)! }]);
    assert.equal(sys.sysfs.exists(`/sys/bus/mdev/devices/${uuid}`), true);
    assert.equal((await host.types()).find((t) => t.id === 'simgpu-1Q')!.availableInstances, 7);
    await host.stop(uuid);
    assert.deepEqual(await host.list(), []);
    assert.equal(sys.sysfs.exists(`/sys/bus/mdev/devices/${uuid}`), false);
  });

  it('takes a given UUID in either case and keeps it in lower case', async () => {
    assert.equal(await host.start({ parent: 'simgpu0', type: 'simgpu-2Q', uuid: A.toUpperCase() }), A);
    assert.equal(host.registry.get(A)?.uuid, A);
  });

  it('starts a defined device by UUID alone, and shows it as defined in list', async () => {
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-4Q' });
    assert.equal(await host.start({ uuid: A }), A);
    assert.deepEqual(await host.list({ uuid: A }), [{ uuid: A, parent: 'simgpu0', type: 'simgpu-4Q', open: false, group: sys.kernel.groupOf(A)!, defined: 'manual' }]);
  });

  it('refuses every bad start with one clear line and its errno', async () => {
    await host.start({ parent: 'simgpu0', type: 'simgpu-1Q', uuid: A });
    const cases: [Parameters<Host['start']>[0], string, string][] = [
      [{ parent: 'simgpu0', type: 'simgpu-1Q', uuid: A }, 'EEXIST', `Device already exists: ${A}`],
      [{ parent: 'simgpu0', type: 'simgpu-2Q' }, 'EUSERS', 'No available instances of simgpu-2Q on simgpu0'],
      [{ parent: 'Simgpu0', type: 'simgpu-1Q' }, 'ENOENT', 'unknown parent Simgpu0 (did you mean simgpu0?)'],
      [{ parent: 'simgpu0', type: 'simgpu-1q' }, 'ENOENT', 'parent simgpu0 has no type simgpu-1q (did you mean simgpu-1Q?)'],
      [{ parent: 'simgpu0', type: 'simgpu-9Z' }, 'ENOENT', 'parent simgpu0 has no type simgpu-9Z (types: simgpu-0B, simgpu-0Q, simgpu-1B, simgpu-1Q, simgpu-2B, simgpu-2Q, simgpu-4Q, simgpu-8Q)'],
      [{ uuid: 'not-a-uuid' }, 'EINVAL', 'invalid UUID "not-a-uuid": expected 8-4-4-4-12 hex digits, e.g. 2b5c1a34-5d6e-4f70-8a9b-0c1d2e3f4a5b'],
      [{ uuid: B }, 'ENOENT', `no definition of ${B} (give --parent and --type to start one that is not defined)`],
      [{ type: 'simgpu-1Q' }, 'EINVAL', 'starting a device by type needs its parent (--parent)'],
      [{}, 'EINVAL', 'start needs the UUID of a defined device, or a parent and a type'],
      [{ parent: '../etc', type: 'simgpu-1Q' }, 'EINVAL', 'invalid parent name "../etc": use letters, digits and _ . : - (a PCI address like 0000:00:02.0 or a name like simgpu0)'],
    ];
    for (const [request, code, message] of cases) {
      await assert.rejects(host.start(request), (err: Error & { code?: string; errno?: number }) => {
        assert.equal(err.code, code, JSON.stringify(request));
        assert.equal(err.message, message);
        assert.equal(typeof err.errno, 'number');
        return true;
      });
    }
    assert.equal(host.registry.list().length, 1);
  });

  it('refuses attrs on a simulated parent before creating anything: its vGPUs have none to write', async () => {
    await assert.rejects(
      host.start({ parent: 'simgpu0', uuid: A, definition: { type: 'simgpu-1Q', attrs: [{ name: 'heads', value: '2' }] } }),
      {
        code: 'EINVAL',
        message: 'simgpu-1Q on simgpu0 takes no attributes ("heads"): its vGPUs have no per-device sysfs attribute to write, ' +
          'so the definition could never start; attributes are for kernel mdev parents whose vendor driver has them',
      },
    );
    assert.deepEqual(await host.list(), []);
    assert.equal(sys.sysfs.exists(`/sys/bus/mdev/devices/${A}`), false);
    assert.equal((await host.types()).find((t) => t.id === 'simgpu-8Q')!.availableInstances, 1);
    await assert.rejects(
      host.start({ parent: 'simgpu0', uuid: A, definition: { type: 'simgpu-1Q', attrs: [{ name: 'remove', value: '1' }] } }),
      { code: 'EINVAL' },
    );
    // An empty list is no attribute.
    assert.equal(await host.start({ parent: 'simgpu0', uuid: A, definition: { type: 'simgpu-1Q', attrs: [] } }), A);
    await host.stop(A);
    assert.deepEqual(await host.list(), []);
  });

  it('stop: ENODEV for a device not running, EBUSY while a user has it open', async () => {
    await assert.rejects(host.stop(A), { code: 'ENODEV', message: `device ${A} is not running` });
    await host.start({ parent: 'simgpu0', type: 'simgpu-1Q', uuid: A });
    const handle = openPciDevice(sys, A);
    try {
      assert.equal((await host.list())[0]!.open, true);
      await assert.rejects(host.stop(A), { code: 'EBUSY', message: `device ${A} is in use (a user has it open): close it first` });
    } finally {
      handle.close();
    }
    await host.stop(A);
    assert.deepEqual(await host.list(), []);
  });
});

describe('define, undefine, listDefined', () => {
  it('saves mdevctl\'s file at <root>/<parent>/<uuid> and lists it with filters', async () => {
    assert.equal(await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto' }), A);
    const generated = await host.define({ parent: 'simgpu0', type: 'simgpu-2Q' });
    assert.equal(isUuid(generated), true);
    assert.deepEqual(fileOf('simgpu0', A), { mdev_type: 'simgpu-1Q', start: 'auto', attrs: [] });
    assert.deepEqual(await host.listDefined({ uuid: A }), [{ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto', attrs: [] }]);
    assert.equal((await host.listDefined({ parent: 'simgpu0' })).length, 2);
    assert.deepEqual(await host.listDefined({ parent: 'other0' }), []);
  });

  it('defines a running device from its UUID alone', async () => {
    await host.start({ parent: 'simgpu0', type: 'simgpu-2B', uuid: B });
    assert.equal(await host.define({ uuid: B }), B);
    assert.deepEqual(fileOf('simgpu0', B), { mdev_type: 'simgpu-2B', start: 'manual', attrs: [] });
    assert.deepEqual((await host.list())[0]!.defined, 'manual');
  });

  it('refuses a duplicate, a UUID alone that is not running, and a type the present parent lacks', async () => {
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q' });
    await assert.rejects(host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q' }), { code: 'EEXIST', message: `device ${A} is already defined on simgpu0` });
    await assert.rejects(host.define({ uuid: C }), { code: 'ENODEV', message: `device ${C} is not running: give --parent and --type to define it` });
    await assert.rejects(host.define({ parent: 'simgpu0', type: 'simgpu-3Q' }), { code: 'ENOENT' });
    await assert.rejects(host.define({ uuid: 'x', parent: 'simgpu0', type: 'simgpu-1Q' }), { code: 'EINVAL' });
    // A parent that is not here yet may be defined for: it starts when the parent appears.
    assert.equal(await host.define({ uuid: C, parent: 'counter0', type: 'counter-basic', start: 'auto' }), C);
  });

  it('undefine removes the UUID under every parent unless one is named; none is ENOENT', async () => {
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q' });
    await host.define({ uuid: A, parent: 'other0', type: 'other-x' });
    await host.define({ uuid: B, parent: 'other0', type: 'other-x' });
    assert.equal(await host.undefine(A, 'other0'), 1);
    assert.equal(existsSync(join(root, 'simgpu0', A)), true);
    await host.define({ uuid: A, parent: 'other0', type: 'other-x' });
    assert.equal(await host.undefine(A), 2);
    assert.deepEqual((await host.listDefined()).map((d) => d.uuid), [B]);
    await assert.rejects(host.undefine(A), { code: 'ENOENT', message: `no definition of ${A}` });
  });

  it('start of a UUID defined under two parents needs --parent', async () => {
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q' });
    await host.define({ uuid: A, parent: 'other0', type: 'other-x' });
    await assert.rejects(host.start({ uuid: A }), { code: 'EINVAL', message: `${A} is defined on several parents (other0, simgpu0): give --parent` });
    assert.equal(await host.start({ uuid: A, parent: 'simgpu0' }), A);
  });
});

describe('modify', () => {
  beforeEach(async () => {
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q' });
  });

  it('changes type and start mode and saves', async () => {
    const def = await host.modify({ uuid: A, type: 'simgpu-2Q', start: 'auto' });
    assert.deepEqual(def, { uuid: A, parent: 'simgpu0', type: 'simgpu-2Q', start: 'auto', attrs: [] });
    assert.deepEqual(fileOf('simgpu0', A), { mdev_type: 'simgpu-2Q', start: 'auto', attrs: [] });
  });

  // Attributes on a parent this host does not have (a kernel mdev parent elsewhere): they may apply there.
  it('adds attrs at the end or at --index, deletes the last or the one at --index', async () => {
    await host.define({ uuid: B, parent: 'other0', type: 'other-x' });
    await host.modify({ uuid: B, addAttr: { name: 'a', value: '1' } });
    await host.modify({ uuid: B, addAttr: { name: 'c', value: '3' } });
    await host.modify({ uuid: B, addAttr: { name: 'b', value: '2', index: 1 } });
    await host.modify({ uuid: B, addAttr: { name: 'z', value: '0', index: 0 } });
    assert.deepEqual(fileOf('other0', B), { mdev_type: 'other-x', start: 'manual', attrs: [{ z: '0' }, { a: '1' }, { b: '2' }, { c: '3' }] });
    await host.modify({ uuid: B, delAttr: {} });
    await host.modify({ uuid: B, delAttr: { index: 0 } });
    assert.deepEqual((await host.listDefined({ uuid: B }))[0]!.attrs, [{ name: 'a', value: '1' }, { name: 'b', value: '2' }]);
  });

  it('refuses bad indexes and deleting from an empty list', async () => {
    await host.define({ uuid: B, parent: 'other0', type: 'other-x' });
    await assert.rejects(host.modify({ uuid: B, delAttr: {} }), { code: 'EINVAL', message: `device ${B} has no attribute to delete` });
    await assert.rejects(host.modify({ uuid: B, addAttr: { name: 'a', value: '1', index: 1 } }), { code: 'EINVAL', message: 'cannot add an attribute at index 1: valid indexes are 0..0' });
    await host.modify({ uuid: B, addAttr: { name: 'a', value: '1' } });
    await assert.rejects(host.modify({ uuid: B, delAttr: { index: 1 } }), { code: 'EINVAL', message: 'cannot delete an attribute at index 1: valid indexes are 0..0' });
    await assert.rejects(host.modify({ uuid: B, addAttr: { name: 'x/y', value: '1' } }), { code: 'EINVAL' });
  });

  it('a JSON definition replaces type, start and attrs', async () => {
    await host.define({ uuid: B, parent: 'other0', type: 'other-x' });
    await host.modify({ uuid: B, addAttr: { name: 'a', value: '1' } });
    const def = await host.modify({ uuid: B, definition: { type: 'other-y', start: 'auto', attrs: [{ name: 'q', value: '9' }] } });
    assert.deepEqual(def, { uuid: B, parent: 'other0', type: 'other-y', start: 'auto', attrs: [{ name: 'q', value: '9' }] });
    const simgpu = await host.modify({ uuid: A, definition: { type: 'simgpu-4Q', start: 'auto', attrs: [] } });
    assert.deepEqual(simgpu, { uuid: A, parent: 'simgpu0', type: 'simgpu-4Q', start: 'auto', attrs: [] });
  });

  it('refuses attributes on a simulated parent\'s definition (define, --addattr, a JSON file); one saved elsewhere can be deleted', async () => {
    const refused = { code: 'EINVAL', message: /^simgpu-1Q on simgpu0 takes no attributes \("note"\): its vGPUs have no per-device sysfs attribute/ };
    await assert.rejects(host.modify({ uuid: A, addAttr: { name: 'note', value: 'x' } }), refused);
    await assert.rejects(host.modify({ uuid: A, definition: { type: 'simgpu-1Q', attrs: [{ name: 'note', value: 'x' }] } }), refused);
    await assert.rejects(host.define({ uuid: B, parent: 'simgpu0', type: 'simgpu-1Q', attrs: [{ name: 'note', value: 'x' }] }), refused);
    await assert.rejects(host.define({ parent: 'display0', definition: { type: 'display-xga', attrs: [{ name: 'edid', value: '1' }] } }), { code: 'EINVAL' });
    assert.deepEqual(fileOf('simgpu0', A), { mdev_type: 'simgpu-1Q', start: 'manual', attrs: [] });
    assert.equal((await host.listDefined({ uuid: B })).length, 0);
    // A definition with attributes written by another tool (mdevctl): start refuses it up
    // front, and --delattr still works on it.
    writeFileSync(join(root, 'simgpu0', A), '{"mdev_type": "simgpu-1Q", "start": "manual", "attrs": [{"note": "x"}]}');
    await assert.rejects(host.start({ uuid: A }), refused);
    assert.deepEqual(await host.list(), []);
    assert.deepEqual((await host.modify({ uuid: A, delAttr: {} })).attrs, []);
    assert.equal(await host.start({ uuid: A }), A);
  });

  it('names what is missing: no definition, unknown type on the parent', async () => {
    await assert.rejects(host.modify({ uuid: B, start: 'auto' }), { code: 'ENOENT', message: `no definition of ${B}` });
    await assert.rejects(host.modify({ uuid: A, parent: 'other0', start: 'auto' }), { code: 'ENOENT', message: `no definition of ${A} on other0` });
    await assert.rejects(host.modify({ uuid: A, type: 'simgpu-7Q' }), { code: 'ENOENT' });
    assert.equal((await host.listDefined({ uuid: A }))[0]!.type, 'simgpu-1Q');
  });
});

describe('autostart', () => {
  it('starts every auto definition whose parent exists; one failure does not stop the others', async () => {
    const bad = '00000000-0000-4000-8000-000000000000';
    host.definitions.save({ uuid: bad, parent: 'simgpu0', type: 'simgpu-9Q', start: 'auto', attrs: [] });
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto' });
    await host.define({ uuid: B, parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto' });
    await host.define({ uuid: C, parent: 'simgpu0', type: 'simgpu-1Q', start: 'manual' });
    const result = await host.startAuto();
    assert.deepEqual(result.started, [A, B]);
    assert.deepEqual(result.failed.map((f) => [f.uuid, f.error.code]), [[bad, 'ENOENT']]);
    assert.deepEqual(reports, [`autostart of ${bad} on simgpu0 failed: parent simgpu0 has no type simgpu-9Q (types: simgpu-0B, simgpu-0Q, simgpu-1B, simgpu-1Q, simgpu-2B, simgpu-2Q, simgpu-4Q, simgpu-8Q)`]);
    assert.deepEqual((await host.list()).map((d) => [d.uuid, d.defined]), [[A, 'auto'], [B, 'auto']]);
    // Running ones are left alone the second time.
    assert.deepEqual((await host.startAuto()).started, []);
  });

  it('reports successes and failures in the order they happen: the start that took the capacity first', async () => {
    await host.close();
    sys = createMockSys({ devices: [] });
    const events: string[] = [];
    host = createHost({ sys, definitionsRoot: root, report: (line) => events.push(line), started: (uuid) => events.push(`started ${uuid}`) });
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-8Q', start: 'auto' });
    await host.define({ uuid: B, parent: 'simgpu0', type: 'simgpu-8Q', start: 'auto' });
    await host.startAuto();
    assert.equal(events.length, 2);
    assert.equal(events[0], `started ${A}`);
    assert.match(events[1] as string, new RegExp(`^autostart of ${B} on simgpu0 failed: `));
  });

  it('starts the auto definitions of a parent when it appears', async () => {
    await host.define({ uuid: C, parent: 'counter0', type: 'counter-basic', start: 'auto' });
    assert.deepEqual((await host.startAuto()).started, []);
    const result = await host.addParent(counterDriver, new CounterParent('counter0'));
    assert.deepEqual(result, { started: [C], failed: [] });
    assert.deepEqual(await host.list({ parent: 'counter0' }), [{ uuid: C, parent: 'counter0', type: 'counter-basic', open: false, group: sys.kernel.groupOf(C)!, defined: 'auto' }]);
  });

  it('close() releases the vGPUs and keeps the definitions; a new host brings the auto ones back', async () => {
    await host.define({ uuid: A, parent: 'simgpu0', type: 'simgpu-2Q', start: 'auto' });
    await host.startAuto();
    const oneOff = await host.start({ parent: 'simgpu0', type: 'simgpu-2Q' });
    await host.close();
    assert.equal(host.registry.list().length, 0);
    assert.equal(sys.sysfs.exists(`/sys/bus/mdev/devices/${oneOff}`), false);
    assert.deepEqual(fileOf('simgpu0', A), { mdev_type: 'simgpu-2Q', start: 'auto', attrs: [] });
    await assert.rejects(host.list(), { code: 'EBADF', message: 'this host is closed' });
    sys = createMockSys({ devices: [] });
    host = newHost();
    assert.deepEqual((await host.startAuto()).started, [A]);
    assert.deepEqual((await host.list()).map((d) => d.uuid), [A]);
  });
});
