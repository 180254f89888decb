// A VFIO group (/dev/vfio/<N>): the unit of ownership. Attach it to a container, set
// the container's IOMMU, then open its devices by name.
import { inspect } from 'node:util';
import { posix } from 'node:path';
import type { SysLayer } from '../sys/types.js';
import { sysError } from '../sys/errors.js';
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

  /** The IOMMU group of a PCI function, from its sysfs iommu_group link. */
  static numberOf(sys: SysLayer, pciAddress: string): number {
    const target = sys.sysfs.readlink(`/sys/bus/pci/devices/${pciAddress}/iommu_group`);
    const name = posix.basename(target);
    if (!/^\d+$/.test(name)) throw sysError('EINVAL', 'readlink', undefined, `iommu_group of ${pciAddress} points to ${target}`);
    return Number(name);
  }

  /** Opens the group a PCI function belongs to. */
  static forPciDevice(sys: SysLayer, pciAddress: string): Group {
    return Group.open(sys, Group.numberOf(sys, pciAddress));
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
