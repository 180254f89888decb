// Where the migration parity suite runs: a vGPU on the mock kernel (npm test: the
// counter example, whose migration flags are mtty's, STOP_COPY | P2P | PRE_COPY), or
// Linux 6.12's mtty sample in the kernel harness's guest (VGPU_SYS=native). Each case
// gets a fresh mdev, created through sysfs and opened with the ordinary VFIO client.
import os from 'node:os';
import { after } from 'node:test';
import { createMockSys, createNativeSys } from '../../src/sys/index.js';
import type { SysLayer } from '../../src/sys/types.js';
import { openPciDevice, type PciDeviceHandle } from '../../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { CounterParent, counterDriver } from '../../src/vendors/example/counter.js';

export interface MigrationTarget {
  readonly sys: SysLayer;
  readonly kind: 'mock' | 'native';
  /** What is under test: the kernel's mtty, or one of our vGPUs. */
  readonly device: 'mtty' | 'vgpu';
  readonly release: string;
  readonly flavour: '6.1' | '6.12';
  /** A new mdev of the type under test, opened: its handle. Closed and removed when `done` runs. */
  open(): { handle: PciDeviceHandle; done(): void };
}

let counter = 0;

function uuid(): string {
  counter++;
  return `6d1a7c00-0000-4000-8000-${(process.pid * 1000 + counter).toString(16).padStart(12, '0').slice(-12)}`;
}

function mdevTarget(sys: SysLayer, kind: 'mock' | 'native', device: 'mtty' | 'vgpu', typeDir: string, release: string): MigrationTarget {
  return {
    sys, kind, device, release,
    flavour: kind === 'mock' || !/^6\.1\./.test(release) ? '6.12' : '6.1',
    open() {
      const id = uuid();
      sys.sysfs.write(`${typeDir}/create`, id);
      let handle: PciDeviceHandle;
      try {
        handle = openPciDevice(sys, id);
      } catch (err) {
        sys.sysfs.write(`/sys/bus/mdev/devices/${id}/remove`, '1');
        throw err;
      }
      return {
        handle,
        done() {
          try {
            handle.close();
          } finally {
            sys.sysfs.write(`/sys/bus/mdev/devices/${id}/remove`, '1');
          }
        },
      };
    },
  };
}

export function migrationTarget(): MigrationTarget {
  if (process.env['VGPU_SYS'] === 'native') {
    return mdevTarget(createNativeSys(), 'native', 'mtty', '/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1', os.release());
  }
  const sys = createMockSys({ devices: [], kernel: '6.12' });
  const registry = new VgpuRegistry();
  registry.registerDriver(counterDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('counter', new CounterParent('counter0', 64));
  after(() => {
    for (const v of registry.list()) registry.remove(v.uuid);
  });
  return mdevTarget(sys, 'mock', 'vgpu', '/sys/class/mdev_bus/counter0/mdev_supported_types/counter-basic', os.release());
}
