// A VFIO device fd: every call goes to the device (its vfio_device_ops), except
// VFIO_DEVICE_FEATURE, which the core runs first as vfio_main.c does (migration and DMA
// logging through the device's ops, the rest to the device's own handler); the mock
// kernel also remembers the mappings it makes, so they can be handed to MAP_DMA.
import { deviceFeatureIoctl } from '../../device/migration/feature.js';
import { ioctls } from '../../uapi/ioctls.js';
import type { Mapping } from '../types.js';
import { mockFeatureTransport } from './device-feature.js';
import { userPointer } from './user-args.js';
import type { MockFile } from './fd-table.js';
import type { DeviceNode, GroupHost } from './group.js';

export class DeviceFile implements MockFile {
  readonly kind = 'device';

  constructor(readonly node: DeviceNode, private readonly host: GroupHost) {}

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    const device = this.node.device;
    if (request !== ioctls.VFIO_DEVICE_FEATURE) return device.ioctl(request, arg);
    const buf = userPointer(arg, 'VFIO_DEVICE_FEATURE');
    const transport = mockFeatureTransport(this.host.fds, this.host.mm, this.host.flavour, this.host.pageSize, this.host.dirtyReports);
    return deviceFeatureIoctl(buf, device, transport, () => device.ioctl(request, arg));
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
