// One user of the mock kernel's VFIO fds, set up to a chosen stage and torn down in a
// chosen order, for the ioctl and config-space targets. A stage is how far the user
// got: 0 the fd alone, 1 container + group + TYPE1v2 (+ device fd), 2 one DMA mapping.
import { isSysError } from '../../../src/addon/errors.js';
import type { Mapping } from '../../../src/sys/types.js';
import { ioctls, vfio_iommu_type1_dma_map } from '../../../src/uapi/index.js';
import { Group } from '../../../src/vfio/group.js';
import type { SimGpuWorld } from '../../vendors/simgpu-world.js';
import { testUuid } from '../../vendors/simgpu-world.js';
import { FuzzFinding, describe } from '../target.js';
import { EDU } from '../world.js';

export type FdKind = 'container' | 'group' | 'device' | 'vgpu';
export const FD_KINDS: readonly FdKind[] = ['container', 'group', 'device', 'vgpu'];

export const TYPE1v2 = 3;
/** The user's DMA buffer: 4 pages, mapped at DMA_IOVA from stage 2. */
export const DMA_BYTES = 0x4000;
export const DMA_IOVA = 0x10_0000n;
export const VGPU_UUID = testUuid(0xf022);
/** Eventfds every session holds, for SET_IRQS and IOEVENTFD to name. */
export const EVENTFDS = 3;

export interface Session {
  readonly world: SimGpuWorld;
  readonly kind: FdKind;
  container: number | undefined;
  group: number | undefined;
  device: number | undefined;
  readonly buffer: Mapping;
  readonly eventfds: number[];
  /** The fd the input is aimed at. */
  readonly target: number;
}

function fdArg(fd: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, fd, true);
  return b;
}

/** Setting up is known-good use: any error in it is a finding, not a refusal. */
function setup<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new FuzzFinding(`setting up (${what}) failed: ${describe(err)}`, err);
  }
}

export function openSession(world: SimGpuWorld, kind: FdKind, stage: number): Session {
  const { sys } = world;
  const s: Session = {
    world, kind, container: undefined, group: undefined, device: undefined,
    buffer: sys.allocate(DMA_BYTES), eventfds: [], target: -1,
  };
  try {
    for (let i = 0; i < EVENTFDS; i++) s.eventfds.push(sys.eventfd(0));
    const name = kind === 'vgpu' ? setup('create the vGPU', () => world.create('0Q', VGPU_UUID)) : EDU;
    s.container = sys.open('/dev/vfio/vfio');
    let target = s.container;
    if (kind !== 'container' || stage >= 1) {
      s.group = setup('open the group', () => sys.open(`/dev/vfio/${Group.numberOf(sys, name)}`));
      if (kind === 'group') target = s.group;
      if (stage >= 1 || kind === 'device' || kind === 'vgpu') {
        setup('SET_CONTAINER', () => sys.ioctl(s.group!, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(s.container!)));
        setup('SET_IOMMU', () => sys.ioctl(s.container!, ioctls.VFIO_SET_IOMMU, TYPE1v2));
      }
      if (kind === 'device' || kind === 'vgpu') {
        s.device = setup('GET_DEVICE_FD', () => sys.ioctl(s.group!, ioctls.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${name}\0`)));
        target = s.device;
      }
      if (stage >= 2) {
        setup('MAP_DMA', () => sys.ioctl(s.container!, ioctls.VFIO_IOMMU_MAP_DMA, vfio_iommu_type1_dma_map.encode({
          argsz: 32, flags: 3, vaddr: s.buffer.address, iova: DMA_IOVA, size: BigInt(DMA_BYTES),
        })));
      }
    }
    return { ...s, target };
  } catch (err) {
    closeSession(s, 0, new Set());
    throw err;
  }
}

/**
 * Closes what the session and the input opened, in one of the orders a user may
 * choose (device first as QEMU does, or the container or group first), then removes
 * the vGPU. close(2) and remove never fail here: that would be a finding.
 */
export function closeSession(s: Session, order: number, extraFds: Set<number>): void {
  const { sys } = s.world;
  const fds = [s.device, s.group, s.container].filter((fd): fd is number => fd !== undefined);
  const orders = [fds, [...fds].reverse(), [fds[1], fds[0], fds[2]].filter((fd): fd is number => fd !== undefined)];
  const chosen = orders[order % orders.length]!;
  const problems: string[] = [];
  for (const fd of [...extraFds, ...chosen, ...s.eventfds]) {
    try {
      sys.close(fd);
    } catch (err) {
      problems.push(`close(${fd}): ${describe(err)}`);
    }
  }
  sys.munmap(s.buffer);
  if (s.kind === 'vgpu' && s.world.registry.get(VGPU_UUID)) {
    try {
      s.world.remove(VGPU_UUID);
    } catch (err) {
      problems.push(`remove the vGPU with every fd closed: ${describe(err)}`);
    }
  }
  if (problems.length) throw new FuzzFinding(problems.join('; '));
}

/** The mock fds that appeared while `fn` ran (a GET_DEVICE_FD's answer): the user now owns them. */
export function newMockFds(world: SimGpuWorld, before: readonly number[]): Set<number> {
  const had = new Set(before);
  return new Set(world.sys.kernel.fds.fds().filter((fd) => !had.has(fd)));
}

export function isRefusal(err: unknown): boolean {
  return isSysError(err) && /^E[A-Z0-9]+$/.test(String(err.code));
}
