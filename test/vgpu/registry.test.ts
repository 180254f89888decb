// The vGPU registry on its own (no kernel): drivers, parents and types, create and
// remove with every errno, available_instances recomputed, rollback when a vendor or
// bus fails at each step, remove refused while open, buses told in order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSysError, sysError } from '../../src/addon/errors.js';
import { VgpuRegistry, type RegisteredParent, type Vgpu, type VgpuBus } from '../../src/vgpu/registry.js';
import { assertErrno } from '../sys/mock-helpers.js';
import { DRIVER, TestBoard, UUID_A, UUID_B, UUID_C } from './registry-vendor.js';

/** A bus that logs what it is told and can be made to refuse. */
class LogBus implements VgpuBus {
  readonly log: string[] = [];
  failAdd: ((vgpu: Vgpu) => void) | undefined;
  failRemove: ((vgpu: Vgpu) => void) | undefined;
  failParent: (() => void) | undefined;
  constructor(readonly id: string) {}
  parentAdded(p: RegisteredParent): void {
    this.failParent?.();
    this.log.push(`${this.id} +parent ${p.name}`);
  }
  parentRemoved(p: RegisteredParent): void {
    this.log.push(`${this.id} -parent ${p.name}`);
  }
  vgpuAdded(v: Vgpu): void {
    this.failAdd?.(v);
    this.log.push(`${this.id} +${v.uuid}`);
  }
  vgpuRemoved(v: Vgpu): void {
    this.failRemove?.(v);
    this.log.push(`${this.id} -${v.uuid}`);
  }
}

function setup(boards = ['board0']) {
  const registry = new VgpuRegistry();
  registry.registerDriver(DRIVER);
  const parents = boards.map((name) => new TestBoard(name));
  for (const board of parents) registry.addParent('tgpu', board);
  return { registry, board: parents[0]!, boards: parents };
}

function available(registry: VgpuRegistry, parent = 'board0'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of registry.parent(parent)!.typeList()) out[t.id] = t.availableInstances();
  return out;
}

const FULL = { 'tgpu-1Q': 8, 'tgpu-2Q': 4, 'tgpu-4Q': 2, 'tgpu-8Q': 1 };

describe('vGPU registry: parents and types', () => {
  it('lists types with id <driver>-<name>, name, description, device_api, capacity and attributes', () => {
    const { registry } = setup();
    const parent = registry.parent('board0')!;
    assert.equal(parent.driver, DRIVER);
    assert.deepEqual(parent.typeList().map((t) => t.info()), [1, 2, 4, 8].map((gib) => ({
      id: `tgpu-${gib}Q`,
      name: `TGPU-${gib}Q`,
      description: gib === 8 ? undefined : `${gib} GiB framebuffer, 2 heads`,
      deviceApi: 'vfio-pci',
      availableInstances: 8 / gib,
      attributes: { framebuffer: `${gib}G`, heads: '2', max_resolution: '4096x2160' },
    })));
    assert.deepEqual(registry.parentList().map((p) => p.name), ['board0']);
    assert.deepEqual(registry.driverList(), [DRIVER]);
  });

  it('refuses duplicate drivers and parents, unknown drivers, bad names and clashing types', () => {
    const { registry } = setup();
    assertErrno(() => registry.registerDriver({ name: 'tgpu' }), 'EEXIST');
    assertErrno(() => registry.addParent('tgpu', new TestBoard('board0')), 'EEXIST');
    assertErrno(() => registry.addParent('nvidia', new TestBoard('board1')), 'ENODEV');
    assert.throws(() => registry.registerDriver({ name: 'a/b' }), TypeError);
    assert.throws(() => registry.registerDriver({ name: '' }), TypeError);
    assert.throws(() => registry.addParent('tgpu', new TestBoard('..')), TypeError);
    assert.throws(() => registry.addParent('tgpu', new TestBoard('has space')), TypeError);
    const twice = Object.assign(new TestBoard('board2'), {});
    Object.defineProperty(twice, 'types', { value: [twice.types[0], twice.types[0]] });
    assert.throws(() => registry.addParent('tgpu', twice), /two types named 1Q/);
    const clash = new TestBoard('board3');
    Object.defineProperty(clash, 'types', { value: [{ name: 'x', displayName: 'X', attributes: { create: '1' } }] });
    assert.throws(() => registry.addParent('tgpu', clash), /attribute name create/);
    assert.deepEqual(registry.parentList().map((p) => p.name), ['board0']);
  });

  it('available_instances is asked anew: creating one type narrows the others', () => {
    const { registry } = setup();
    assert.deepEqual(available(registry), FULL);
    const a = registry.create('board0', 'tgpu-2Q', UUID_A);
    assert.deepEqual(available(registry), { 'tgpu-1Q': 0, 'tgpu-2Q': 3, 'tgpu-4Q': 0, 'tgpu-8Q': 0 });
    registry.create('board0', 'tgpu-2Q', UUID_B);
    assert.deepEqual(available(registry), { 'tgpu-1Q': 0, 'tgpu-2Q': 2, 'tgpu-4Q': 0, 'tgpu-8Q': 0 });
    assertErrno(() => registry.create('board0', 'tgpu-4Q', UUID_C), 'ENOSPC');
    registry.remove(a.uuid);
    registry.remove(UUID_B);
    assert.deepEqual(available(registry), FULL);
  });

  it('a vendor whose availableInstances throws or answers nonsense gives EIO and changes nothing', () => {
    const { registry, board } = setup();
    board.failAvailable = 'throw';
    const t = registry.parent('board0')!.types.get('tgpu-1Q')!;
    assertErrno(() => t.availableInstances(), 'EIO');
    assertErrno(() => t.info(), 'EIO');
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_A), 'EIO');
    board.failAvailable = 'ENXIO';
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_A), 'ENXIO');
    board.failAvailable = undefined;
    for (const bad of [-1, 1.5, Number.NaN, '3']) {
      const original = board.availableInstances;
      board.availableInstances = () => bad as number;
      assertErrno(() => t.availableInstances(), 'EIO');
      board.availableInstances = original;
    }
    assert.equal(board.creates, 0);
    assert.equal(registry.size, 0);
    assert.deepEqual(available(registry), FULL);
  });
});

describe('vGPU registry: create', () => {
  it('generates a random UUID when none is given, and takes either case (stored lower case)', () => {
    const { registry, board } = setup();
    const generated = registry.create('board0', 'tgpu-1Q');
    assert.match(generated.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const upper = registry.create('board0', 'tgpu-1Q', UUID_A.toUpperCase());
    assert.equal(upper.uuid, UUID_A);
    assert.equal(registry.get(UUID_A.toUpperCase()), upper);
    assert.equal(registry.get(UUID_A), upper);
    assert.equal(upper.model, board.live.get(UUID_A));
    assert.equal(upper.parent.name, 'board0');
    assert.equal(upper.type.id, 'tgpu-1Q');
    assert.equal(upper.state, 'live');
    assert.deepEqual(upper.info(), { uuid: UUID_A, parent: 'board0', type: 'tgpu-1Q', open: false });
    assert.deepEqual(registry.list().map((v) => v.uuid).sort(), [generated.uuid, UUID_A].sort());
    assert.equal(registry.size, 2);
  });

  it('malformed UUIDs are EINVAL, before anything else is looked at', () => {
    const { registry, board } = setup();
    for (const bad of ['', 'c0b26072', `${UUID_A}\n`, ` ${UUID_A}`, UUID_A.replace('-', '_'), UUID_A.replace('c', 'g'),
      'c0b26072dd1b434084febf338c510818', 'c0b26072-dd1b-4340-84fe-bf338c51081', 'c0b2607-2dd1b-4340-84fe-bf338c510818']) {
      assertErrno(() => registry.create('board0', 'tgpu-1Q', bad), 'EINVAL');
      assertErrno(() => registry.create('nope', 'nope', bad), 'EINVAL');
    }
    assert.equal(board.creates, 0);
  });

  it('unknown parent or type is ENOENT (what the sysfs path gives)', () => {
    const { registry } = setup();
    assertErrno(() => registry.create('board9', 'tgpu-1Q', UUID_A), 'ENOENT');
    assertErrno(() => registry.create('board0', 'tgpu-3Q', UUID_A), 'ENOENT');
    assertErrno(() => registry.create('board0', '1Q', UUID_A), 'ENOENT');
    assert.equal(registry.size, 0);
  });

  it('a UUID in use on any parent is EEXIST, in either case', () => {
    const { registry, boards } = setup(['board0', 'board1']);
    registry.create('board0', 'tgpu-1Q', UUID_A);
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_A), 'EEXIST');
    assertErrno(() => registry.create('board1', 'tgpu-8Q', UUID_A.toUpperCase()), 'EEXIST');
    assert.equal(boards[1]!.creates, 0);
    assert.equal(registry.size, 1);
  });

  it('no instance left is ENOSPC, and the vendor is not asked to create', () => {
    const { registry, board } = setup();
    registry.create('board0', 'tgpu-8Q', UUID_A);
    assertErrno(() => registry.create('board0', 'tgpu-8Q', UUID_B), 'ENOSPC');
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_B), 'ENOSPC');
    assert.equal(board.creates, 1);
    const err = (() => { try { registry.create('board0', 'tgpu-8Q', UUID_B); } catch (e) { return e; } })();
    assert.ok(isSysError(err));
    assert.equal(err.errno, 28);
    assert.equal(err.syscall, 'write');
  });

  it('a vendor createVgpu failure: its SysError passes, anything else is EIO; nothing remains', () => {
    const { registry, board } = setup();
    const bus = new LogBus('b');
    registry.attach(bus);
    board.failCreate = 'ENOSPC';
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_A), 'ENOSPC');
    board.failCreate = 'throw';
    const err = (() => { try { registry.create('board0', 'tgpu-1Q', UUID_A); } catch (e) { return e; } })();
    assert.ok(isSysError(err, 'EIO'));
    assert.match(String((err.cause as Error).message), /createVgpu broke/);
    assert.equal(board.creates, 2);
    assert.equal(registry.size, 0);
    assert.equal(registry.get(UUID_A), undefined);
    assert.deepEqual(bus.log, ['b +parent board0']);
    assert.deepEqual(available(registry), FULL);
    board.failCreate = undefined;
    assert.equal(registry.create('board0', 'tgpu-1Q', UUID_A).uuid, UUID_A);
  });

  it('a vendor returning no model is EIO', () => {
    const { registry, board } = setup();
    board.createVgpu = () => undefined as never;
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_A), 'EIO');
    assert.equal(registry.size, 0);
  });

  it('a bus refusing the vGPU rolls back each step: earlier buses, the registry, the vendor', () => {
    for (const failure of [sysError('ENOMEM', 'register'), new Error('bus broke')]) {
      const { registry, board } = setup();
      const first = new LogBus('1');
      const second = new LogBus('2');
      const third = new LogBus('3');
      registry.attach(first);
      registry.attach(second);
      registry.attach(third);
      second.failAdd = () => { throw failure; };
      assertErrno(() => registry.create('board0', 'tgpu-4Q', UUID_A), isSysError(failure) ? 'ENOMEM' : 'EIO');
      assert.deepEqual(first.log.slice(1), [`1 +${UUID_A}`, `1 -${UUID_A}`]);
      assert.deepEqual(second.log.slice(1), []);
      assert.deepEqual(third.log.slice(1), []);
      assert.equal(board.creates, 1);
      assert.equal(board.removes, 1);
      assert.equal(board.live.size, 0);
      assert.equal(registry.size, 0);
      assert.deepEqual(registry.parent('board0')!.vgpus.size, 0);
      assert.deepEqual(available(registry), FULL);
      second.failAdd = undefined;
      registry.create('board0', 'tgpu-4Q', UUID_A);
      assert.deepEqual([first, second, third].map((b) => b.log.at(-1)), [`1 +${UUID_A}`, `2 +${UUID_A}`, `3 +${UUID_A}`]);
    }
  });

  it('a vendor calling back into the registry during create sees the UUID taken', () => {
    const { registry, board } = setup();
    const seen: string[] = [];
    board.duringCreate = (uuid) => {
      board.duringCreate = undefined;
      for (const call of [() => registry.create('board0', 'tgpu-1Q', uuid), () => registry.remove(uuid)]) {
        try { call(); } catch (err) { seen.push((err as { code: string }).code); }
      }
    };
    registry.create('board0', 'tgpu-1Q', UUID_A);
    assert.deepEqual(seen, ['EEXIST', 'ENODEV']);
    // While buses are being told, the vGPU exists but is not active yet.
    const bus = new LogBus('b');
    registry.attach(bus);
    bus.failAdd = (v) => {
      bus.failAdd = undefined;
      assertErrno(() => registry.remove(v.uuid), 'EAGAIN');
      assert.equal(registry.get(v.uuid), undefined);
    };
    registry.create('board0', 'tgpu-1Q', UUID_B);
    assert.equal(registry.get(UUID_B)?.state, 'live');
  });
});

describe('vGPU registry: remove and open state', () => {
  it('unknown or malformed UUID is ENODEV', () => {
    const { registry } = setup();
    assertErrno(() => registry.remove(UUID_A), 'ENODEV');
    assertErrno(() => registry.remove('not-a-uuid'), 'ENODEV');
    registry.create('board0', 'tgpu-1Q', UUID_A);
    registry.remove(UUID_A.toUpperCase());
    assertErrno(() => registry.remove(UUID_A), 'ENODEV');
  });

  it('an open vGPU is EBUSY until released', () => {
    const { registry, board } = setup();
    const bus = new LogBus('b');
    registry.attach(bus);
    const v = registry.create('board0', 'tgpu-1Q', UUID_A);
    v.opened();
    assert.equal(v.isOpen, true);
    assert.equal(v.info().open, true);
    assertErrno(() => registry.remove(UUID_A), 'EBUSY');
    assert.equal(registry.get(UUID_A), v);
    assert.equal(board.removes, 0);
    assert.deepEqual(bus.log, ['b +parent board0', `b +${UUID_A}`]);
    v.released();
    assert.equal(v.isOpen, false);
    registry.remove(UUID_A);
    assert.equal(board.removes, 1);
    assert.deepEqual(bus.log.slice(2), [`b -${UUID_A}`]);
  });

  it('vGPUs of one parent are created and removed while another is open', () => {
    const { registry, board } = setup();
    const a = registry.create('board0', 'tgpu-1Q', UUID_A);
    a.opened();
    registry.create('board0', 'tgpu-1Q', UUID_B);
    registry.create('board0', 'tgpu-1Q', UUID_C);
    registry.remove(UUID_B);
    assert.deepEqual(registry.list('board0').map((v) => v.uuid).sort(), [UUID_A, UUID_C].sort());
    assert.equal(a.isOpen, true);
    assert.equal(board.live.size, 2);
    assert.deepEqual(available(registry), { 'tgpu-1Q': 6, 'tgpu-2Q': 0, 'tgpu-4Q': 0, 'tgpu-8Q': 0 });
  });

  it('a bus that keeps the vGPU (EBUSY) leaves it exactly as it was, on every bus', () => {
    const { registry, board } = setup();
    const first = new LogBus('1');
    const second = new LogBus('2');
    const third = new LogBus('3');
    for (const bus of [first, second, third]) registry.attach(bus);
    registry.create('board0', 'tgpu-1Q', UUID_A);
    second.failRemove = () => { throw sysError('EBUSY', 'unregister'); };
    assertErrno(() => registry.remove(UUID_A), 'EBUSY');
    assert.deepEqual(first.log.slice(2), []);
    assert.deepEqual(second.log.slice(2), []);
    // Buses are told of a removal last-attached first, so the third heard it and got it back.
    assert.deepEqual(third.log.slice(2), [`3 -${UUID_A}`, `3 +${UUID_A}`]);
    assert.equal(registry.get(UUID_A)?.state, 'live');
    assert.equal(board.removes, 0);
    second.failRemove = () => { throw new Error('bus broke'); };
    assertErrno(() => registry.remove(UUID_A), 'EIO');
    second.failRemove = undefined;
    registry.remove(UUID_A);
    assert.equal(registry.size, 0);
    assert.equal(board.removes, 1);
  });

  it('a vendor removeVgpu that throws: the vGPU is gone anyway and the error is reported', () => {
    const { registry, board } = setup();
    const bus = new LogBus('b');
    registry.attach(bus);
    registry.create('board0', 'tgpu-1Q', UUID_A);
    registry.create('board0', 'tgpu-1Q', UUID_B);
    board.failRemove = 'throw';
    assertErrno(() => registry.remove(UUID_A), 'EIO');
    board.failRemove = 'EFAULT';
    assertErrno(() => registry.remove(UUID_B), 'EFAULT');
    board.failRemove = undefined;
    assert.equal(registry.size, 0);
    assert.equal(registry.get(UUID_A), undefined);
    assert.deepEqual(bus.log.slice(3), [`b -${UUID_A}`, `b -${UUID_B}`]);
    assertErrno(() => registry.remove(UUID_A), 'ENODEV');
    assert.equal(registry.create('board0', 'tgpu-1Q', UUID_A).uuid, UUID_A);
  });
});

describe('vGPU registry: parents go, buses attach', () => {
  it('removing a parent removes its vGPUs, then tells the buses; EBUSY while one is open', () => {
    const { registry, boards } = setup(['board0', 'board1']);
    const bus = new LogBus('b');
    registry.attach(bus);
    registry.create('board0', 'tgpu-1Q', UUID_A);
    const b = registry.create('board0', 'tgpu-1Q', UUID_B);
    registry.create('board1', 'tgpu-1Q', UUID_C);
    b.opened();
    assertErrno(() => registry.removeParent('board0'), 'EBUSY');
    assert.equal(registry.size, 3);
    b.released();
    bus.log.length = 0;
    registry.removeParent('board0');
    assert.deepEqual(bus.log, [`b -${UUID_A}`, `b -${UUID_B}`, 'b -parent board0']);
    assert.equal(boards[0]!.live.size, 0);
    assert.equal(registry.parent('board0'), undefined);
    assert.deepEqual(registry.list().map((v) => v.uuid), [UUID_C]);
    assertErrno(() => registry.removeParent('board0'), 'ENODEV');
    assertErrno(() => registry.create('board0', 'tgpu-1Q', UUID_A), 'ENOENT');
  });

  it('unregistering a driver removes its parents', () => {
    const { registry, boards } = setup(['board0', 'board1']);
    registry.create('board1', 'tgpu-1Q', UUID_A);
    registry.unregisterDriver('tgpu');
    assert.deepEqual(registry.parentList(), []);
    assert.equal(boards[1]!.removes, 1);
    assertErrno(() => registry.unregisterDriver('tgpu'), 'ENODEV');
    registry.registerDriver(DRIVER);
  });

  it('a bus that refuses a parent rolls back the others', () => {
    const { registry } = setup();
    const first = new LogBus('1');
    const second = new LogBus('2');
    registry.attach(first);
    registry.attach(second);
    second.failParent = () => { throw new Error('no room'); };
    assertErrno(() => registry.addParent('tgpu', new TestBoard('board1')), 'EIO');
    assert.deepEqual(first.log, ['1 +parent board0', '1 +parent board1', '1 -parent board1']);
    assert.equal(registry.parent('board1'), undefined);
  });

  it('attach tells a new bus of what exists, and undoes that if it refuses', () => {
    const { registry } = setup();
    registry.create('board0', 'tgpu-1Q', UUID_A);
    const late = new LogBus('late');
    registry.attach(late);
    assert.deepEqual(late.log, ['late +parent board0', `late +${UUID_A}`]);
    assert.throws(() => registry.attach(late), TypeError);
    registry.create('board0', 'tgpu-1Q', UUID_B);
    const picky = new LogBus('picky');
    picky.failAdd = (v) => { if (v.uuid === UUID_B) throw new Error('no'); };
    assert.throws(() => registry.attach(picky), /no/);
    assert.deepEqual(picky.log, ['picky +parent board0', `picky +${UUID_A}`, `picky -${UUID_A}`, 'picky -parent board0']);
    registry.remove(UUID_A);
    assert.deepEqual(picky.log.length, 4);
  });
});
