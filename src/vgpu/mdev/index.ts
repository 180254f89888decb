// The mock kernel's mdev bus, with each vGPU served by the core's VgpuDevice.
import type { MockKernel } from '../../sys/mock/kernel.js';
import type { VgpuRegistry } from '../registry.js';
import { MockMdevBus, type MockMdevBusOptions } from './bus.js';

export { MDEV_BUS_CLASS, MDEV_BUS_DEVICES, MockMdevBus } from './bus.js';
export type { MockMdevBusOptions } from './bus.js';
export { kstrtoul, parseCreateInput } from './sysfs-input.js';

/**
 * Presents `registry` on `kernel`'s mdev bus: its parents and types in sysfs now and
 * later, and each vGPU as a VgpuDevice in its own IOMMU group.
 */
export function attachMockKernel(registry: VgpuRegistry, kernel: MockKernel, options: Partial<MockMdevBusOptions> = {}): MockMdevBus {
  const bus = new MockMdevBus(registry, kernel, {
    createDevice: options.createDevice ?? ((vgpu) => vgpu.device),
    ...(options.parentDir ? { parentDir: options.parentDir } : {}),
  });
  registry.attach(bus);
  return bus;
}
