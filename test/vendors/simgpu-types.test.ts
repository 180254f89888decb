// simgpu's types and capacity through the registry's type listing: the GRID M60-like
// catalogue, instances derived from the board's framebuffer, and the proposal's
// narrowing (once a type lives on a board, only that type can be created there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VgpuRegistry } from '../../src/vgpu/registry.js';
import { SimGpuBoard, simgpuDriver } from '../../src/vendors/simgpu/index.js';

const GiB = 1024 ** 3;

function setup(options: ConstructorParameters<typeof SimGpuBoard>[0] = {}): { registry: VgpuRegistry; board: SimGpuBoard } {
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  const board = new SimGpuBoard(options);
  registry.addParent('simgpu', board);
  return { registry, board };
}

function available(registry: VgpuRegistry, parent = 'simgpu0'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of registry.parent(parent)!.typeList()) out[t.id] = t.availableInstances();
  return out;
}

function cleanup(registry: VgpuRegistry): void {
  for (const v of registry.list()) registry.remove(v.uuid);
}

test('an 8 GiB board offers the GRID M60 types, 0B to 8Q, with instances = 8 GiB / framebuffer', () => {
  const { registry } = setup();
  assert.deepEqual(available(registry), {
    'simgpu-0B': 16, 'simgpu-0Q': 16, 'simgpu-1B': 8, 'simgpu-1Q': 8, 'simgpu-2B': 4, 'simgpu-2Q': 4, 'simgpu-4Q': 2, 'simgpu-8Q': 1,
  });
  const eightQ = registry.parent('simgpu0')!.types.get('simgpu-8Q')!.info();
  assert.equal(eightQ.name, 'GRID M60-8Q');
  assert.equal(eightQ.description, 'num_heads=4, framebuffer=8192M, max_resolution=4096x2160, max_instance=1');
  assert.equal(eightQ.attributes.framebuffer, String(8 * GiB));
});

test('type attributes: name, description, device_api, framebuffer, heads, resolution', () => {
  const { registry } = setup();
  const oneQ = registry.parent('simgpu0')!.types.get('simgpu-1Q')!.info();
  assert.deepEqual(oneQ, {
    id: 'simgpu-1Q',
    name: 'GRID M60-1Q',
    description: 'num_heads=2, framebuffer=1024M, max_resolution=4096x2160, max_instance=8',
    deviceApi: 'vfio-pci',
    availableInstances: 8,
    attributes: { framebuffer: '1073741824', heads: '2', resolution: '4096x2160', max_instances: '8' },
  });
  const fourQ = registry.parent('simgpu0')!.types.get('simgpu-4Q')!.info();
  assert.equal(fourQ.name, 'GRID M60-4Q');
  assert.equal(fourQ.description, 'num_heads=4, framebuffer=4096M, max_resolution=4096x2160, max_instance=2');
  assert.deepEqual(fourQ.attributes, { framebuffer: String(4 * GiB), heads: '4', resolution: '4096x2160', max_instances: '2' });
  const zeroB = registry.parent('simgpu0')!.types.get('simgpu-0B')!.info();
  assert.equal(zeroB.description, 'num_heads=2, framebuffer=512M, max_resolution=2560x1600, max_instance=16');
});

test('the proposal\'s example: after one 4Q is created only 4Q is still offered', () => {
  const { registry } = setup();
  const vgpu = registry.create('simgpu0', 'simgpu-4Q', 'c0b26072-dd1b-4340-84fe-bf338c510818');
  try {
    const offered = Object.entries(available(registry)).filter(([, n]) => n > 0);
    assert.deepEqual(offered, [['simgpu-4Q', 1]]);
    assert.equal(available(registry)['simgpu-0B'], 0);
  } finally {
    registry.remove(vgpu.uuid);
  }
});

test('capacity: a full board refuses ENOSPC; removing restores capacity and then every type', () => {
  const { registry, board } = setup();
  const a = registry.create('simgpu0', 'simgpu-4Q');
  const b = registry.create('simgpu0', 'simgpu-4Q');
  try {
    assert.equal(available(registry)['simgpu-4Q'], 0);
    assert.equal(board.framebufferUsed, 8 * GiB);
    assert.throws(() => registry.create('simgpu0', 'simgpu-4Q'), { code: 'ENOSPC' });
    assert.throws(() => registry.create('simgpu0', 'simgpu-1Q'), { code: 'ENOSPC' });
    registry.remove(a.uuid);
    assert.deepEqual(Object.entries(available(registry)).filter(([, n]) => n > 0), [['simgpu-4Q', 1]]);
  } finally {
    for (const v of [a, b]) if (registry.get(v.uuid)) registry.remove(v.uuid);
  }
  assert.equal(available(registry)['simgpu-0B'], 16);
  assert.equal(available(registry)['simgpu-1Q'], 8);
  assert.equal(board.framebufferUsed, 0);
});

test('slices: vGPUs get distinct framebuffer slices, and a freed slice comes back scrubbed', () => {
  const { registry, board } = setup({ framebufferSize: 2 * GiB });
  const first = registry.create('simgpu0', 'simgpu-1Q');
  const second = registry.create('simgpu0', 'simgpu-1Q');
  const [m1, m2] = board.vgpus;
  assert.notEqual(m1!.framebuffer, m2!.framebuffer);
  assert.deepEqual(board.vgpus.map((v) => v.boardOffset), [0, GiB]);
  m1!.framebuffer.write(0, new Uint8Array(4096).fill(0xab));
  const seen = new Uint8Array(4096);
  m2!.framebuffer.read(0, seen);
  assert.ok(seen.every((b) => b === 0), 'the other slice does not see it');
  registry.remove(first.uuid);
  const third = registry.create('simgpu0', 'simgpu-1Q');
  const m3 = board.vgpus.find((v) => v.uuid === third.uuid)!;
  assert.equal(m3.boardOffset, 0, 'the freed slot is reused');
  seen.fill(1);
  m3.framebuffer.read(0, seen);
  assert.ok(seen.every((b) => b === 0), 'no pixels of the previous tenant');
  registry.remove(second.uuid);
  registry.remove(third.uuid);
  assert.deepEqual(board.vgpus, []);
});

test('board options: a 4 GiB board offers types up to 4Q; several boards are independent', () => {
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  registry.addParent('simgpu', new SimGpuBoard({ name: 'simgpu0', framebufferSize: 4 * GiB }));
  registry.addParent('simgpu', new SimGpuBoard({ name: 'simgpu1', framebufferSize: 4 * GiB }));
  assert.deepEqual(available(registry, 'simgpu0'), {
    'simgpu-0B': 8, 'simgpu-0Q': 8, 'simgpu-1B': 4, 'simgpu-1Q': 4, 'simgpu-2B': 2, 'simgpu-2Q': 2, 'simgpu-4Q': 1,
  });
  registry.create('simgpu0', 'simgpu-2B');
  try {
    assert.equal(available(registry, 'simgpu0')['simgpu-0Q'], 0);
    assert.equal(available(registry, 'simgpu1')['simgpu-0Q'], 8, 'the other board is not narrowed');
  } finally {
    cleanup(registry);
  }
  assert.throws(() => new SimGpuBoard({ name: 'a/b' }), TypeError);
  assert.throws(() => new SimGpuBoard({ framebufferSize: 0 }), TypeError);
});

test('the board itself refuses a create beyond capacity with ENOSPC and a foreign type with EINVAL', () => {
  const board = new SimGpuBoard({ framebufferSize: GiB });
  const oneQ = board.type('1Q')!;
  const model = board.createVgpu(oneQ, '00000000-0000-0000-0000-000000000001');
  try {
    assert.throws(() => board.createVgpu(oneQ, '00000000-0000-0000-0000-000000000002'), { code: 'ENOSPC' });
    assert.throws(() => board.createVgpu({ name: 'nope', displayName: 'nope' }, '00000000-0000-0000-0000-000000000003'), { code: 'EINVAL' });
  } finally {
    board.removeVgpu(model);
  }
  assert.throws(() => board.removeVgpu(model), { code: 'ENODEV' });
  assert.equal(board.availableInstances(oneQ), 1);
});
