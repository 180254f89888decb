// The fd layer of a vfio-user device: a SysLayer whose calls on one virtual device fd
// become vfio-user messages, so that Device, Region and Irqs work over a socket exactly
// as over a kernel device fd. vfio-user reuses the kernel's structs, so the ioctl buffers
// pass through nearly as they are:
//   VFIO_DEVICE_GET_INFO / GET_REGION_INFO / GET_IRQ_INFO  the matching commands, with
//     the argsz protocol kept (the caller retries with the argsz the reply names)
//   VFIO_DEVICE_SET_IRQS   one message per run of eventfds, the fds as SCM_RIGHTS (irq-set.ts)
//   VFIO_DEVICE_RESET      DEVICE_RESET
//   pread / pwrite         REGION_READ / REGION_WRITE, split to the negotiated size
//   mmap                   of the fd the server sent with the region's info (regions.ts)
//   VFIO_DEVICE_FEATURE    DEVICE_FEATURE; a data_fd's read/write are MIG_DATA_READ/WRITE
//                          (migration.ts)
// Any other ioctl on the device fd is ENOTTY, as from a kernel driver without it. The
// virtual fd is the socket's own number, so no other open file can share it while the
// connection lives. Everything else (eventfds, watching, sysfs, other fds) goes to the
// underlying fd layer, which must be the native one: eventfds cross the socket.
//
// allocate() returns memfd-backed memory, so that a DMA map of it can hand the server the
// fd to mmap (dma.ts); munmap() of it closes the memfd too.
import { sysError, type SysError } from '../../addon/errors.js';
import { createSharedMemory, type SharedMemory } from '../../device/memory.js';
import { flags } from '../../uapi/constants.js';
import { ioctlName, ioctls } from '../../uapi/ioctls.js';
import { vfio_irq_info, vfio_region_info } from '../../uapi/structs.js';
import {
  decodeDeviceInfo, decodeIrqInfo, decodeRegionAccess, decodeRegionAccessHead, decodeRegionInfo, encodeDeviceInfoRequest,
  encodeIrqInfoRequest, encodeRegionInfoRequest, encodeRegionRead, encodeRegionWrite, vfio_user_device_info,
  type VfioUserCommandName,
} from '../../uapi/vfio-user/index.js';
import { PROT_READ, PROT_WRITE, type FdWatcher, type Mapping, type SysKind, type SysLayer, type Sysfs } from '../../sys/types.js';
import type { VfioUserConnection, VfioUserReply } from './connection.js';
import { irqSetMessages } from './irq-set.js';
import { VfioUserMigration } from './migration.js';
import { RegionTable } from './regions.js';

/** Sanity bounds on what a server may describe (a kernel's device would never exceed them). */
const MAX_REGIONS = 1024;
const MAX_IRQS = 1024;
/** Region sizes must leave room for the next index's offsets. */
const MAX_REGION_SIZE = 1n << 40n;

/** Memory allocate() made: the memfd behind it and the mapping handed out. */
interface AllocatedMemory {
  memory: SharedMemory;
  mapping: Mapping;
  /** Its memfd was closed by releaseMemfds(): the mapping lives on, unshareable. */
  released: boolean;
}

function bufferArg(arg: number | Uint8Array | undefined, minimum: number, name: string): Uint8Array {
  if (!(arg instanceof Uint8Array) || arg.byteLength < minimum) {
    throw sysError('EFAULT', 'ioctl', name, `the argument must be a buffer of at least ${minimum} bytes`);
  }
  return arg;
}

function u32At(buf: Uint8Array, at: number): number {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(at, true);
}

export class VfioUserSys implements SysLayer {
  private virtualFd: number;
  private readonly regions = new RegionTable();
  private readonly allocated = new Map<ArrayBuffer, AllocatedMemory>();
  /** Migration: DEVICE_FEATURE and the virtual data fds (also the handle's dirty log). */
  readonly migration: VfioUserMigration;

  constructor(private readonly connection: VfioUserConnection, private readonly base: SysLayer) {
    this.virtualFd = connection.fd;
    this.migration = new VfioUserMigration(connection, base, (address, length) => this.allocatedAt(address, length));
  }

  get kind(): SysKind {
    return this.base.kind;
  }

  get pageSize(): number {
    return this.base.pageSize;
  }

  get sysfs(): Sysfs {
    return this.base.sysfs;
  }

  /** Where the server put region `index`: its own offset, and whether it sent an fd to map it. */
  serverRegion(index: number): { offset: bigint; fd: boolean } | undefined {
    const region = this.regions.get(index);
    return region && { offset: region.serverOffset, fd: region.fd !== undefined };
  }

  /** The device fd Device is given: the socket's number, -1 once closed. */
  get deviceFd(): number {
    return this.virtualFd;
  }

  open(path: string, openFlags?: number): number {
    return this.base.open(path, openFlags);
  }

  /** Closing the device fd ends the session: the region fds and the connection close. */
  close(fd: number): void {
    if (this.migration.isDataFd(fd)) {
      this.migration.close(fd);
      return;
    }
    if (fd !== this.virtualFd || fd < 0) {
      this.base.close(fd);
      return;
    }
    this.virtualFd = -1;
    try {
      this.migration.closeAll();
      this.regions.close();
    } finally {
      this.connection.close();
    }
  }

  ioctl(fd: number, request: number, arg?: number | Uint8Array): number {
    if (this.migration.isDataFd(fd)) return this.migration.ioctl(fd, request);
    if (fd !== this.virtualFd || fd < 0) return this.base.ioctl(fd, request, arg);
    switch (request) {
      case ioctls.VFIO_DEVICE_GET_INFO: return this.getInfo(bufferArg(arg, vfio_user_device_info.size, 'VFIO_DEVICE_GET_INFO'));
      case ioctls.VFIO_DEVICE_GET_REGION_INFO: return this.getRegionInfo(bufferArg(arg, vfio_region_info.size, 'VFIO_DEVICE_GET_REGION_INFO'));
      case ioctls.VFIO_DEVICE_GET_IRQ_INFO: return this.getIrqInfo(bufferArg(arg, vfio_irq_info.size, 'VFIO_DEVICE_GET_IRQ_INFO'));
      case ioctls.VFIO_DEVICE_SET_IRQS: return this.setIrqs(bufferArg(arg, 0, 'VFIO_DEVICE_SET_IRQS'));
      case ioctls.VFIO_DEVICE_FEATURE: return this.migration.deviceFeature(bufferArg(arg, 0, 'VFIO_DEVICE_FEATURE'));
      case ioctls.VFIO_DEVICE_RESET:
        this.migration.deviceReset();
        this.closeFds(this.connection.request('VFIO_USER_DEVICE_RESET', undefined, { syscall: 'ioctl' }));
        return 0;
      default:
        throw sysError('ENOTTY', 'ioctl', ioctlName('device', request), 'vfio-user has no command for it');
    }
  }

  pread(fd: number, buf: Uint8Array, offset: bigint): number {
    if (fd !== this.virtualFd || fd < 0) return this.base.pread(fd, buf, offset);
    return this.regionIo('pread', buf, offset);
  }

  pwrite(fd: number, buf: Uint8Array, offset: bigint): number {
    if (fd !== this.virtualFd || fd < 0) return this.base.pwrite(fd, buf, offset);
    return this.regionIo('pwrite', buf, offset);
  }

  /** read(2): of a migration data fd (MIG_DATA_READ), or of the underlying fd layer. */
  read(fd: number, buf: Uint8Array): number {
    if (this.migration.isDataFd(fd)) return this.migration.read(fd, buf);
    return this.streamIo('read', fd, buf);
  }

  /** write(2): of a migration data fd (MIG_DATA_WRITE), or of the underlying fd layer. */
  write(fd: number, buf: Uint8Array): number {
    if (this.migration.isDataFd(fd)) return this.migration.write(fd, buf);
    return this.streamIo('write', fd, buf);
  }

  private streamIo(syscall: 'read' | 'write', fd: number, buf: Uint8Array): number {
    if (fd === this.virtualFd && fd >= 0) throw sysError('EINVAL', syscall, undefined, 'the device fd is read with pread');
    const io = (this.base as Partial<Record<'read' | 'write', (fd: number, buf: Uint8Array) => number>>)[syscall];
    if (!io) throw sysError('EINVAL', syscall, undefined, 'the underlying fd layer has no stream files');
    return io.call(this.base, fd, buf);
  }

  /** mmap of a region: of the server's fd for it, at the server's offset plus the offset inside. */
  mmap(fd: number, offset: bigint, length: number, prot: number): Mapping {
    if (fd !== this.virtualFd || fd < 0) return this.base.mmap(fd, offset, length, prot);
    const { region, inside } = this.regions.locate(offset, 'mmap');
    if (region.fd === undefined) throw sysError('EINVAL', 'mmap', undefined, `region ${region.index}: the server sent no fd to map it`);
    if (inside + BigInt(length) > region.size) {
      throw sysError('EINVAL', 'mmap', undefined, `${length} bytes at 0x${inside.toString(16)} run past the ${region.size}-byte region ${region.index}`);
    }
    return this.base.mmap(region.fd, region.serverOffset + inside, length, prot);
  }

  /** Memory backed by a memfd, so a DMA map can give the server the fd (see sharedFdOf). */
  allocate(length: number): Mapping {
    if (!Number.isSafeInteger(length) || length <= 0) throw sysError('EINVAL', 'mmap', undefined, `length ${length}`);
    const memory = createSharedMemory('vfio-user-dma', length);
    try {
      const mapping = memory.map(0, length, PROT_READ | PROT_WRITE);
      this.allocated.set(mapping.buffer, { memory, mapping, released: false });
      return mapping;
    } catch (err) {
      memory.close();
      throw err;
    }
  }

  /** The memfd behind memory from allocate(), and where `memory` starts in it; undefined for other memory. */
  sharedFdOf(memory: Mapping): { fd: number; offset: number } | undefined {
    const entry = this.allocated.get(memory.buffer);
    if (!entry || entry.released || memory.buffer.byteLength === 0) return undefined;
    return { fd: entry.memory.fd, offset: 0 };
  }

  /** The bytes at a process address inside memory allocate() gave and munmap has not taken back. */
  private allocatedAt(address: bigint, length: number): Uint8Array | undefined {
    for (const { mapping } of this.allocated.values()) {
      const start = mapping.address;
      if (address >= start && address + BigInt(length) <= start + BigInt(mapping.buffer.byteLength)) {
        return new Uint8Array(mapping.buffer, Number(address - start), length);
      }
    }
    return undefined;
  }

  munmap(mapping: Mapping): void {
    const entry = this.allocated.get(mapping.buffer);
    if (!entry) {
      this.base.munmap(mapping);
      return;
    }
    this.allocated.delete(mapping.buffer);
    try {
      entry.memory.unmap(entry.mapping);
    } finally {
      entry.memory.close();
    }
  }

  /** Closes the memfds of memory still allocated: mappings stay valid until munmap. */
  releaseMemfds(): void {
    for (const entry of this.allocated.values()) {
      entry.memory.close();
      entry.released = true;
    }
  }

  eventfd(initval?: number): number {
    return this.base.eventfd(initval);
  }

  eventfdRead(fd: number): bigint {
    return this.base.eventfdRead(fd);
  }

  eventfdWrite(fd: number, value: bigint): void {
    this.base.eventfdWrite(fd, value);
  }

  watch(fd: number, onReadable: () => void): FdWatcher {
    return this.base.watch(fd, onReadable);
  }

  /**
   * REGION_READ or REGION_WRITE of buf at an fd offset, in pieces of the negotiated size.
   * Like pread/pwrite it stops at the end of the region, and at a piece the server
   * shortened; returns the bytes moved.
   */
  private regionIo(syscall: 'pread' | 'pwrite', buf: Uint8Array, offset: bigint): number {
    const reading = syscall === 'pread';
    const command = reading ? 'VFIO_USER_REGION_READ' : 'VFIO_USER_REGION_WRITE';
    const { region, inside } = this.regions.locate(offset, syscall);
    const room = region.size - inside;
    const length = BigInt(buf.byteLength) < room ? buf.byteLength : Number(room);
    let done = 0;
    while (done < length) {
      const count = Math.min(length - done, this.connection.negotiated.xferSize);
      const at = inside + BigInt(done);
      const piece = buf.subarray(done, done + count);
      const body = reading ? encodeRegionRead(at, region.index, count) : encodeRegionWrite(at, region.index, piece);
      const reply = this.connection.request(command, body, { syscall });
      this.closeFds(reply);
      const got: { offset: bigint; region: number; count: number; data?: Uint8Array } =
        this.decode(command, syscall, () => (reading ? decodeRegionAccess(reply.body) : decodeRegionAccessHead(reply.body)));
      if (got.region !== region.index || got.offset !== at || got.count > count) {
        throw sysError('EPROTO', syscall, command, `${count} bytes of region ${region.index} at 0x${at.toString(16)}: ` +
          `the reply has ${got.count} of region ${got.region} at 0x${got.offset.toString(16)}`);
      }
      if (got.data) piece.set(got.data);
      done += got.count;
      if (got.count < count) break; // a short transfer, as pread and pwrite may make
    }
    return done;
  }

  private getInfo(arg: Uint8Array): number {
    const op = 'VFIO_USER_DEVICE_GET_INFO';
    const reply = this.connection.request(op, encodeDeviceInfoRequest(u32At(arg, 0)), { syscall: 'ioctl' });
    this.closeFds(reply);
    const info = this.decode(op, 'ioctl', () => decodeDeviceInfo(reply.body));
    if (info.num_regions > MAX_REGIONS || info.num_irqs > MAX_IRQS) {
      throw sysError('EPROTO', 'ioctl', op, `the server describes ${info.num_regions} regions and ${info.num_irqs} interrupt indexes`);
    }
    this.copyReply(arg, reply.body);
    return 0;
  }

  private getRegionInfo(arg: Uint8Array): number {
    const op = 'VFIO_USER_DEVICE_GET_REGION_INFO';
    const index = u32At(arg, 8);
    if (!RegionTable.validIndex(index)) throw sysError('EINVAL', 'ioctl', op, `region index ${index}`);
    const reply = this.connection.request(op, encodeRegionInfoRequest(index, u32At(arg, 0)), { syscall: 'ioctl' });
    const [fd, ...extra] = reply.fds;
    for (const e of extra) this.connection.closeReceived(e);
    try {
      const argsz = this.decode(op, 'ioctl', () => vfio_region_info.decode(reply.body)).argsz;
      if (argsz > arg.byteLength) {
        // The capabilities did not fit: only argsz matters, the caller asks again with it.
        this.copyReply(arg, reply.body.subarray(0, vfio_region_info.size));
        if (fd !== undefined) this.connection.closeReceived(fd);
        return 0;
      }
      const { info } = this.decode(op, 'ioctl', () => decodeRegionInfo(reply.body));
      if (info.index !== index) throw sysError('EPROTO', 'ioctl', op, `asked for region ${index}, the reply describes region ${info.index}`);
      if (info.size >= MAX_REGION_SIZE) throw sysError('EPROTO', 'ioctl', op, `region ${index} is ${info.size} bytes`);
      // MMAP without an fd cannot be honoured: the region is offered as read/write only.
      const mappable = (info.flags & flags.VFIO_REGION_INFO_FLAG_MMAP) !== 0 && fd !== undefined;
      const regionFlags = mappable ? info.flags : info.flags & ~flags.VFIO_REGION_INFO_FLAG_MMAP;
      this.regions.set({ index, flags: regionFlags, size: info.size, serverOffset: info.offset, fd: mappable ? fd : undefined });
      if (!mappable && fd !== undefined) this.connection.closeReceived(fd);
      this.copyReply(arg, reply.body);
      vfio_region_info.write(arg, { flags: regionFlags, offset: RegionTable.offsetOf(index) });
      return 0;
    } catch (err) {
      if (fd !== undefined && this.regions.get(index)?.fd !== fd) this.connection.closeReceived(fd);
      throw err;
    }
  }

  private getIrqInfo(arg: Uint8Array): number {
    const op = 'VFIO_USER_DEVICE_GET_IRQ_INFO';
    const index = u32At(arg, 8);
    const reply = this.connection.request(op, encodeIrqInfoRequest(index, u32At(arg, 0)), { syscall: 'ioctl' });
    this.closeFds(reply);
    const info = this.decode(op, 'ioctl', () => decodeIrqInfo(reply.body));
    if (info.index !== index) throw sysError('EPROTO', 'ioctl', op, `asked for irq index ${index}, the reply describes ${info.index}`);
    this.copyReply(arg, reply.body.subarray(0, vfio_irq_info.size));
    return 0;
  }

  private setIrqs(arg: Uint8Array): number {
    for (const message of irqSetMessages(arg, this.connection.negotiated.sendFds)) {
      this.closeFds(this.connection.request('VFIO_USER_DEVICE_SET_IRQS', message.body, { fds: message.fds, syscall: 'ioctl' }));
    }
    return 0;
  }

  /** The reply's bytes into the caller's buffer as the kernel would leave it: what does not fit is cut, the rest zeroed. */
  private copyReply(arg: Uint8Array, body: Uint8Array): void {
    const n = Math.min(arg.byteLength, body.byteLength);
    arg.set(body.subarray(0, n));
    arg.fill(0, n);
  }

  /** A body that does not decode is the server's fault: EPROTO, the connection stays usable. */
  private decode<T>(command: VfioUserCommandName, syscall: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw sysError('EPROTO', syscall, command, `malformed reply: ${(err as SysError).message}`);
    }
  }

  private closeFds(reply: VfioUserReply): void {
    for (const fd of reply.fds) this.connection.closeReceived(fd);
  }
}
