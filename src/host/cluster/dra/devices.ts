// The vGPUs this node offers through DRA, each a device named "vgpu-<uuid>": the live
// vGPUs no other allocation holds, and for every type with free instances that many
// vGPUs yet to be made, whose UUIDs are name-based (node, parent, type, index), so a
// restarted daemon offers the same devices under the same names and UUIDs, and
// NodePrepareResources creates exactly the UUID that was published.
import type { LiveDevice, TypeInfo } from '../../api.js';
import type { Inventory } from '../inventory.js';
import { draDeviceName, nameBasedUuid } from '../names.js';

/** The namespace of the name-based UUIDs (a fixed random UUID of this project). */
export const VGPU_UUID_NAMESPACE = '6f1c9a52-3d4b-4e8a-9c0d-2b7e5f1a8c34';

export interface OfferedDevice {
  /** "vgpu-<uuid>". */
  name: string;
  uuid: string;
  parent: string;
  type: TypeInfo;
  /** The vGPU when it exists now. */
  live?: LiveDevice;
}

/** Every device offered, by name. `taken` tells which live vGPUs something else holds. */
export function offeredDevices(node: string, inventory: Inventory, taken: (uuid: string) => boolean): Map<string, OfferedDevice> {
  const out = new Map<string, OfferedDevice>();
  const types = new Map(inventory.types.map((t) => [`${t.parent}\u0000${t.id}`, t]));
  const live = new Set(inventory.devices.map((d) => d.uuid));
  for (const device of inventory.devices) {
    const type = types.get(`${device.parent}\u0000${device.type}`);
    if (!type || taken(device.uuid)) continue;
    out.set(draDeviceName(device.uuid), { name: draDeviceName(device.uuid), uuid: device.uuid, parent: device.parent, type, live: device });
  }
  for (const type of inventory.types) {
    let found = 0;
    for (let i = 0; found < type.availableInstances; i++) {
      const uuid = nameBasedUuid(VGPU_UUID_NAMESPACE, `${node}/${type.parent}/${type.id}/${i}`);
      if (live.has(uuid)) continue;
      found++;
      out.set(draDeviceName(uuid), { name: draDeviceName(uuid), uuid, parent: type.parent, type });
    }
  }
  return out;
}
