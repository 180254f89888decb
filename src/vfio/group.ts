// A VFIO group (/dev/vfio/<N>): the unit of ownership. Attach it to a container, set
// the container's IOMMU, then open its devices by name.
import { inspect } from 'node:util';
import { posix } from 'node:path';
import type { SysLayer } from '../sys/types.js';
import { isSysError, sysError } from '../addon/errors.js';
import { flags } from '../uapi/constants.js';
import { vfio_group_status } from '../uapi/structs.js';
import { closedError, cString, intArg, vfioIoctl } from './ioctl.js';
import type { Container } from './container.js';
import { Device } from './device.js';

export interface GroupStatus {
  flags: number;
  /** Every device of the group is bound to a VFIO driver (or none at all). */
  viable: boolean;
  containerSet: boolean;
}

export class Group {
  private fdNumber: number;
  private attachedTo: Container | undefined;
  private readonly open = new Set<Device>();

  private constructor(readonly sys: SysLayer, readonly number: number, fd: number) {
    this.fdNumber = fd;
  }

  /** Opens /dev/vfio/<number>. A group can be open once at a time (EBUSY). */
  static open(sys: SysLayer, number: number): Group {
    if (!Number.isSafeInteger(number) || number < 0) throw new RangeError(`group number must be a non-negative integer, got ${number}`);
    return new Group(sys, number, sys.open(`/dev/vfio/${number}`));
  }

  /**
   * The IOMMU group of a device, from its sysfs iommu_group link: a PCI function by
   * address ("0000:00:04.0", /sys/bus/pci/devices/) or an mdev such as a vGPU by UUID
   * (/sys/bus/mdev/devices/). ENOENT when neither bus has the device, or it has no group.
   */
  static numberOf(sys: SysLayer, name: string): number {
    // A device name is one path component; anything else names no device.
    const plain = name !== '' && name !== '.' && name !== '..' && !name.includes('/');
    for (const node of plain ? [`/sys/bus/pci/devices/${name}`, `/sys/bus/mdev/devices/${name}`] : []) {
      if (!sys.sysfs.exists(node)) continue;
      let target: string;
      try {
        target = sys.sysfs.readlink(`${node}/iommu_group`);
      } catch (err) {
        if (isSysError(err, 'ENOENT')) throw sysError('ENOENT', 'readlink', undefined, `${node} has no iommu_group: no IOMMU, or not a VFIO device`);
        throw err;
      }
      const group = posix.basename(target);
      if (!/^\d+$/.test(group)) throw sysError('EINVAL', 'readlink', undefined, `iommu_group of ${name} points to ${target}`);
      return Number(group);
    }
    throw sysError('ENOENT', 'readlink', undefined,
      `no device ${JSON.stringify(name)}: neither a PCI function (/sys/bus/pci/devices/) nor an mdev (/sys/bus/mdev/devices/)`);
  }

  /** Opens the group a device (PCI address or mdev UUID) belongs to. */
  static forDevice(sys: SysLayer, name: string): Group {
    return Group.open(sys, Group.numberOf(sys, name));
  }

  get fd(): number {
    if (this.fdNumber < 0) throw closedError(`group ${this.number}`, 'group');
    return this.fdNumber;
  }

  get closed(): boolean {
    return this.fdNumber < 0;
  }

  get container(): Container | undefined {
    return this.attachedTo;
  }

  /** Devices opened through this group and not yet closed. */
  get devices(): readonly Device[] {
    return [...this.open];
  }

  /** VFIO_GROUP_GET_STATUS. */
  status(): GroupStatus {
    const arg = vfio_group_status.encode({ argsz: vfio_group_status.size });
    vfioIoctl(this.sys, this.fd, 'VFIO_GROUP_GET_STATUS', arg);
    const f = vfio_group_status.decode(arg).flags;
    return {
      flags: f,
      viable: (f & flags.VFIO_GROUP_FLAGS_VIABLE) !== 0,
      containerSet: (f & flags.VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0,
    };
  }

  /** VFIO_GROUP_SET_CONTAINER. */
  attach(container: Container): void {
    vfioIoctl(this.sys, this.fd, 'VFIO_GROUP_SET_CONTAINER', intArg(container.fd));
    this.attachedTo = container;
    container.addGroup(this);
  }

  /** VFIO_GROUP_UNSET_CONTAINER (EBUSY while device fds are open). */
  detach(): void {
    vfioIoctl(this.sys, this.fd, 'VFIO_GROUP_UNSET_CONTAINER');
    this.forgetContainer();
  }

  /** VFIO_GROUP_GET_DEVICE_FD: opens a device of this group by name (a PCI address or mdev UUID). */
  openDevice(name: string): Device {
    const fd = vfioIoctl(this.sys, this.fd, 'VFIO_GROUP_GET_DEVICE_FD', cString(name));
    const device = Device.fromFd(this.sys, fd, name, () => this.open.delete(device));
    this.open.add(device);
    return device;
  }

  /** Closes the group's devices, detaches it from its container, then closes it (QEMU's order). */
  close(): void {
    if (this.fdNumber < 0) return;
    for (const device of [...this.open]) device.close();
    if (this.attachedTo) {
      // The kernel detaches on release anyway; an explicit unset keeps the order visible.
      try {
        this.detach();
      } catch {
        this.forgetContainer();
      }
    }
    const fd = this.fdNumber;
    this.fdNumber = -1;
    this.sys.close(fd);
  }

  private forgetContainer(): void {
    const container = this.attachedTo;
    this.attachedTo = undefined;
    container?.removeGroup(this);
  }

  [inspect.custom](): string {
    if (this.closed) return `Group ${this.number} (closed)`;
    let state: string;
    try {
      const s = this.status();
      state = `${s.viable ? 'viable' : 'not viable'}${s.containerSet ? ', container set' : ''}`;
    } catch (err) {
      state = `status unknown (${(err as Error).message})`;
    }
    const names = [...this.open].map((d) => d.name).join(', ');
    return `Group ${this.number} fd ${this.fdNumber} ${state}, devices [${names}]`;
  }
}
