// Config-space (and BAR) writes and reads through a device fd: the simulated edu
// behind vfio-pci and a simgpu vGPU. Structured inputs aim at the header, BARs (sizing
// with all-ones), the command register and the capability chain with mutated values;
// random ones anywhere, any length. After each input the read-only identity (vendor,
// device, class) reads as before and the accounting balances once closed.
import { pciRegion } from '../../../src/uapi/constants.js';
import { ioctls, vfio_region_info } from '../../../src/uapi/index.js';
import type { SimGpuWorld } from '../../vendors/simgpu-world.js';
import { Rng, fromHex, mutate, toHex } from '../rng.js';
import { FuzzFinding, check, describe, type FuzzTarget } from '../target.js';
import { accounting, checkBalanced, fuzzWorld } from '../world.js';
import { closeSession, isRefusal, openSession, type Session } from './vfio-session.js';

interface Access { write: boolean; region: number; offset: number; hex: string; length: number }

export interface ConfigInput {
  fd: 'device' | 'vgpu';
  stage: number;
  accesses: Access[];
}

const CONFIG = pciRegion.VFIO_PCI_CONFIG_REGION_INDEX;
/** Offsets worth aiming at: the header's registers and the usual capability places. */
const HOT = [0x00, 0x02, 0x04, 0x06, 0x08, 0x0c, 0x0d, 0x0e, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x2c, 0x30, 0x34, 0x3c, 0x3d,
  0x40, 0x42, 0x44, 0x48, 0x4c, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xfc, 0xfe, 0xff, 0x100, 0x104, 0xffc, 0xfff, 0x1000];

function access(rng: Rng): Access {
  const write = rng.chance(0.7);
  const region = rng.chance(0.8) ? CONFIG : rng.below(10);
  const offset = rng.chance(0.7) ? rng.pick(HOT) + (rng.chance(0.2) ? rng.below(4) : 0) : rng.chance(0.5) ? rng.below(0x1100) : Number(rng.interesting(4));
  const length = rng.pick([1, 2, 4, 4, 4, 8, 3, 0, 16, 64, 256]);
  let bytes = rng.chance(0.3) ? new Uint8Array(length).fill(0xff) : rng.bytes(length);
  if (rng.chance(0.3)) bytes = mutate(rng, bytes, 512);
  return { write, region, offset, hex: toHex(bytes), length: write ? bytes.byteLength : length };
}

function generate(rng: Rng): ConfigInput {
  const accesses: Access[] = [];
  for (let n = 1 + rng.below(6); n > 0; n--) accesses.push(access(rng));
  return { fd: rng.chance(0.5) ? 'device' : 'vgpu', stage: 1 + rng.below(2), accesses };
}

function regionOffset(s: Session, index: number): bigint {
  const arg = vfio_region_info.encode({ argsz: 32, flags: 0, index, cap_offset: 0, size: 0n, offset: 0n });
  try {
    s.world.sys.ioctl(s.device!, ioctls.VFIO_DEVICE_GET_REGION_INFO, arg);
    return vfio_region_info.decode(arg).offset;
  } catch {
    // A region the device does not have: aim where it would be (vfio-pci: index << 40).
    return BigInt(index) << 40n;
  }
}

function identity(s: Session, configAt: bigint): string {
  const id = new Uint8Array(12);
  s.world.sys.pread(s.device!, id, configAt);
  // vendor, device (0..3), revision and class (8..11).
  return toHex(id.subarray(0, 4)) + toHex(id.subarray(8, 12));
}

export const configTarget: FuzzTarget<SimGpuWorld, ConfigInput> = {
  name: 'config',
  covers: 'config-space and BAR reads/writes through device fds (simulated edu on vfio-pci, simgpu vGPU)',
  open: () => fuzzWorld(),
  generate,
  run(world, input) {
    const before = accounting(world);
    const s = openSession(world, input.fd, input.stage);
    try {
      const configAt = regionOffset(s, CONFIG);
      const id = identity(s, configAt);
      for (const a of input.accesses) {
        const at = regionOffset(s, a.region) + BigInt(a.offset);
        try {
          if (a.write) world.sys.pwrite(s.device!, fromHex(a.hex), at);
          else world.sys.pread(s.device!, new Uint8Array(Math.max(0, a.length)), at);
        } catch (err) {
          if (!isRefusal(err)) throw new FuzzFinding(`${a.write ? 'pwrite' : 'pread'} region ${a.region} +0x${a.offset.toString(16)} (${a.length} bytes) threw ${describe(err)}`, err);
        }
      }
      const after = identity(s, configAt);
      check(after === id, () => `read-only identity changed: ${id} before, ${after} after the writes`);
    } finally {
      closeSession(s, 0, new Set());
    }
    checkBalanced(before, accounting(world), 'config accesses');
  },
  close(world) {
    world.close();
  },
};
