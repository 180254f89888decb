// Shared fixtures for the mock kernel's tests: a minimal fake PCI device (counts its
// opens and closes, keeps the DeviceContext it was given, maps one shared-memory BAR
// at offset 0 while open) and encoders for the ioctl arguments the tests pass.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { ioctls, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap } from '../../src/uapi/index.js';
import { sysError } from '../../src/addon/errors.js';
import { createMockSys, type MockSysLayer, type MockSysOptions } from '../../src/sys/mock.js';
import type { DeviceContext } from '../../src/device/backend.js';
import { createSharedMemory, type SharedMemory } from '../../src/device/memory.js';
import type { ErrnoCode } from '../../src/addon/errors.js';
import type { Mapping } from '../../src/sys/types.js';
import type { MockPciDevice } from '../../src/sys/mock/pci/model.js';

export const TYPE1 = 1;
export const TYPE1v2 = 3;

export interface FakeDevice extends MockPciDevice {
  ctx: DeviceContext | undefined;
  opens: number;
  closes: number;
  /** The BAR's memory while the device is open (made on open, closed on close). */
  bar: SharedMemory | undefined;
}

export function fakePciDevice(name: string, barSize = 0x4000): FakeDevice {
  const dev: FakeDevice = {
    name,
    pci: { vendor: 0x1234, device: 0x11e8, subsystemVendor: 0x1af4, subsystemDevice: 0x1100, classCode: 0x00ff00, revision: 0x10 },
    ctx: undefined,
    opens: 0,
    closes: 0,
    bar: undefined,
    open(ctx) { dev.opens++; dev.ctx = ctx; dev.bar = createSharedMemory(`fake-${name}`, barSize); },
    close() { dev.closes++; dev.ctx = undefined; dev.bar?.close(); dev.bar = undefined; },
    ioctl() { throw sysError('ENOTTY', 'ioctl'); },
    read() { throw sysError('EINVAL', 'pread'); },
    write() { throw sysError('EINVAL', 'pwrite'); },
    mmap(offset, length, prot): Mapping {
      if (offset !== 0n) throw sysError('EINVAL', 'mmap');
      return dev.bar!.map(0, length, prot);
    },
  };
  return dev;
}

/** A mock sys with fake devices at 0000:00:04.0 (group 0) and 0000:00:05.0 (group 1). */
export function mockWithDevices(options: MockSysOptions = {}): { sys: MockSysLayer; a: FakeDevice; b: FakeDevice } {
  const a = fakePciDevice('0000:00:04.0');
  const b = fakePciDevice('0000:00:05.0');
  const sys = createMockSys({ ...options, devices: [a, b] });
  return { sys, a, b };
}

export function fdArg(fd: number): Uint8Array {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, fd, true);
  return buf;
}

export function nameArg(name: string): Uint8Array {
  return new TextEncoder().encode(`${name}\0`);
}

export function mapArg(vaddr: bigint, iova: bigint, size: bigint, flags = 3, argsz = 32): Uint8Array {
  return vfio_iommu_type1_dma_map.encode({ argsz, flags, vaddr, iova, size });
}

export function unmapArg(iova: bigint, size: bigint, flags = 0, argsz = 24): Uint8Array {
  return vfio_iommu_type1_dma_unmap.encode({ argsz, flags, iova, size }, Math.max(argsz, 24));
}

export function unmappedSize(arg: Uint8Array): bigint {
  return vfio_iommu_type1_dma_unmap.decode(arg).size;
}

export function assertErrno(fn: () => unknown, code: ErrnoCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String((err as Error).message)}`);
    return true;
  });
}

/** Container + group of `device` (group fd), IOMMU set to `type`. */
export function openContainer(sys: MockSysLayer, group: number, type = TYPE1v2): { container: number; group: number } {
  const container = sys.open('/dev/vfio/vfio');
  const g = sys.open(`/dev/vfio/${group}`);
  sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
  sys.ioctl(container, ioctls.VFIO_SET_IOMMU, type);
  return { container, group: g };
}

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
