// The device side of VFIO, knowing no transport: what a device implements (the kernel's
// struct vfio_device_ops) and what it can reach while open (DMA through its user's
// mappings, eventfds its user handed it). Hosts of devices depend on this, never the
// reverse: the mock kernel serves a DeviceBackend behind in-process fds, the vfio-user
// server behind a socket; simulated PCI functions and the vGPU core implement it.
import type { Mapping } from '../addon/mapping.js';
import type { DirtyLogOps, MigrationOps } from './migration/ops.js';

/**
 * DMA as a device sees it: through the container's IOMMU. A transfer to an IOVA that
 * is not mapped, or mapped without the needed permission, throws a DmaFault and
 * touches no memory (the real IOMMU's DMAR fault).
 */
export interface DmaSpace {
  /** vfio_dma_rw(): reads guest memory; marks nothing. */
  read(iova: bigint, dst: Uint8Array): void;
  /** vfio_dma_rw(): writes guest memory; the pages count as dirty. */
  write(iova: bigint, src: Uint8Array): void;
  /**
   * vfio_pin_pages(): pins `npage` pages from the page-aligned `iova` for access `prot`
   * (IOMMU_READ 1 | IOMMU_WRITE 2) and returns one view per page of the host memory
   * behind them. Pins are counted per page; memory is accounted at pin time in a
   * container without an IOMMU-backed group. Errors as the kernel's: npage 0 or iova
   * not aligned EINVAL, npage > 512 E2BIG, a TYPE1 (v1) container EACCES, a page not
   * mapped EINVAL, prot beyond the mapping's EPERM, memlock ENOMEM; nothing stays
   * pinned after an error. Pinned pages count as dirty while dirty tracking is on.
   * Also as the kernel: a device without dmaUnmap, or whose fds are all closed, EINVAL;
   * a vaddr invalidated by UNMAP_DMA(VADDR) EBUSY; user memory no longer there EFAULT;
   * device memory (a BAR mmap) EINVAL.
   */
  pin(iova: bigint, npage: number, prot: number): Uint8Array[];
  /**
   * vfio_unpin_pages(): drops one pin from each page; unpinning what is not pinned is
   * EINVAL (the whole call is refused, nothing changes), npage > 512 E2BIG.
   */
  unpin(iova: bigint, npage: number): void;
}

export class DmaFault extends Error {
  constructor(readonly iova: bigint, readonly length: number, readonly access: 'read' | 'write', reason: string) {
    super(`DMA ${access} of ${length} bytes at iova 0x${iova.toString(16)} faulted: ${reason}`);
    this.name = 'DmaFault';
  }
}

/**
 * A device's reference to an eventfd the user handed it (struct eventfd_ctx): it keeps
 * the eventfd alive and signallable after the user closes the fd, and a later file
 * that reuses the fd number never sees its signals.
 */
export interface EventfdRef {
  /** eventfd_signal(): adds 1 to the counter (a full counter stays full). Nothing once released. */
  signal(): void;
  /** eventfd_ctx_put(): drops the reference. Idempotent. */
  release(): void;
}

/** Binds eventfds that a user hands to SET_IRQS (or to the device by other means). */
export interface EventfdSink {
  /**
   * eventfd_ctx_fdget(): a reference to the eventfd behind `fd`, to release when the
   * binding ends. EBADF if fd is not open, EINVAL if it is open but not an eventfd.
   */
  acquire(fd: number): EventfdRef;
}

/**
 * Where a transport that passes fds (vfio-user) lets its user map a region: the user
 * mmaps `fd` (MAP_SHARED) at file offset `offset + area.offset` for each area, area
 * offsets being relative to the region's start. Every area is page aligned; `offset`
 * is the region's base in the file (the same for every area listed) and is
 * non-negative. The fd stays the device's: a transport sends a copy and never closes it.
 */
export interface RegionFile {
  readonly fd: number;
  readonly offset: bigint;
  readonly areas: readonly { readonly offset: bigint; readonly size: bigint }[];
}

/** What a device can reach while its user holds it open (an fd, a vfio-user connection). */
export interface DeviceContext {
  /** The DMA space its user set up: a container's IOMMU, or a vfio-user client's DMA regions. */
  readonly dma: DmaSpace;
  readonly eventfds: EventfdSink;
}

export interface DeviceBackend {
  /** The name GET_DEVICE_FD takes: a PCI address ("0000:00:04.0") or an mdev UUID. */
  readonly name: string;
  /** First open of a device fd (vfio_device_ops.open_device). May throw a SysError. */
  open(ctx: DeviceContext): void;
  /** Last close of its fds (close_device). */
  close(): void;
  /** ioctl on the device fd: return value, or throw a SysError (ENOTTY for unknown). */
  ioctl(request: number, arg: number | Uint8Array | undefined): number;
  /** pread/pwrite on the device fd: bytes done, or throw a SysError. */
  read(buf: Uint8Array, offset: bigint): number;
  write(buf: Uint8Array, offset: bigint): number;
  /** mmap of the device fd (MAP_SHARED): the mapping, or throw a SysError. */
  mmap(offset: bigint, length: number, prot: number): Mapping;
  /**
   * vfio_device_ops.dma_unmap: the user is unmapping [iova, iova + length) of the
   * container and this device holds pins in it; it must unpin them before returning.
   * (As the kernel, every open device of the container is told, whoever pinned; a
   * mapping's pins still held afterwards are dropped by force: see type1.ts.)
   */
  dmaUnmap?(iova: bigint, length: bigint): void;
  /**
   * For transports that hand their user an fd per mappable region instead of mmap on a
   * device fd (vfio-user): the file behind region `index`'s mappable areas, or
   * undefined when none of it can be reached that way. It lists only areas one fd with
   * one base can express; the rest of the region (and any region without a file) is
   * still served by read/write. Works whether or not the device is open.
   */
  regionFile?(index: number): RegionFile | undefined;
  /**
   * vfio_migration_ops (migration/ops.ts): undefined when the device cannot migrate, and
   * the migration features answer ENOTTY, as the kernel does for a driver without mig_ops.
   * The host runs VFIO_DEVICE_FEATURE's migration features itself (migration/feature.ts).
   */
  readonly migration?: MigrationOps | undefined;
  /** vfio_log_ops: the device's own DMA write log; undefined: the logging features answer ENOTTY. */
  readonly dirtyLog?: DirtyLogOps | undefined;
}
