// /dev/vfio/<N>: an IOMMU group and its devices. One open at a time (EBUSY). Device fds
// hold a reference to the open group file, so the group stays open (and attached to
// its container) until its fd and every device fd it handed out are closed.
import { flags } from '../../uapi/constants.js';
import { ioctls } from '../../uapi/ioctls.js';
import { vfio_group_status } from '../../uapi/structs.js';
import { sysError } from '../../addon/errors.js';
import type { Mapping } from '../types.js';
import { ContainerFile, type MockContainer } from './container.js';
import type { DeviceContext, DeviceBackend } from '../../device/backend.js';
import { DeviceFile } from './device-file.js';
import type { FdTable, MockFile } from './fd-table.js';
import type { KernelFlavour } from './options.js';
import type { AddressSpace } from './address-space.js';
import { requireUserBytes, userPointer } from './user-args.js';

/** What a group needs from the kernel around it. */
export interface GroupHost {
  readonly fds: FdTable;
  /** The process's memory: user pointers inside ioctl arguments resolve through it. */
  readonly mm: AddressSpace;
  readonly flavour: KernelFlavour;
  /** Whether DMA_LOGGING_REPORT can report (options.ts: iommufdDriver). */
  readonly dirtyReports: boolean;
  readonly pageSize: number;
  /** Starts a device's open session: the context handed to its open(). */
  openSession(node: DeviceNode): DeviceSession;
  /** Registers a Mapping a device fd's mmap returned. */
  registerDeviceMapping(mapping: Mapping, prot: number): void;
}

/** What a device has while its fds are open; end() after its close(). */
export interface DeviceSession {
  readonly ctx: DeviceContext;
  end(): void;
}

/** A device in a group, with the count of its open fds. */
export interface DeviceNode {
  readonly device: DeviceBackend;
  readonly group: MockGroup;
  openCount: number;
  session: DeviceSession | undefined;
}

export class MockGroup {
  readonly devices = new Map<string, DeviceNode>();
  container: MockContainer | undefined;
  /** The container's user plus one per open device fd (group->container_users). */
  private containerUsers = 0;
  /** References to the open group file: its fd plus one per device fd. */
  private fileRefs = 0;

  constructor(readonly id: number, readonly iommuBacked: boolean, private readonly host: GroupHost) {}

  /** Open (by its fd or through device fds). */
  get opened(): boolean {
    return this.fileRefs > 0;
  }

  addDevice(device: DeviceBackend): DeviceNode {
    const node: DeviceNode = { device, group: this, openCount: 0, session: undefined };
    this.devices.set(device.name, node);
    return node;
  }

  /** open("/dev/vfio/N"). */
  open(): MockFile {
    if (this.opened) throw sysError('EBUSY', 'open', undefined, `group ${this.id} is already open`);
    this.fileRefs = 1;
    return new GroupFile(this);
  }

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    switch (request) {
      case ioctls.VFIO_GROUP_GET_STATUS: return this.getStatus(arg);
      case ioctls.VFIO_GROUP_SET_CONTAINER: return this.setContainer(arg);
      case ioctls.VFIO_GROUP_UNSET_CONTAINER: return this.unsetContainer();
      case ioctls.VFIO_GROUP_GET_DEVICE_FD: return this.getDeviceFd(arg);
      default:
        throw sysError('ENOTTY', 'ioctl', undefined, `ioctl 0x${request.toString(16)} on a group`);
    }
  }

  /** The last reference to the open group file went: it leaves its container. */
  dropFileRef(): void {
    this.fileRefs--;
    if (this.fileRefs === 0 && this.container) this.detachContainer();
  }

  /** The last close of a device fd. */
  releaseDevice(node: DeviceNode): void {
    node.openCount--;
    try {
      if (node.openCount === 0) node.device.close();
    } finally {
      // As the kernel, after close_device: the device may still unpin while closing.
      if (node.openCount === 0) {
        node.session?.end();
        node.session = undefined;
      }
      this.containerUsers--;
      this.dropFileRef();
    }
  }

  private getStatus(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_GROUP_GET_STATUS';
    const buf = userPointer(arg, op);
    requireUserBytes(buf, 0, vfio_group_status.size, op);
    const { argsz } = vfio_group_status.decode(buf);
    if (argsz < vfio_group_status.size) throw sysError('EINVAL', 'ioctl', op, `argsz ${argsz}`);
    const status = this.container
      ? flags.VFIO_GROUP_FLAGS_VIABLE | flags.VFIO_GROUP_FLAGS_CONTAINER_SET
      : flags.VFIO_GROUP_FLAGS_VIABLE;
    vfio_group_status.write(buf, { argsz, flags: status });
    return 0;
  }

  private setContainer(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_GROUP_SET_CONTAINER';
    const buf = userPointer(arg, op);
    requireUserBytes(buf, 0, 4, op);
    const fd = new DataView(buf.buffer, buf.byteOffset, 4).getInt32(0, true);
    const file = this.host.fds.get(fd);
    if (!file) throw sysError('EBADF', 'ioctl', op, `fd ${fd} is not open`);
    if (this.container) throw sysError('EINVAL', 'ioctl', op, `group ${this.id} already has a container`);
    if (!(file instanceof ContainerFile)) {
      // 6.12 also tries the fd as an iommufd before giving up.
      throw sysError(this.host.flavour === '6.1' ? 'EINVAL' : 'EBADFD', 'ioctl', op, `fd ${fd} is not a container`);
    }
    file.container.attachGroup(this);
    this.container = file.container;
    this.containerUsers = 1;
    return 0;
  }

  private unsetContainer(): number {
    const op = 'VFIO_GROUP_UNSET_CONTAINER';
    if (!this.container) throw sysError('EINVAL', 'ioctl', op, `group ${this.id} has no container`);
    if (this.containerUsers !== 1) throw sysError('EBUSY', 'ioctl', op, 'device fds are open');
    this.detachContainer();
    return 0;
  }

  private detachContainer(): void {
    const container = this.container!;
    this.container = undefined;
    this.containerUsers = 0;
    container.detachGroup(this);
  }

  private getDeviceFd(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_GROUP_GET_DEVICE_FD';
    const name = userString(userPointer(arg, op), this.host.pageSize, op);
    const node = this.devices.get(name);
    if (!node) throw sysError('ENODEV', 'ioctl', op, `no device "${name}" in group ${this.id}`);
    if (!this.container?.iommu) throw sysError('EINVAL', 'ioctl', op, 'the group has no container with an IOMMU');
    return this.host.fds.installWith(() => {
      if (node.openCount === 0) {
        const session = this.host.openSession(node);
        try {
          node.device.open(session.ctx);
        } catch (err) {
          session.end();
          throw err;
        }
        node.session = session;
      }
      node.openCount++;
      this.containerUsers++;
      this.fileRefs++;
      return new DeviceFile(node, this.host);
    });
  }
}

/** strndup_user(arg, PAGE_SIZE): a NUL-terminated string of at most a page. */
function userString(buf: Uint8Array, pageSize: number, op: string): string {
  const limit = Math.min(buf.byteLength, pageSize);
  const nul = buf.subarray(0, limit).indexOf(0);
  if (nul < 0) {
    if (buf.byteLength >= pageSize) throw sysError('EINVAL', 'ioctl', op, 'device name longer than a page');
    throw sysError('EFAULT', 'ioctl', op, 'device name is not NUL-terminated within the buffer');
  }
  return new TextDecoder().decode(buf.subarray(0, nul));
}

/** An open /dev/vfio/N fd. */
export class GroupFile implements MockFile {
  readonly kind = 'group';

  constructor(readonly group: MockGroup) {}

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    return this.group.ioctl(request, arg);
  }

  pread(): number {
    throw sysError('EINVAL', 'pread', undefined, 'a group fd cannot be read');
  }

  pwrite(): number {
    throw sysError('EINVAL', 'pwrite', undefined, 'a group fd cannot be written');
  }

  mmap(): Mapping {
    throw sysError('ENODEV', 'mmap', undefined, 'a group fd cannot be mapped');
  }

  release(): void {
    this.group.dropFileRef();
  }
}
