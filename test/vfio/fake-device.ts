// A small vfio device for the mock kernel whose region infos carry capability chains
// (sparse mmap, region type, MSI-X mappable) that the simulated edu does not have,
// and whose region offsets are page-based like the mdev samples', not index << 40.
// It answers the argsz protocol the way the kernel does.
import type { DeviceContext, DeviceBackend } from '../../src/device/backend.js';
import { createSharedMemory, type SharedMemory } from '../../src/device/memory.js';
import type { Mapping } from '../../src/sys/types.js';
import { sysError } from '../../src/addon/errors.js';
import { ioctls } from '../../src/uapi/ioctls.js';
import { flags, regionTypes } from '../../src/uapi/constants.js';
import { vfio_device_info, vfio_irq_info, vfio_region_info } from '../../src/uapi/structs.js';
import { chainCaps, msixMappableCap, regionTypeCap, sparseMmapCap, type Cap } from '../../src/uapi/caps.js';

/** Where region `index` starts in the fd: 1 MiB apart. */
export const fakeRegionOffset = (index: number): bigint => BigInt(index) << 20n;

const R = flags.VFIO_REGION_INFO_FLAG_READ;
const W = flags.VFIO_REGION_INFO_FLAG_WRITE;
const M = flags.VFIO_REGION_INFO_FLAG_MMAP;

interface FakeRegion { size: number; flags: number; caps: Cap[] }

export const fakeSparseAreas = [{ offset: 0n, size: 0x1000n }, { offset: 0x3000n, size: 0x2000n }];

const regions: Record<number, FakeRegion> = {
  0: { size: 0x10000, flags: R | W | M, caps: [sparseMmapCap(fakeSparseAreas), msixMappableCap()] },
  2: { size: 0x4000, flags: R | W, caps: [] },
  7: { size: 256, flags: R | W, caps: [] },
  9: { size: 0x100, flags: R, caps: [regionTypeCap(regionTypes.VFIO_REGION_TYPE_GFX, regionTypes.VFIO_REGION_SUBTYPE_GFX_EDID)] },
  // Past num_regions, as the kernel's mdpy names its display plane's region 16.
  16: { size: 0x1000, flags: R | W | M, caps: [] },
};

const irqs: Record<number, { flags: number; count: number }> = {
  0: { flags: 0x7, count: 1 },
  1: { flags: 0x9, count: 4 },
  2: { flags: 0x9, count: 0 },
  4: { flags: 0x9, count: 1 },
};

export interface FakeDevice extends DeviceBackend {
  /** Offsets and lengths the device was asked to mmap. */
  readonly mmaps: { offset: bigint; length: number }[];
  /** BAR2's bytes (trapped read/write). */
  readonly bar2: Uint8Array;
}

export function createFakeDevice(name: string): FakeDevice {
  const bar2 = new Uint8Array(0x4000);
  const mmaps: { offset: bigint; length: number }[] = [];
  let bar0: SharedMemory | undefined;

  function regionInfo(arg: Uint8Array): number {
    if (arg.byteLength < vfio_region_info.size) throw sysError('EFAULT', 'ioctl');
    const { argsz, index } = vfio_region_info.decode(arg);
    if (argsz < vfio_region_info.size) throw sysError('EINVAL', 'ioctl');
    if ((index >= 10 && index !== 16) || index === 8) throw sysError('EINVAL', 'ioctl');
    const r = regions[index] ?? { size: 0, flags: 0, caps: [] };
    const chain = r.caps.length > 0 ? chainCaps(r.caps, vfio_region_info.size) : undefined;
    const needed = vfio_region_info.size + (chain?.byteLength ?? 0);
    const fits = argsz >= needed;
    vfio_region_info.write(arg, {
      argsz: fits ? argsz : needed,
      flags: r.flags | (chain ? flags.VFIO_REGION_INFO_FLAG_CAPS : 0),
      cap_offset: fits && chain ? vfio_region_info.size : 0,
      size: BigInt(r.size),
      offset: fakeRegionOffset(index),
    });
    if (fits && chain) arg.set(chain, vfio_region_info.size);
    return 0;
  }

  function locate(offset: bigint): { index: number; at: number } {
    const index = Number(offset >> 20n);
    const at = Number(offset & 0xfffffn);
    const r = regions[index];
    if (!r || at >= r.size) throw sysError('EINVAL', 'pread');
    return { index, at };
  }

  return {
    name,
    mmaps,
    bar2,
    open(_ctx: DeviceContext) {
      bar0 = createSharedMemory(`fake-${name}-bar0`, 0x10000);
    },
    close() {
      bar0?.close();
      bar0 = undefined;
    },
    ioctl(request, arg) {
      if (!(arg instanceof Uint8Array)) throw sysError('ENOTTY', 'ioctl');
      switch (request) {
        case ioctls.VFIO_DEVICE_GET_INFO: {
          if (vfio_device_info.decode(arg).argsz < 16) throw sysError('EINVAL', 'ioctl');
          vfio_device_info.write(arg, { flags: flags.VFIO_DEVICE_FLAGS_PCI, num_regions: 10, num_irqs: 5 });
          return 0;
        }
        case ioctls.VFIO_DEVICE_GET_REGION_INFO:
          return regionInfo(arg);
        case ioctls.VFIO_DEVICE_GET_IRQ_INFO: {
          const { index } = vfio_irq_info.decode(arg);
          const irq = irqs[index];
          if (!irq) throw sysError('EINVAL', 'ioctl');
          vfio_irq_info.write(arg, irq);
          return 0;
        }
        default:
          throw sysError('ENOTTY', 'ioctl');
      }
    },
    read(buf, offset) {
      const { index, at } = locate(offset);
      if (index === 2) {
        const n = Math.min(buf.byteLength, bar2.byteLength - at);
        buf.set(bar2.subarray(at, at + n));
        return n;
      }
      buf.fill(0);
      return Math.min(buf.byteLength, regions[index]!.size - at);
    },
    write(buf, offset) {
      const { index, at } = locate(offset);
      const n = Math.min(buf.byteLength, regions[index]!.size - at);
      if (index === 2) bar2.set(buf.subarray(0, n), at);
      return n;
    },
    mmap(offset, length, prot): Mapping {
      mmaps.push({ offset, length });
      if (!bar0 || offset < fakeRegionOffset(0) || offset + BigInt(length) > fakeRegionOffset(0) + 0x10000n) throw sysError('EINVAL', 'mmap');
      return bar0.map(Number(offset), length, prot);
    },
  };
}
