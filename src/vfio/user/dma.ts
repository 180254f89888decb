// DMA over vfio-user: the client's IOMMU is software, and the server learns of guest
// memory through DMA_MAP and DMA_UNMAP. Memory from the adapter's allocate() is a memfd:
// its map carries the fd (SCM_RIGHTS) and the offset in it, and the server may mmap it.
// Any other memory is mapped without an fd, and the server reaches it through DMA_READ
// and DMA_WRITE, which this object answers from the memory itself, checking the range
// lies in live mappings with the access the map granted. It answers them for fd-backed
// maps too (the spec lets a server use either).
import { sysError, type SysError } from '../../addon/errors.js';
import {
  decodeDmaReadRequest, decodeDmaWriteRequest, encodeDmaMap, encodeDmaReadReply, encodeDmaUnmap, encodeDmaWriteReply,
  vfioUserDmaFlags, type VfioUserBody, type VfioUserCommandName,
} from '../../uapi/vfio-user/index.js';
import { DmaMapping } from '../dma-mapping.js';
import { resolveDmaMap, type DmaMapOptions, type DmaTarget } from '../dma-target.js';
import { formatSize } from '../names.js';
import type { VfioUserConnection } from './connection.js';
import type { VfioUserSys } from './sys.js';

const MAP = 'VFIO_USER_DMA_MAP';
const UNMAP = 'VFIO_USER_DMA_UNMAP';

export class VfioUserDma implements DmaTarget {
  /** Live mappings by IOVA. */
  private readonly live = new Map<bigint, DmaMapping>();
  private forgotten = false;

  constructor(private readonly connection: VfioUserConnection, private readonly sys: VfioUserSys) {
    connection.setCommandHandler((command, body) => this.serve(command, body));
  }

  get closed(): boolean {
    return this.forgotten || this.connection.closed;
  }

  get mappings(): readonly DmaMapping[] {
    return [...this.live.values()].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  }

  /**
   * VFIO_USER_DMA_MAP. The IOVA and size must be multiples of the server's smallest DMA
   * page size (EINVAL); a range overlapping a live mapping is EEXIST and one past the
   * server's max_dma_maps ENOSPC, as the kernel's TYPE1 answers.
   */
  map(options: DmaMapOptions): DmaMapping {
    if (this.closed) throw sysError('EBADF', 'ioctl', MAP, `the vfio-user connection to ${this.connection.path} is closed`);
    const r = resolveDmaMap(options, MAP);
    const { dmaPageSize, maxDmaMaps, sendFds } = this.connection.negotiated;
    const size = BigInt(r.size);
    if (size === 0n || r.iova % dmaPageSize !== 0n || size % dmaPageSize !== 0n) {
      throw sysError('EINVAL', 'ioctl', MAP, `iova 0x${r.iova.toString(16)} and size ${r.size} must be multiples of the server's page size ${dmaPageSize}`);
    }
    for (const m of this.live.values()) {
      if (r.iova <= m.end && m.iova < r.iova + size) throw sysError('EEXIST', 'ioctl', MAP, `overlaps ${m.iova.toString(16)}..${m.end.toString(16)}`);
    }
    if (this.live.size >= maxDmaMaps) throw sysError('ENOSPC', 'ioctl', MAP, `the server takes at most ${maxDmaMaps} mappings`);
    const shared = this.sys.sharedFdOf(r.memory);
    // The server mmaps the fd at the offset: only a page-aligned one will do.
    const offset = shared === undefined ? undefined : shared.offset + r.offset;
    const withFd = shared !== undefined && offset !== undefined && offset % this.sys.pageSize === 0 && sendFds > 0;
    const body = encodeDmaMap({
      flags: (r.read ? vfioUserDmaFlags.VFIO_USER_F_DMA_REGION_READ : 0) | (r.write ? vfioUserDmaFlags.VFIO_USER_F_DMA_REGION_WRITE : 0),
      offset: withFd ? BigInt(offset) : 0n,
      address: r.iova,
      size,
    });
    const reply = this.connection.request(MAP, body, { fds: withFd ? [shared.fd] : [], syscall: 'ioctl' });
    for (const fd of reply.fds) this.connection.closeReceived(fd);
    const mapping = new DmaMapping(this, r.iova, size, r.vaddr, r.memory, r.offset, r.read, r.write);
    this.live.set(r.iova, mapping);
    return mapping;
  }

  /**
   * VFIO_USER_DMA_UNMAP of every mapping that starts in [iova, iova+size); returns the
   * bytes unmapped (0 when none). The spec unmaps exact mappings only, so a range that
   * would split one is EINVAL, as TYPE1v2 answers.
   */
  unmap(iova: bigint | number, size: bigint | number): bigint {
    if (this.closed) throw sysError('EBADF', 'ioctl', UNMAP, `the vfio-user connection to ${this.connection.path} is closed`);
    const start = BigInt(iova);
    const end = start + BigInt(size);
    const victims = this.mappings.filter((m) => m.iova < end && m.end >= start);
    const split = victims.find((m) => m.iova < start || m.end >= end);
    if (split) throw sysError('EINVAL', 'ioctl', UNMAP, `would split the mapping at 0x${split.iova.toString(16)} (${formatSize(split.size)})`);
    let total = 0n;
    for (const m of victims) {
      const reply = this.connection.request(UNMAP, encodeDmaUnmap({ flags: 0, address: m.iova, size: m.size }), { syscall: 'ioctl' });
      for (const fd of reply.fds) this.connection.closeReceived(fd);
      this.live.delete(m.iova);
      total += m.size;
    }
    return total;
  }

  /** The server drops every mapping when the connection ends: so do we, without a message. */
  forget(): void {
    this.forgotten = true;
    this.live.clear();
  }

  /** The server's DMA_READ and DMA_WRITE: from and to the mapped memory, or an errno. */
  private serve(command: VfioUserCommandName, body: Uint8Array): VfioUserBody | SysError {
    const limit = this.connection.limits.maxDataXferSize;
    if (command === 'VFIO_USER_DMA_READ') {
      const { address, count } = decodeDmaReadRequest(body);
      if (count > limit) return sysError('E2BIG', 'vfio-user', command, `${count} bytes, above max_data_xfer_size ${limit}`);
      const data = new Uint8Array(count);
      const failure = this.access(address, count, 'read', (bytes, at) => data.set(bytes, at));
      return failure ?? encodeDmaReadReply(address, data);
    }
    const { address, count, data } = decodeDmaWriteRequest(body);
    if (count > limit) return sysError('E2BIG', 'vfio-user', command, `${count} bytes, above max_data_xfer_size ${limit}`);
    const failure = this.access(address, count, 'write', (bytes, at) => bytes.set(data.subarray(at, at + bytes.byteLength)));
    return failure ?? encodeDmaWriteReply(address, count);
  }

  /**
   * Walks [address, address+count) through the mappings, calling `move` with each piece's
   * bytes and its place in the transfer. EFAULT for a byte no live mapping covers, EPERM
   * for one whose mapping denies the access. Nothing moves unless all of it may.
   */
  private access(address: bigint, count: number, kind: 'read' | 'write', move: (bytes: Uint8Array, at: number) => void): SysError | undefined {
    const command = kind === 'read' ? 'VFIO_USER_DMA_READ' : 'VFIO_USER_DMA_WRITE';
    const pieces: { bytes: Uint8Array; at: number }[] = [];
    for (let done = 0; done < count;) {
      const at = address + BigInt(done);
      const m = [...this.live.values()].find((x) => x.iova <= at && at <= x.end);
      const bytes = m?.bytes;
      if (!m || !bytes || bytes.byteLength === 0) return sysError('EFAULT', 'vfio-user', command, `iova 0x${at.toString(16)} is not mapped`);
      if (kind === 'read' ? !m.read : !m.write) return sysError('EPERM', 'vfio-user', command, `iova 0x${at.toString(16)} is mapped without ${kind} access`);
      const inside = Number(at - m.iova);
      const n = Math.min(count - done, bytes.byteLength - inside);
      pieces.push({ bytes: bytes.subarray(inside, inside + n), at: done });
      done += n;
    }
    for (const p of pieces) move(p.bytes, p.at);
    return undefined;
  }
}
