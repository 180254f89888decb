// Allocate's answer for one container, in KubeVirt's convention: the UUIDs comma-joined
// in MDEV_PCI_RESOURCE_<NAME>, /dev/vfio/vfio and each vGPU's /dev/vfio/<group> as
// device specs, and for a vGPU this daemon serves over vfio-user its socket, mounted at
// the same path (for VMMs that attach vGPUs over vfio-user).
import type { LiveDevice } from '../../api.js';
import type { ContainerAllocateResponse, DeviceSpec, Mount } from '../proto/messages.js';
import { mdevEnvName } from '../names.js';

export const VFIO_CONTAINER_DEVICE = '/dev/vfio/vfio';

export function containerResponse(resourceName: string, devices: readonly LiveDevice[]): ContainerAllocateResponse {
  const specs: DeviceSpec[] = [{ container_path: VFIO_CONTAINER_DEVICE, host_path: VFIO_CONTAINER_DEVICE, permissions: 'rw' }];
  const groups = new Set<number>();
  const mounts: Mount[] = [];
  for (const device of devices) {
    if (device.group >= 0 && !groups.has(device.group)) {
      groups.add(device.group);
      const path = `/dev/vfio/${device.group}`;
      specs.push({ container_path: path, host_path: path, permissions: 'rw' });
    }
    if (device.vfioUser) mounts.push({ container_path: device.vfioUser.socket, host_path: device.vfioUser.socket, read_only: false });
  }
  return {
    envs: { [mdevEnvName(resourceName)]: devices.map((d) => d.uuid).join(',') },
    mounts,
    devices: specs,
    annotations: {},
    cdi_devices: [],
  };
}
