// Writes to the mock mdev bus's sysfs: a type's `create`, a vGPU's `remove`, and every
// other attribute there (read-only ones must refuse), with values that mutate valid
// ones (a UUID, "1") or are random bytes. After each input every vGPU is removed and
// the bus must be back where it started: no vGPU, each type's available_instances as
// before, the accounting balanced.
import { isSysError } from '../../../src/addon/errors.js';
import type { SimGpuWorld } from '../../vendors/simgpu-world.js';
import { testUuid } from '../../vendors/simgpu-world.js';
import { Rng, fromHex, mutate, toHex } from '../rng.js';
import { FuzzFinding, check, describe, type FuzzTarget } from '../target.js';
import { accounting, checkBalanced, fuzzWorld } from '../world.js';

export interface SysfsInput {
  /** vGPUs created (through `create`) before the write. */
  before: number;
  path: string;
  /** The value's bytes (a sysfs write is bytes; the mock takes them as latin1 text). */
  hex: string;
}

interface Ctx {
  world: SimGpuWorld;
  paths: string[];
  available: Map<string, string>;
}

const TYPES = ['0Q', '0B', '1Q'];
const BOARD = '/sys/class/mdev_bus/simgpu0';

function availability(world: SimGpuWorld): Map<string, string> {
  const out = new Map<string, string>();
  for (const type of world.sys.sysfs.list(`${BOARD}/mdev_supported_types`)) {
    out.set(type, world.sys.sysfs.read(`${BOARD}/mdev_supported_types/${type}/available_instances`));
  }
  return out;
}

function open(): Ctx {
  const world = fuzzWorld();
  const paths: string[] = ['/sys/module/vfio_iommu_type1/parameters/dma_entry_limit'];
  for (const type of world.sys.sysfs.list(`${BOARD}/mdev_supported_types`)) {
    for (const attr of world.sys.sysfs.list(`${BOARD}/mdev_supported_types/${type}`)) paths.push(`${BOARD}/mdev_supported_types/${type}/${attr}`);
  }
  return { world, paths, available: availability(world) };
}

function generate(rng: Rng, ctx: Ctx): SysfsInput {
  const before = rng.below(3);
  const r = rng.below(10);
  let path: string;
  let value: string;
  if (r < 5) {
    path = `${BOARD}/mdev_supported_types/simgpu-${rng.pick(TYPES)}/create`;
    value = rng.pick([testUuid(0x100 + rng.below(4)), testUuid(1), `${testUuid(0x200)}\n`, testUuid(0x300).toUpperCase()]);
  } else if (r < 8) {
    path = `/sys/bus/mdev/devices/${testUuid(1 + rng.below(before + 1))}/remove`;
    value = rng.pick(['1', '1\n', '0', 'y']);
  } else {
    path = rng.pick(ctx.paths);
    value = rng.pick(['1', '65535', testUuid(9)]);
  }
  let bytes: Uint8Array = new Uint8Array(Buffer.from(value, 'latin1'));
  if (rng.chance(0.7)) bytes = mutate(rng, bytes, 8192);
  return { before, path, hex: toHex(bytes) };
}

export const sysfsTarget: FuzzTarget<Ctx, SysfsInput> = {
  name: 'sysfs',
  covers: 'writes to the mock mdev bus: create, remove and every type attribute, and the type1 dma_entry_limit',
  open,
  generate,
  run(ctx, input) {
    const { world } = ctx;
    const sysfs = world.sys.sysfs;
    const limit = sysfs.read('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit');
    const before = accounting(world);
    for (let i = 1; i <= input.before; i++) {
      try {
        world.create('0Q', testUuid(i));
      } catch (err) {
        throw new FuzzFinding(`creating vGPU ${i} of 2 that fit: ${describe(err)}`, err);
      }
    }
    try {
      sysfs.write(input.path, Buffer.from(fromHex(input.hex)).toString('latin1'));
    } catch (err) {
      if (!isSysError(err)) throw new FuzzFinding(`write ${input.path}: threw ${describe(err)}`, err);
    }
    const live = world.registry.list();
    check(live.length <= 2, () => `${live.length} vGPUs live on a board with room for 2`);
    for (const vgpu of live) {
      try {
        sysfs.write(`/sys/bus/mdev/devices/${vgpu.uuid}/remove`, '1');
      } catch (err) {
        throw new FuzzFinding(`remove ${vgpu.uuid} (nothing open): ${describe(err)}`, err);
      }
    }
    world.devices.clear();
    // The entry limit is the one attribute a write may change for good: put it back.
    sysfs.write('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', limit);
    const now = availability(world);
    for (const [type, n] of ctx.available) {
      check(now.get(type) === n, () => `${type} available_instances ${now.get(type)} with every vGPU removed, ${n} at the start`);
    }
    checkBalanced(before, accounting(world), `write ${input.path}`);
  },
  close(ctx) {
    ctx.world.close();
  },
};
