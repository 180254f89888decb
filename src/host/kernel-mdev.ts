// Kernel mdev parents: mediated devices the Linux kernel offers (NVIDIA vGPU, Intel
// GVT-g, mtty...), reached through their sysfs ABI alone (notes/kernel-semantics.md):
//   /sys/class/mdev_bus/<parent> -> the parent device's dir, holding
//     mdev_supported_types/<type>/{create, name, description, available_instances, device_api, devices/}
//   /sys/bus/mdev/devices/<uuid> -> the mdev's dir: {remove, mdev_type -> its type dir,
//     iommu_group -> /sys/kernel/iommu_groups/<N>, and the vendor's attributes}
// Create writes the UUID to the type's `create`; remove writes "1" to the device's
// `remove`; the kernel has made (or removed) the device when the write returns. Every
// access goes through a Sysfs, so tests run this against a fake tree in a temp dir.
import { posix } from 'node:path';
import { isSysError } from '../addon/errors.js';
import type { Sysfs } from '../sys/types.js';
import type { TypeInfo } from './api.js';

export const MDEV_BUS_CLASS = '/sys/class/mdev_bus';
export const MDEV_BUS_DEVICES = '/sys/bus/mdev/devices';

/** Files of a type dir that are the mdev core's, not the vendor's extra attributes. */
const CORE_TYPE_FILES = new Set(['create', 'name', 'description', 'available_instances', 'device_api', 'devices']);

/** A kernel mdev that exists now. */
export interface KernelMdevDevice {
  uuid: string;
  parent: string;
  type: string;
  /** Its IOMMU group, or -1 when sysfs shows none. */
  group: number;
}

export class KernelMdevParents {
  /**
   * @param sysfs the /sys to read (the machine's, or a fake tree)
   * @param ignored parent names that are not the kernel's (the mock kernel's mdev bus
   *   shows the TypeScript parents under /sys/class/mdev_bus too)
   */
  constructor(readonly sysfs: Sysfs, private readonly ignored: (parent: string) => boolean = () => false) {}

  /** Parent names under /sys/class/mdev_bus (none when the class is absent: no mdev module). */
  parents(): string[] {
    return this.listOrEmpty(MDEV_BUS_CLASS).filter((name) => !this.ignored(name));
  }

  hasParent(parent: string): boolean {
    return !this.ignored(parent) && this.sysfs.exists(`${MDEV_BUS_CLASS}/${parent}/mdev_supported_types`);
  }

  /** Type ids of a parent. */
  typeIds(parent: string): string[] {
    return this.listOrEmpty(this.typesDir(parent));
  }

  hasType(parent: string, type: string): boolean {
    return this.hasParent(parent) && this.sysfs.exists(`${this.typeDir(parent, type)}/create`);
  }

  /** One type as `types` shows it; attributes are the vendor's extra readable files. */
  type(parent: string, type: string): TypeInfo {
    const dir = this.typeDir(parent, type);
    const attributes: Record<string, string> = {};
    for (const name of this.listOrEmpty(dir)) {
      if (CORE_TYPE_FILES.has(name)) continue;
      try {
        attributes[name] = this.sysfs.read(`${dir}/${name}`);
      } catch {
        // A directory or a write-only file: not an attribute to show.
      }
    }
    return {
      parent,
      id: type,
      name: this.readOr(`${dir}/name`, ''),
      description: this.readOr(`${dir}/description`, ''),
      deviceApi: this.sysfs.read(`${dir}/device_api`),
      availableInstances: this.availableInstances(parent, type),
      attributes,
    };
  }

  /** Every type of every parent (or of one). */
  types(parent?: string): TypeInfo[] {
    const parents = parent === undefined ? this.parents() : this.hasParent(parent) ? [parent] : [];
    return parents.flatMap((p) => this.typeIds(p).map((t) => this.type(p, t)));
  }

  availableInstances(parent: string, type: string): number {
    const text = this.sysfs.read(`${this.typeDir(parent, type)}/available_instances`).trim();
    const n = Number(text);
    return /^[0-9]+$/.test(text) && Number.isSafeInteger(n) ? n : 0;
  }

  /** The mdevs that exist now, from /sys/bus/mdev/devices/<uuid>/mdev_type. */
  devices(): KernelMdevDevice[] {
    const out: KernelMdevDevice[] = [];
    for (const uuid of this.listOrEmpty(MDEV_BUS_DEVICES)) {
      const device = this.device(uuid);
      if (device) out.push(device);
    }
    return out;
  }

  /** One mdev by UUID (as sysfs names it: lower case), or undefined. */
  device(uuid: string): KernelMdevDevice | undefined {
    const link = `${MDEV_BUS_DEVICES}/${uuid}`;
    let dir: string;
    let typeDir: string;
    try {
      // Both links are relative (the kernel's: mdev_type is "../mdev_supported_types/<type>",
      // the device dir being a child of its parent's), so resolve them as paths.
      dir = posix.join(MDEV_BUS_DEVICES, this.sysfs.readlink(link));
      typeDir = posix.join(dir, this.sysfs.readlink(`${dir}/mdev_type`));
    } catch (err) {
      if (isSysError(err)) return undefined;
      throw err;
    }
    const type = posix.basename(typeDir);
    const typesDir = posix.dirname(typeDir);
    if (posix.basename(typesDir) !== 'mdev_supported_types') return undefined;
    const parent = this.parentNamed(posix.dirname(typesDir));
    if (parent === undefined || this.ignored(parent)) return undefined;
    let group = -1;
    try {
      const n = Number(this.sysfs.readlink(`${dir}/iommu_group`).split('/').pop());
      if (Number.isInteger(n) && n >= 0) group = n;
    } catch {
      // No group link: leave -1.
    }
    return { uuid, parent, type, group };
  }

  /** The name under /sys/class/mdev_bus whose link leads to a parent's device dir. */
  private parentNamed(parentDir: string): string | undefined {
    for (const name of this.listOrEmpty(MDEV_BUS_CLASS)) {
      try {
        if (posix.join(MDEV_BUS_CLASS, this.sysfs.readlink(`${MDEV_BUS_CLASS}/${name}`)) === parentDir) return name;
      } catch {
        // Not a link: skip it.
      }
    }
    return undefined;
  }

  /** Creates an mdev: the UUID written to the type's `create` (the kernel's errnos pass through). */
  create(parent: string, type: string, uuid: string): void {
    this.sysfs.write(`${this.typeDir(parent, type)}/create`, uuid);
  }

  /** Removes an mdev: "1" written to its `remove`. */
  remove(uuid: string): void {
    this.sysfs.write(`${MDEV_BUS_DEVICES}/${uuid}/remove`, '1');
  }

  /** Writes one of the mdev's attributes (mdevctl's attrs: a file in the device's dir). */
  writeAttribute(uuid: string, name: string, value: string): void {
    this.sysfs.write(`${MDEV_BUS_DEVICES}/${uuid}/${name}`, value);
  }

  private typesDir(parent: string): string {
    return `${MDEV_BUS_CLASS}/${parent}/mdev_supported_types`;
  }

  private typeDir(parent: string, type: string): string {
    return `${this.typesDir(parent)}/${type}`;
  }

  private listOrEmpty(path: string): string[] {
    try {
      return this.sysfs.list(path);
    } catch (err) {
      if (isSysError(err, 'ENOENT') || isSysError(err, 'ENOTDIR')) return [];
      throw err;
    }
  }

  private readOr(path: string, fallback: string): string {
    try {
      return this.sysfs.read(path);
    } catch (err) {
      if (isSysError(err, 'ENOENT')) return fallback;
      throw err;
    }
  }
}
