// A VFIO device fd: every call goes to the device (its vfio_device_ops); the mock
// kernel only remembers the mappings it makes, so they can be handed to MAP_DMA.
import type { Mapping } from '../types.js';
import type { MockFile } from './fd-table.js';
import type { DeviceNode, GroupHost } from './group.js';

export class DeviceFile implements MockFile {
  readonly kind = 'device';

  constructor(readonly node: DeviceNode, private readonly host: GroupHost) {}

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    return this.node.device.ioctl(request, arg);
  }

  pread(buf: Uint8Array, offset: bigint): number {
    return this.node.device.read(buf, offset);
  }

  pwrite(buf: Uint8Array, offset: bigint): number {
    return this.node.device.write(buf, offset);
  }

  mmap(offset: bigint, length: number, prot: number): Mapping {
    const mapping = this.node.device.mmap(offset, length, prot);
    this.host.registerDeviceMapping(mapping, prot);
    return mapping;
  }

  release(): void {
    this.node.group.releaseDevice(this.node);
  }
}
