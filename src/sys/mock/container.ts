// /dev/vfio/vfio: a container. It lives while its fd is open or any group is attached
// (groups hold a reference, as in the kernel). Until SET_IOMMU chose an IOMMU driver
// it answers only GET_API_VERSION and CHECK_EXTENSION; then every other ioctl goes to
// the driver (so the device ioctl numbers 12..17 mean IOMMU ioctls here).
import { VFIO_API_VERSION } from '../../uapi/constants.js';
import { ioctls } from '../../uapi/ioctls.js';
import { sysError } from '../../addon/errors.js';
import type { Mapping } from '../types.js';
import type { MockFile } from './fd-table.js';
import { Type1Iommu, type Type1Context, type Type1Group } from './type1.js';
import { userValue } from './user-args.js';

export class MockContainer {
  readonly groups = new Set<Type1Group>();
  iommu: Type1Iommu | undefined;

  constructor(private readonly ctx: () => Type1Context) {}

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    switch (request) {
      case ioctls.VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case ioctls.VFIO_CHECK_EXTENSION:
        return Type1Iommu.checkExtension(this.iommu, userValue(arg));
      case ioctls.VFIO_SET_IOMMU:
        return this.setIommu(userValue(arg));
      default:
        if (!this.iommu) throw sysError('EINVAL', 'ioctl', undefined, `ioctl 0x${request.toString(16)} before VFIO_SET_IOMMU`);
        return this.iommu.ioctl(request, arg);
    }
  }

  /** VFIO_GROUP_SET_CONTAINER: joins the container, and its IOMMU if one is set. */
  attachGroup(group: Type1Group): void {
    this.iommu?.attachGroup(group);
    this.groups.add(group);
  }

  /** The group leaves; the last group to leave takes the IOMMU and every mapping with it. */
  detachGroup(group: Type1Group): void {
    if (!this.groups.delete(group)) return;
    this.iommu?.detachGroup(group);
    if (this.groups.size === 0 && this.iommu) {
      this.iommu.release();
      this.iommu = undefined;
    }
  }

  private setIommu(type: bigint): number {
    const op = 'VFIO_SET_IOMMU';
    // Only a group's owner may enable an IOMMU, and only once.
    if (this.groups.size === 0 || this.iommu) throw sysError('EINVAL', 'ioctl', op, this.iommu ? 'an IOMMU is already set' : 'no group in the container');
    // The only IOMMU driver is type1: a type it does not claim finds no driver.
    if (Type1Iommu.checkExtension(undefined, type) <= 0) throw sysError('ENODEV', 'ioctl', op, `no IOMMU driver for type ${type}`);
    const iommu = Type1Iommu.open(this.ctx(), type);
    const attached: Type1Group[] = [];
    try {
      for (const g of this.groups) {
        iommu.attachGroup(g);
        attached.push(g);
      }
    } catch (err) {
      for (const g of attached) iommu.detachGroup(g);
      iommu.release();
      throw err;
    }
    this.iommu = iommu;
    return 0;
  }
}

/** An open /dev/vfio/vfio fd. Closing it leaves the container to its groups. */
export class ContainerFile implements MockFile {
  readonly kind = 'container';

  constructor(readonly container: MockContainer) {}

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    return this.container.ioctl(request, arg);
  }

  pread(): number {
    throw sysError('EINVAL', 'pread', undefined, 'a container fd cannot be read');
  }

  pwrite(): number {
    throw sysError('EINVAL', 'pwrite', undefined, 'a container fd cannot be written');
  }

  mmap(): Mapping {
    throw sysError('ENODEV', 'mmap', undefined, 'a container fd cannot be mapped');
  }

  release(): void {
    // Groups keep the container (and its IOMMU) alive; without groups nothing is left.
  }
}
