// ioctl argument buffers on every fd kind of the mock kernel: the container (before and
// after SET_IOMMU, with a mapping), the group, a vfio-pci device (the simulated edu) and
// a vGPU device (simgpu on the mdev bus). Structured inputs mutate a valid argument of a
// request that fd kind knows; random ones send random bytes or integers to any request.
// Addresses and fds differ between runs, so a template names them by role ("patches")
// and the run fills them in: the input stays reproducible.
import { flags as K } from '../../../src/uapi/constants.js';
import { ioctls } from '../../../src/uapi/index.js';
import {
  vfio_device_feature, vfio_device_gfx_plane_info, vfio_device_info, vfio_device_ioeventfd, vfio_group_status, vfio_irq_info,
  vfio_irq_set, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get, vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info, vfio_pci_hot_reset, vfio_pci_hot_reset_info, vfio_region_info,
} from '../../../src/uapi/structs.js';
import type { SimGpuWorld } from '../../vendors/simgpu-world.js';
import { Rng, fromHex, mutate, toHex } from '../rng.js';
import { FuzzFinding, describe, type FuzzTarget } from '../target.js';
import { accounting, checkBalanced, fuzzWorld, EDU } from '../world.js';
import {
  DMA_BYTES, DMA_IOVA, FD_KINDS, VGPU_UUID, closeSession, isRefusal, newMockFds, openSession, type FdKind, type Session,
} from './vfio-session.js';

/** A value filled in at run time: the DMA buffer's address (+delta), or an fd of the session. */
type Role = 'buffer' | 'container' | 'group' | 'device' | 'eventfd0' | 'eventfd1' | 'eventfd2';
interface Patch { at: number; width: 4 | 8; role: Role; delta: number }

export interface IoctlInput {
  fd: FdKind;
  stage: number;
  request: number;
  /** Hex bytes passed by pointer, or null when `value` is passed by value. */
  hex: string | null;
  value: number;
  patches: Patch[];
  closeOrder: number;
}

interface Template { request: number; bytes?: Uint8Array; value?: number; patches?: Patch[]; stage?: number }

const I = ioctls;
const ARGSZ_ROOM = 256;

function withRoom(bytes: Uint8Array, room = ARGSZ_ROOM): Uint8Array {
  const out = new Uint8Array(Math.max(room, bytes.byteLength));
  out.set(bytes);
  return out;
}

function s32s(values: readonly number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  values.forEach((v, i) => new DataView(b.buffer).setInt32(i * 4, v, true));
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}

function templates(kind: FdKind, rng: Rng): Template[] {
  if (kind === 'container') {
    const dirtyGet = concat(vfio_iommu_type1_dirty_bitmap.encode({ argsz: 48, flags: K.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP }),
      vfio_iommu_type1_dirty_bitmap_get.encode({ iova: DMA_IOVA, size: BigInt(DMA_BYTES), bitmap_pgsize: 4096n, bitmap_size: 8n, bitmap_data: 0n }));
    return [
      { request: I.VFIO_GET_API_VERSION, value: 0, stage: 0 },
      { request: I.VFIO_CHECK_EXTENSION, value: rng.below(12), stage: rng.below(2) },
      { request: I.VFIO_SET_IOMMU, value: rng.pick([1, 3, 6, 7, 8]), stage: 0 },
      { request: I.VFIO_IOMMU_GET_INFO, bytes: withRoom(vfio_iommu_type1_info.encode({ argsz: rng.pick([24, ARGSZ_ROOM]), flags: 0, iova_pgsizes: 0n, cap_offset: 0 })), stage: 1 },
      {
        request: I.VFIO_IOMMU_MAP_DMA, stage: 1 + rng.below(2),
        bytes: vfio_iommu_type1_dma_map.encode({ argsz: 32, flags: 3, vaddr: 0n, iova: DMA_IOVA + BigInt(rng.below(3) * 0x4000), size: BigInt(DMA_BYTES) }),
        patches: [{ at: 8, width: 8, role: 'buffer', delta: 0 }],
      },
      { request: I.VFIO_IOMMU_UNMAP_DMA, stage: 2, bytes: vfio_iommu_type1_dma_unmap.encode({ argsz: 24, flags: rng.pick([0, 2]), iova: DMA_IOVA, size: BigInt(DMA_BYTES) }) },
      { request: I.VFIO_IOMMU_ENABLE, value: 0, stage: 1 },
      { request: I.VFIO_IOMMU_DISABLE, value: 0, stage: 1 },
      { request: I.VFIO_IOMMU_DIRTY_PAGES, stage: 2, bytes: vfio_iommu_type1_dirty_bitmap.encode({ argsz: 8, flags: rng.pick([1, 2]) }) },
      { request: I.VFIO_IOMMU_DIRTY_PAGES, stage: 2, bytes: dirtyGet, patches: [{ at: 40, width: 8, role: 'buffer', delta: 0x3000 }] },
    ];
  }
  if (kind === 'group') {
    return [
      { request: I.VFIO_GROUP_GET_STATUS, bytes: vfio_group_status.encode({ argsz: 8, flags: 0 }) },
      { request: I.VFIO_GROUP_SET_CONTAINER, bytes: s32s([0]), patches: [{ at: 0, width: 4, role: 'container', delta: 0 }], stage: 0 },
      { request: I.VFIO_GROUP_UNSET_CONTAINER, value: 0, stage: 1 },
      { request: I.VFIO_GROUP_GET_DEVICE_FD, bytes: new TextEncoder().encode(`${rng.pick([EDU, VGPU_UUID, '0000:00:05.0', ''])}\0`), stage: 1 },
    ];
  }
  const ev = rng.below(3) as 0 | 1 | 2;
  const setIrqs = (flags: number, data: Uint8Array, patches: Patch[] = []): Template => ({
    request: I.VFIO_DEVICE_SET_IRQS,
    bytes: concat(vfio_irq_set.encode({ argsz: 20 + data.byteLength, flags, index: rng.below(5), start: 0, count: data.byteLength / (flags & K.VFIO_IRQ_SET_DATA_EVENTFD ? 4 : 1) || rng.below(2) }), data),
    patches,
  });
  return [
    { request: I.VFIO_DEVICE_GET_INFO, bytes: withRoom(vfio_device_info.encode({ argsz: rng.pick([20, ARGSZ_ROOM]), flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0 })) },
    { request: I.VFIO_DEVICE_GET_REGION_INFO, bytes: withRoom(vfio_region_info.encode({ argsz: rng.pick([32, ARGSZ_ROOM]), flags: 0, index: rng.below(12), cap_offset: 0, size: 0n, offset: 0n })) },
    { request: I.VFIO_DEVICE_GET_IRQ_INFO, bytes: vfio_irq_info.encode({ argsz: 16, flags: 0, index: rng.below(6), count: 0 }) },
    setIrqs(K.VFIO_IRQ_SET_DATA_EVENTFD | K.VFIO_IRQ_SET_ACTION_TRIGGER, s32s([0, 0]),
      [{ at: 20, width: 4, role: `eventfd${ev}`, delta: 0 }, { at: 24, width: 4, role: 'eventfd2', delta: 0 }]),
    setIrqs(K.VFIO_IRQ_SET_DATA_NONE | rng.pick([K.VFIO_IRQ_SET_ACTION_TRIGGER, K.VFIO_IRQ_SET_ACTION_MASK, K.VFIO_IRQ_SET_ACTION_UNMASK]), new Uint8Array(0)),
    setIrqs(K.VFIO_IRQ_SET_DATA_BOOL | K.VFIO_IRQ_SET_ACTION_TRIGGER, new Uint8Array([1, 0])),
    { request: I.VFIO_DEVICE_RESET, value: 0 },
    { request: I.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, bytes: withRoom(vfio_pci_hot_reset_info.encode({ argsz: rng.pick([12, ARGSZ_ROOM]), flags: 0, count: 0 })) },
    {
      request: I.VFIO_DEVICE_PCI_HOT_RESET, bytes: concat(vfio_pci_hot_reset.encode({ argsz: 16, flags: 0, count: 1 }), s32s([0])),
      patches: [{ at: 12, width: 4, role: 'group', delta: 0 }],
    },
    { request: I.VFIO_DEVICE_QUERY_GFX_PLANE, bytes: vfio_device_gfx_plane_info.encode({ argsz: 64, flags: rng.pick([1, 2, 4, 3, 5]), drm_plane_type: rng.below(3) } as never) },
    { request: I.VFIO_DEVICE_GET_GFX_DMABUF, value: rng.below(4) },
    {
      request: I.VFIO_DEVICE_IOEVENTFD,
      bytes: vfio_device_ioeventfd.encode({ argsz: 32, flags: rng.pick([1, 2, 4, 8]), offset: BigInt(rng.below(0x100)) * 4n, data: rng.u64() & 0xffffn, fd: 0 }),
      patches: [{ at: 24, width: 4, role: `eventfd${ev}`, delta: 0 }],
    },
    { request: I.VFIO_DEVICE_FEATURE, bytes: withRoom(vfio_device_feature.encode({ argsz: rng.pick([8, 24, ARGSZ_ROOM]), flags: rng.pick([1, 2, 4]) << 16 | rng.below(12) }), 64) },
  ];
}

const REQUESTS = Object.values(ioctls);

function generate(rng: Rng): IoctlInput {
  const fd = rng.pick(FD_KINDS);
  const closeOrder = rng.below(3);
  if (rng.chance(0.75)) {
    const t = rng.pick(templates(fd, rng));
    const stage = rng.chance(0.8) && t.stage !== undefined ? t.stage : rng.below(3);
    let patches = t.patches ?? [];
    if (rng.chance(0.1)) patches = patches.slice(1);
    if (t.bytes) {
      const bytes = rng.chance(0.1) ? t.bytes : mutate(rng, t.bytes, 4096);
      return { fd, stage, request: t.request, hex: toHex(bytes), value: 0, patches, closeOrder };
    }
    const value = rng.chance(0.5) ? t.value! : Number(rng.interesting(4));
    return { fd, stage, request: t.request, hex: null, value, patches: [], closeOrder };
  }
  const request = rng.chance(0.8) ? rng.pick(REQUESTS) : rng.chance(0.5) ? (rng.pick(REQUESTS) + rng.below(5) - 2) >>> 0 : rng.u32();
  const byPointer = rng.chance(0.7);
  return {
    fd, stage: rng.below(3), request, hex: byPointer ? toHex(rng.bytes(rng.below(300))) : null,
    value: byPointer ? 0 : Number(rng.interesting(4)), patches: [], closeOrder,
  };
}

function fill(s: Session, bytes: Uint8Array, patches: readonly Patch[]): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const p of patches) {
    if (p.at < 0 || p.at + p.width > bytes.byteLength) continue;
    const value = p.role === 'buffer' ? s.buffer.address + BigInt(p.delta)
      : BigInt((p.role.startsWith('eventfd') ? s.eventfds[Number(p.role.slice(7))] : s[p.role as 'container' | 'group' | 'device']) ?? -1);
    if (p.width === 8) dv.setBigUint64(p.at, BigInt.asUintN(64, value), true);
    else dv.setInt32(p.at, Number(BigInt.asIntN(32, value)), true);
  }
}

export const ioctlTarget: FuzzTarget<SimGpuWorld, IoctlInput> = {
  name: 'ioctl',
  covers: 'ioctl argument buffers on container, group, vfio-pci device and vGPU device fds of the mock kernel',
  open: () => fuzzWorld(),
  generate,
  run(world, input) {
    const before = accounting(world);
    const s = openSession(world, input.fd, input.stage);
    let extra = new Set<number>();
    try {
      const fdsBefore = world.sys.kernel.fds.fds();
      let arg: number | Uint8Array = input.value;
      if (input.hex !== null) {
        arg = fromHex(input.hex);
        fill(s, arg, input.patches);
      }
      try {
        world.sys.ioctl(s.target, input.request, arg);
      } catch (err) {
        if (!isRefusal(err)) throw new FuzzFinding(`ioctl 0x${input.request.toString(16)} on a ${input.fd} fd threw ${describe(err)}`, err);
      } finally {
        extra = newMockFds(world, fdsBefore);
      }
      const locked = world.sys.kernel.locked.lockedPages;
      if (locked < 0) throw new FuzzFinding(`locked pages went negative (${locked})`);
    } finally {
      closeSession(s, input.closeOrder, extra);
    }
    checkBalanced(before, accounting(world), `ioctl 0x${input.request.toString(16)} on a ${input.fd} fd`);
  },
  close(world) {
    world.close();
  },
};

export { Rng };
