// A mock host with simgpu boards on its mdev bus, for the simgpu tests: the mock
// kernel (no PCI devices), the registry, the mdev bus presenting each vGPU as a VFIO
// device, and the boards. Tests then act only through sysfs and the VFIO client.
import { createMockSys, type MockSysLayer, type MockSysOptions } from '../../src/sys/mock.js';
import { VgpuDevice } from '../../src/vgpu/device/vgpu-device.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { SimGpuBoard, simgpuDriver, type SimGpuBoardOptions } from '../../src/vendors/simgpu/index.js';

export interface SimGpuWorld {
  readonly sys: MockSysLayer;
  readonly registry: VgpuRegistry;
  readonly boards: readonly SimGpuBoard[];
  readonly devices: Map<string, VgpuDevice>;
  /** The type directory of a board's type in sysfs. */
  typeDir(type: string, board?: string): string;
  /** Writes a UUID to the type's sysfs `create` file. */
  create(type: string, uuid: string, board?: string): string;
  /** Writes 1 to the vGPU's sysfs `remove` file. */
  remove(uuid: string): void;
  /** Removes every vGPU left. */
  close(): void;
}

export function simgpuWorld(boards: readonly SimGpuBoardOptions[] = [{}], sysOptions: MockSysOptions = {}): SimGpuWorld {
  const sys = createMockSys({ devices: [], ...sysOptions });
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  const devices = new Map<string, VgpuDevice>();
  // The core's own device, kept here so tests can ask it what the vendor left pinned.
  attachMockKernel(registry, sys.kernel, {
    createDevice: (vgpu) => {
      const device = new VgpuDevice(vgpu.uuid, vgpu.model, vgpu, { vendor: vgpu.parent.driver.name, type: vgpu.type.id });
      devices.set(vgpu.uuid, device);
      return device;
    },
  });
  const made = boards.map((options, i) => new SimGpuBoard({ name: `simgpu${i}`, ...options }));
  for (const board of made) registry.addParent('simgpu', board);
  const typeDir = (type: string, board = 'simgpu0'): string => `/sys/class/mdev_bus/${board}/mdev_supported_types/simgpu-${type}`;
  return {
    sys,
    registry,
    boards: made,
    devices,
    typeDir,
    create(type, uuid, board) {
      sys.sysfs.write(`${typeDir(type, board)}/create`, uuid);
      return uuid;
    },
    remove(uuid) {
      sys.sysfs.write(`/sys/bus/mdev/devices/${uuid}/remove`, '1');
      devices.delete(uuid);
    },
    close() {
      for (const v of registry.list()) registry.remove(v.uuid);
    },
  };
}

/** UUIDs for tests: 00000000-0000-4000-8000-<n as 12 hex digits>. */
export function testUuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}
