// The mdev bus on the mock kernel: presents the registry's parents and vGPUs through
// the kernel's mdev sysfs ABI and registers each vGPU's VFIO device with the mock
// kernel (its own IOMMU group with no IOMMU behind it, /dev/vfio/<N>), so the ordinary
// VFIO client opens a vGPU by its UUID with no special case.
//
// The tree (parent dir: /sys/devices/virtual/<driver>/<parent> unless given):
//   /sys/class/mdev_bus/<parent> -> parent dir
//   <parent dir>/mdev_supported_types/<driver>-<type>/
//       create (0200), name, description (when the type has one), available_instances,
//       device_api, devices/<uuid> -> the vGPU's dir, and the driver's attributes
//   <parent dir>/<uuid>/  remove (0200), mdev_type -> its type dir, iommu_group (the kernel's),
//       and what the driver core gives a bound device: driver -> /sys/bus/mdev/drivers/<driver>,
//       subsystem -> /sys/bus/mdev, uevent ("DRIVER=<driver>")
//   /sys/bus/mdev/devices/<uuid> -> the vGPU's dir
//   /sys/bus/mdev/drivers/<driver>/<uuid> -> the vGPU's dir (while the driver has a parent here)
// Not modelled: a real mdev's power/ and vfio-dev/ directories and a driver's own
// per-device attributes (the samples' vendor/ group).
// Writing `create` and `remove` follows mdev_sysfs.c (see sysfs-input.ts), the errnos
// being the registry's; a zero-length write does nothing, as sysfs never calls the
// store for one. Remove refuses EBUSY while the vGPU's device or group is open.
import { isSysError, sysError } from '../../addon/errors.js';
import type { DeviceBackend } from '../../device/backend.js';
import type { MockKernel } from '../../sys/mock/kernel.js';
import type { RegisteredParent, RegisteredType, Vgpu, VgpuBus, VgpuRegistry } from '../registry.js';
import { isUuid } from '../uuid.js';
import { kstrtoul, parseCreateInput } from './sysfs-input.js';

export const MDEV_BUS_CLASS = '/sys/class/mdev_bus';
export const MDEV_BUS_DEVICES = '/sys/bus/mdev/devices';
export const MDEV_BUS_DRIVERS = '/sys/bus/mdev/drivers';
const MDEV_BUS = '/sys/bus/mdev';
/** kobject_action_type's names: what a write to `uevent` may start with (else EINVAL). */
const UEVENT_ACTIONS = ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'];

export interface MockMdevBusOptions {
  /** Makes the VFIO device of a vGPU (it must report open and release to the vGPU). */
  createDevice(vgpu: Vgpu): DeviceBackend;
  /** A parent's sysfs directory; default /sys/devices/virtual/<driver>/<parent>. */
  parentDir?(parent: RegisteredParent): string;
}

interface ParentNodes {
  readonly dir: string;
  /** What this bus made for the parent, removed last made first. */
  readonly made: string[];
}

export class MockMdevBus implements VgpuBus {
  private readonly parents = new Map<RegisteredParent, ParentNodes>();

  constructor(
    private readonly registry: VgpuRegistry,
    readonly kernel: MockKernel,
    private readonly options: MockMdevBusOptions,
  ) {
    kernel.sysfs.mkdir(MDEV_BUS_CLASS);
    kernel.sysfs.mkdir(MDEV_BUS_DEVICES);
    kernel.sysfs.mkdir(MDEV_BUS_DRIVERS);
  }

  /** The bus's directory of a vendor driver (the kernel's, for each registered mdev_driver). */
  private driverDir(parent: RegisteredParent): string {
    return `${MDEV_BUS_DRIVERS}/${parent.driver.name}`;
  }

  /** The sysfs directory of a parent this bus presents. */
  parentDir(parent: RegisteredParent): string | undefined {
    return this.parents.get(parent)?.dir;
  }

  /** The sysfs directory of a vGPU's type. */
  typeDir(type: RegisteredType): string | undefined {
    const dir = this.parentDir(type.parent);
    return dir === undefined ? undefined : `${dir}/mdev_supported_types/${type.id}`;
  }

  parentAdded(parent: RegisteredParent): void {
    const sysfs = this.kernel.sysfs;
    const dir = this.options.parentDir?.(parent) ?? `/sys/devices/virtual/${parent.driver.name}/${parent.name}`;
    const nodes: ParentNodes = { dir, made: [] };
    try {
      if (!sysfs.exists(dir)) {
        sysfs.mkdir(dir);
        nodes.made.push(dir);
      }
      const types = `${dir}/mdev_supported_types`;
      if (sysfs.exists(types)) throw sysError('EEXIST', 'mkdir', undefined, `${types} exists`);
      sysfs.mkdir(types);
      nodes.made.push(types);
      for (const type of parent.types.values()) this.addType(`${types}/${type.id}`, type);
      const link = `${MDEV_BUS_CLASS}/${parent.name}`;
      sysfs.addRelativeLink(link, dir);
      nodes.made.push(link);
      if (!sysfs.exists(this.driverDir(parent))) {
        sysfs.mkdir(this.driverDir(parent));
        nodes.made.push(this.driverDir(parent));
      }
    } catch (err) {
      this.removeNodes(nodes.made);
      throw err;
    }
    this.parents.set(parent, nodes);
  }

  parentRemoved(parent: RegisteredParent): void {
    const nodes = this.parents.get(parent);
    if (!nodes) return;
    this.parents.delete(parent);
    // The driver's directory stays while another parent of the same driver is here.
    const driverDir = this.driverDir(parent);
    const shared = [...this.parents.keys()].some((p) => p.driver.name === parent.driver.name);
    this.removeNodes(shared ? nodes.made.filter((path) => path !== driverDir) : nodes.made);
    if (shared && nodes.made.includes(driverDir)) {
      const heir = [...this.parents.entries()].find(([p]) => p.driver.name === parent.driver.name)!;
      heir[1].made.push(driverDir);
    }
  }

  vgpuAdded(vgpu: Vgpu): void {
    const sysfs = this.kernel.sysfs;
    const parentDir = this.parentDir(vgpu.parent);
    if (parentDir === undefined) throw sysError('ENODEV', 'register', undefined, `parent ${vgpu.parent.name} is not on this bus`);
    const dir = `${parentDir}/${vgpu.uuid}`;
    const typeDir = `${parentDir}/mdev_supported_types/${vgpu.type.id}`;
    const made: string[] = [];
    this.kernel.registerDevice(this.options.createDevice(vgpu), { iommuBacked: false, sysfsPath: dir });
    try {
      // The device dir and what is in it go with the device; the links elsewhere are ours.
      sysfs.addAttribute(`${dir}/remove`, { mode: 0o200, store: (value) => this.removeStore(vgpu, value) });
      sysfs.addRelativeLink(`${dir}/mdev_type`, typeDir);
      sysfs.addRelativeLink(`${dir}/driver`, this.driverDir(vgpu.parent));
      sysfs.addRelativeLink(`${dir}/subsystem`, MDEV_BUS);
      sysfs.addAttribute(`${dir}/uevent`, {
        mode: 0o644, show: () => `DRIVER=${vgpu.parent.driver.name}\n`, store: (value) => ueventStore(value),
      });
      sysfs.addRelativeLink(`${this.driverDir(vgpu.parent)}/${vgpu.uuid}`, dir);
      made.push(`${this.driverDir(vgpu.parent)}/${vgpu.uuid}`);
      sysfs.addRelativeLink(`${typeDir}/devices/${vgpu.uuid}`, dir);
      made.push(`${typeDir}/devices/${vgpu.uuid}`);
      sysfs.addRelativeLink(`${MDEV_BUS_DEVICES}/${vgpu.uuid}`, dir);
      made.push(`${MDEV_BUS_DEVICES}/${vgpu.uuid}`);
    } catch (err) {
      this.removeNodes(made);
      this.kernel.unregisterDevice(vgpu.uuid);
      throw err;
    }
  }

  vgpuRemoved(vgpu: Vgpu): void {
    // First, as it may refuse (EBUSY: device or group open) having changed nothing.
    this.kernel.unregisterDevice(vgpu.uuid);
    const typeDir = this.typeDir(vgpu.type);
    this.removeNodes([`${typeDir}/devices/${vgpu.uuid}`, `${this.driverDir(vgpu.parent)}/${vgpu.uuid}`, `${MDEV_BUS_DEVICES}/${vgpu.uuid}`]);
  }

  private addType(dir: string, type: RegisteredType): void {
    const sysfs = this.kernel.sysfs;
    const line = (text: string) => (text.endsWith('\n') ? text : `${text}\n`);
    sysfs.addAttribute(`${dir}/create`, { mode: 0o200, store: (value) => this.createStore(type, value) });
    sysfs.addAttribute(`${dir}/name`, { show: () => line(type.name) });
    const description = type.description;
    if (description !== undefined) sysfs.addAttribute(`${dir}/description`, { show: () => line(description) });
    sysfs.addAttribute(`${dir}/available_instances`, { show: () => `${type.availableInstances()}\n` });
    sysfs.addAttribute(`${dir}/device_api`, { show: () => `${type.deviceApi}\n` });
    sysfs.mkdir(`${dir}/devices`);
    for (const [name, value] of Object.entries(type.attributes)) sysfs.addAttribute(`${dir}/${name}`, { show: () => line(value) });
  }

  /** create_store(): a UUID of 36 bytes, with an optional 37th; then the registry's errnos. */
  private createStore(type: RegisteredType, value: string): void {
    if (value.length === 0) return;
    const uuid = parseCreateInput(value);
    if (uuid === undefined) throw sysError('EINVAL', 'write', undefined, `create: not a UUID: ${JSON.stringify(value)}`);
    this.registry.create(type.parent.name, type.id, uuid);
  }

  /** remove_store(): kstrtoul; 0 does nothing, any other number removes. */
  private removeStore(vgpu: Vgpu, value: string): void {
    if (value.length === 0) return;
    const n = kstrtoul(value);
    if (n === undefined) throw sysError('EINVAL', 'write', undefined, `remove: not a number: ${JSON.stringify(value)}`);
    if (n !== 0n) this.registry.remove(vgpu.uuid);
  }

  private removeNodes(paths: readonly string[]): void {
    for (const path of [...paths].reverse()) {
      try {
        this.kernel.sysfs.remove(path);
      } catch (err) {
        if (!isSysError(err, 'ENOENT')) throw err;
      }
    }
  }
}

/**
 * A write to a device's `uevent` asks the kernel to send a synthetic event
 * (kobject_synth_uevent): an action name, optionally followed by a UUID and KEY=VALUE
 * arguments; anything else is EINVAL. The mock has no uevent listeners, so a valid write
 * does nothing else. (The arguments after the UUID are not checked here.)
 */
function ueventStore(value: string): void {
  const [action = '', uuid] = value.replace(/[\n\0]$/, '').split(' ');
  if (!UEVENT_ACTIONS.includes(action) || (uuid !== undefined && !isUuid(uuid))) {
    throw sysError('EINVAL', 'write', undefined, `uevent: not an action: ${JSON.stringify(value)}`);
  }
}
