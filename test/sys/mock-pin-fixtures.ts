// Fixtures for the pinning tests (mock-pin*.test.ts, mock-dirty-pins.test.ts): a
// mediated device that pins through its DmaSpace and answers dma_unmap as told, and a
// mock sys with such devices in emulated (mdev-style) groups.
import { ioctls } from '../../src/uapi/index.js';
import { ContainerFile } from '../../src/sys/mock/container.js';
import type { Type1Iommu } from '../../src/sys/mock/type1.js';
import { createMockSys, type MockSysLayer, type MockSysOptions } from '../../src/sys/mock.js';
import { fakePciDevice, fdArg, mapArg, nameArg, openContainer, type FakeDevice } from './mock-helpers.js';

export const PAGE = 4096n;
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const MDEV_A = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
export const MDEV_B = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';

/** How a device answers dma_unmap: unpin all it holds in the range, one page a call, nothing, or throw. */
export type UnmapMode = 'unpin' | 'one' | 'ignore' | 'throw';

export interface PinningDevice extends FakeDevice {
  /** The IOVA of each pin it holds (a page pinned twice is listed twice). */
  held: bigint[];
  /** Every dma_unmap call, with whether the mapping was still there (DMA to its first byte worked). */
  calls: { iova: bigint; length: bigint; mapped: boolean }[];
  mode: UnmapMode;
  /** Pins through the device's DmaSpace and remembers what it holds. */
  pin(iova: bigint, npage: number, prot?: number): Uint8Array[];
  unpin(iova: bigint, npage: number): void;
}

export function pinningDevice(name: string, withDmaUnmap = true): PinningDevice {
  const dev = fakePciDevice(name) as PinningDevice;
  dev.held = [];
  dev.calls = [];
  dev.mode = 'unpin';
  dev.pin = (iova, npage, prot = IOMMU_READ | IOMMU_WRITE) => {
    const views = dev.ctx!.dma.pin(iova, npage, prot);
    for (let i = 0; i < npage; i++) dev.held.push(iova + BigInt(i) * PAGE);
    return views;
  };
  dev.unpin = (iova, npage) => {
    dev.ctx!.dma.unpin(iova, npage);
    for (let i = 0; i < npage; i++) dev.held.splice(dev.held.indexOf(iova + BigInt(i) * PAGE), 1);
  };
  if (withDmaUnmap) {
    dev.dmaUnmap = (iova, length) => {
      let mapped = true;
      try { dev.ctx!.dma.read(iova, new Uint8Array(1)); } catch { mapped = false; }
      dev.calls.push({ iova, length, mapped });
      if (dev.mode === 'throw') throw new Error('dma_unmap went wrong');
      if (dev.mode === 'ignore') return;
      const inRange = dev.held.filter((at) => at >= iova && at < iova + length);
      for (const at of dev.mode === 'one' ? inRange.slice(0, 1) : inRange) dev.unpin(at, 1);
    };
  }
  return dev;
}

export interface PinSys {
  sys: MockSysLayer;
  a: PinningDevice;
  /** A's group: emulated (not IOMMU-backed). */
  groupA: number;
  container: number;
  groupFd: number;
  deviceFd: number;
  iommu: () => Type1Iommu;
  /** Maps `pages` fresh pages of user memory at `iova`; returns the memory. */
  map(iova: bigint, pages: number, flags?: number): ReturnType<MockSysLayer['allocate']>;
}

/** A mock kernel (no PCI devices) with device A in its own emulated group, its container (v2 by default) and device fd open. */
export function pinSys(options: MockSysOptions & { type?: number; aHasDmaUnmap?: boolean } = {}): PinSys {
  const sys = createMockSys({ devices: [], capIpcLock: false, memlockLimit: 64 * 4096, ...options });
  const a = pinningDevice(MDEV_A, options.aHasDmaUnmap ?? true);
  const groupA = sys.kernel.registerDevice(a, { iommuBacked: false });
  const { container, group: groupFd } = openContainer(sys, groupA, options.type);
  const deviceFd = sys.ioctl(groupFd, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg(MDEV_A));
  const iommu = () => iommuOf(sys, container);
  const map = (iova: bigint, pages: number, flags = 3) => {
    const mem = sys.allocate(pages * 4096);
    sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, iova, BigInt(pages) * PAGE, flags));
    return mem;
  };
  return { sys, a, groupA, container, groupFd, deviceFd, iommu, map };
}

/** Registers another device in its own group, joins it to `container` and opens it. */
export function addDevice(sys: MockSysLayer, container: number, device: FakeDevice, iommuBacked = false): { group: number; groupFd: number; deviceFd: number } {
  const group = sys.kernel.registerDevice(device, { iommuBacked });
  const groupFd = sys.open(`/dev/vfio/${group}`);
  sys.ioctl(groupFd, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
  const deviceFd = sys.ioctl(groupFd, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg(device.name));
  return { group, groupFd, deviceFd };
}

export function iommuOf(sys: MockSysLayer, container: number): Type1Iommu {
  const file = sys.kernel.fds.get(container);
  if (!(file instanceof ContainerFile) || !file.container.iommu) throw new Error(`fd ${container} is not a container with an IOMMU`);
  return file.container.iommu;
}

/** Collects process warnings of the mock kernel until stop() (they are emitted on the next tick). */
export function captureWarnings(): { stop(): Promise<Error[]> } {
  const seen: Error[] = [];
  const listener = (w: Error) => { if (w.name === 'VfioMockWarning') seen.push(w); };
  process.on('warning', listener);
  return {
    async stop() {
      await new Promise((resolve) => setImmediate(resolve));
      process.off('warning', listener);
      return seen;
    },
  };
}
