// Fixtures for the mdev bus tests: a mock sys (with its simulated edu in group 0), a
// registry with the tgpu vendor's board0 on it, and the mdev bus attached.
import { ioctls } from '../../src/uapi/index.js';
import { createMockSys, type MockSysLayer } from '../../src/sys/mock.js';
import type { DeviceBackend } from '../../src/device/backend.js';
import { MockMdevBus } from '../../src/vgpu/mdev/bus.js';
import { VgpuRegistry, type Vgpu } from '../../src/vgpu/registry.js';
import { fdArg, nameArg, TYPE1v2 } from '../sys/mock-helpers.js';
import { DRIVER, fakeVgpuDevice, TestBoard } from './registry-vendor.js';

export const PARENT_DIR = '/sys/devices/virtual/tgpu/board0';
export const TYPES_DIR = `${PARENT_DIR}/mdev_supported_types`;

export interface MdevFixture {
  sys: MockSysLayer;
  registry: VgpuRegistry;
  board: TestBoard;
  bus: MockMdevBus;
}

export function mdevFixture(createDevice: (vgpu: Vgpu) => DeviceBackend = fakeVgpuDevice): MdevFixture {
  const sys = createMockSys();
  const registry = new VgpuRegistry();
  registry.registerDriver(DRIVER);
  const board = new TestBoard('board0');
  registry.addParent('tgpu', board);
  const bus = new MockMdevBus(registry, sys.kernel, { createDevice });
  registry.attach(bus);
  return { sys, registry, board, bus };
}

/** The IOMMU group of a vGPU, as a user finds it: through /sys/bus/mdev/devices/<uuid>/iommu_group. */
export function groupOf(sys: MockSysLayer, uuid: string): number {
  const link = sys.sysfs.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`);
  return Number(link.slice(link.lastIndexOf('/') + 1));
}

/** Opens a vGPU's group, container (TYPE1v2) and device fd with raw ioctls (closing them if that fails); close() undoes it. */
export function openRaw(sys: MockSysLayer, uuid: string): { container: number; group: number; device: number; close(): void } {
  const container = sys.open('/dev/vfio/vfio');
  const group = sys.open(`/dev/vfio/${groupOf(sys, uuid)}`);
  sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
  sys.ioctl(container, ioctls.VFIO_SET_IOMMU, TYPE1v2);
  let device: number;
  try {
    device = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg(uuid));
  } catch (err) {
    sys.close(group);
    sys.close(container);
    throw err;
  }
  return {
    container, group, device,
    close() {
      sys.close(device);
      sys.close(group);
      sys.close(container);
    },
  };
}
