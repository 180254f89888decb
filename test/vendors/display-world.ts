// A mock host with a display parent on its mdev bus, for the display tests: the mock
// kernel, the registry, the mdev bus presenting each vGPU as a VFIO device. Tests act
// through sysfs and the VFIO client only.
import { readFileSync } from 'node:fs';
import { createMockSys, type MockSysLayer } from '../../src/sys/mock.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { DisplayParent, displayDriver, type DisplayParentOptions } from '../../src/vendors/display/index.js';

export interface DisplayWorld {
  readonly sys: MockSysLayer;
  readonly registry: VgpuRegistry;
  readonly parent: DisplayParent;
  typeDir(type: string): string;
  create(type: string, uuid: string): string;
  remove(uuid: string): void;
  close(): void;
}

export function displayWorld(options: DisplayParentOptions = {}): DisplayWorld {
  const sys = createMockSys({ devices: [] });
  const registry = new VgpuRegistry();
  registry.registerDriver(displayDriver);
  attachMockKernel(registry, sys.kernel);
  const parent = new DisplayParent(options);
  registry.addParent(displayDriver.name, parent);
  const typeDir = (type: string): string => `/sys/class/mdev_bus/${parent.name}/mdev_supported_types/display-${type}`;
  return {
    sys,
    registry,
    parent,
    typeDir,
    create(type, uuid) {
      sys.sysfs.write(`${typeDir(type)}/create`, uuid);
      return uuid;
    },
    remove(uuid) {
      sys.sysfs.write(`/sys/bus/mdev/devices/${uuid}/remove`, '1');
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

/** Mappings in this process of memfds whose name contains `part`: [count, bytes]. */
export function memfdMappings(part: string): [number, number] {
  let count = 0;
  let bytes = 0;
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    if (!line.includes('/memfd:') || !line.includes(part)) continue;
    const [start, end] = line.split(' ')[0]!.split('-').map((h) => BigInt(`0x${h}`));
    count++;
    bytes += Number(end! - start!);
  }
  return [count, bytes];
}
