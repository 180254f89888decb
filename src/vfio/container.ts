// A VFIO container (/dev/vfio/vfio): the IOMMU context its groups share, and the DMA
// mappings made in it. The order of use is the kernel's: open, attach a group
// (Group.attach), setIommu(), then map.
import { inspect } from 'node:util';
import type { SysLayer } from '../sys/types.js';
import { sysError } from '../addon/errors.js';
import { extensions, flags, VFIO_API_VERSION } from '../uapi/constants.js';
import { vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info } from '../uapi/structs.js';
import {
  decodeDmaAvail, decodeIovaRanges, decodeMigration, type Range,
} from '../uapi/caps.js';
import { capIds } from '../uapi/constants.js';
import { capsOf, queryInfo } from './argsz.js';
import { closedError, vfioIoctl } from './ioctl.js';
import { DmaMapping } from './dma-mapping.js';
import { resolveDmaMap, type DmaMapOptions, type DmaTarget } from './dma-target.js';
import { formatSize } from './names.js';
import type { Group } from './group.js';

export type ExtensionName = keyof typeof extensions;

export interface ContainerOptions {
  /** Defaults to /dev/vfio/vfio. */
  path?: string;
}

export interface IommuInfo {
  flags: number;
  /** iova_pgsizes: a bitmap of the page sizes the IOMMU supports. */
  pageSizes: bigint;
  /** The smallest page size: MAP_DMA's alignment unit. */
  minPageSize: bigint;
  /** Valid IOVA ranges (inclusive ends), when the kernel reports them. */
  iovaRanges?: Range[];
  /** How many more DMA mappings the container accepts (DMA_AVAIL). */
  dmaAvail?: number;
  /** Dirty page tracking capability (MIGRATION). */
  migration?: { flags: number; pgsizeBitmap: bigint; maxDirtyBitmapSize: bigint };
}

export interface DmaSummary {
  count: number;
  bytes: bigint;
}

/** Mappings listed by inspect before "... N more". */
const INSPECT_MAPPINGS = 8;

function extensionName(value: number): string {
  for (const [name, v] of Object.entries(extensions)) if (v === value) return name.replace(/^VFIO_|_IOMMU$/g, '');
  return `iommu ${value}`;
}

export class Container implements DmaTarget {
  private fdNumber: number;
  private iommu: number | undefined;
  private readonly groups = new Set<Group>();
  /** Live mappings this container made, by IOVA. */
  private readonly dma = new Map<bigint, DmaMapping>();

  private constructor(readonly sys: SysLayer, fd: number, readonly apiVersion: number) {
    this.fdNumber = fd;
  }

  /** Opens a container and checks VFIO_GET_API_VERSION. */
  static open(sys: SysLayer, options: ContainerOptions = {}): Container {
    const fd = sys.open(options.path ?? '/dev/vfio/vfio');
    try {
      const version = vfioIoctl(sys, fd, 'VFIO_GET_API_VERSION');
      if (version !== VFIO_API_VERSION) {
        throw sysError('EINVAL', 'ioctl', 'VFIO_GET_API_VERSION', `API version ${version}, this client speaks ${VFIO_API_VERSION}`);
      }
      return new Container(sys, fd, version);
    } catch (err) {
      sys.close(fd);
      throw err;
    }
  }

  get fd(): number {
    if (this.fdNumber < 0) throw closedError('container', 'container');
    return this.fdNumber;
  }

  get closed(): boolean {
    return this.fdNumber < 0;
  }

  /** The IOMMU type set by setIommu() (VFIO_TYPE1v2_IOMMU ...), or undefined. */
  get iommuType(): number | undefined {
    return this.iommu;
  }

  /** Groups attached to this container. */
  get attachedGroups(): readonly Group[] {
    return [...this.groups];
  }

  /** VFIO_CHECK_EXTENSION: whether the kernel supports an IOMMU type or extension. */
  checkExtension(extension: ExtensionName | number): boolean {
    const value = typeof extension === 'number' ? extension : extensions[extension];
    return vfioIoctl(this.sys, this.fd, 'VFIO_CHECK_EXTENSION', value) > 0;
  }

  /**
   * VFIO_SET_IOMMU. Needs a group attached. Without `type`, TYPE1v2 when the kernel
   * offers it (no partial unmaps, the semantics QEMU relies on), else TYPE1.
   */
  setIommu(type?: ExtensionName | number): number {
    let value: number;
    if (type === undefined) {
      if (this.checkExtension('VFIO_TYPE1v2_IOMMU')) value = extensions.VFIO_TYPE1v2_IOMMU;
      else if (this.checkExtension('VFIO_TYPE1_IOMMU')) value = extensions.VFIO_TYPE1_IOMMU;
      else throw sysError('ENODEV', 'ioctl', 'VFIO_SET_IOMMU', 'the kernel offers neither TYPE1v2 nor TYPE1');
    } else {
      value = typeof type === 'number' ? type : extensions[type];
    }
    vfioIoctl(this.sys, this.fd, 'VFIO_SET_IOMMU', value);
    this.iommu = value;
    return value;
  }

  /** VFIO_IOMMU_GET_INFO with the argsz retry, capabilities decoded. */
  iommuInfo(): IommuInfo {
    const buf = queryInfo(this.sys, this.fd, { name: 'VFIO_IOMMU_GET_INFO', baseSize: vfio_iommu_type1_info.size });
    const head = vfio_iommu_type1_info.decode(buf);
    const pageSizes = head.flags & flags.VFIO_IOMMU_INFO_PGSIZES ? head.iova_pgsizes : 0n;
    const info: IommuInfo = { flags: head.flags, pageSizes, minPageSize: pageSizes & -pageSizes };
    for (const cap of capsOf(buf, (head.flags & flags.VFIO_IOMMU_INFO_CAPS) !== 0, head.cap_offset)) {
      if (cap.id === capIds.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) info.iovaRanges = decodeIovaRanges(buf, cap.offset);
      else if (cap.id === capIds.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) info.migration = decodeMigration(buf, cap.offset);
      else if (cap.id === capIds.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) info.dmaAvail = decodeDmaAvail(buf, cap.offset);
    }
    return info;
  }

  /** VFIO_IOMMU_MAP_DMA: makes memory visible to the devices at `iova`. */
  map(options: DmaMapOptions): DmaMapping {
    const { memory, offset, size, read, write, iova, vaddr } = resolveDmaMap(options, 'VFIO_IOMMU_MAP_DMA');
    const arg = vfio_iommu_type1_dma_map.encode({
      argsz: vfio_iommu_type1_dma_map.size,
      flags: (read ? flags.VFIO_DMA_MAP_FLAG_READ : 0) | (write ? flags.VFIO_DMA_MAP_FLAG_WRITE : 0),
      vaddr, iova, size: BigInt(size),
    });
    vfioIoctl(this.sys, this.fd, 'VFIO_IOMMU_MAP_DMA', arg);
    const mapping = new DmaMapping(this, iova, BigInt(size), vaddr, memory, offset, read, write);
    this.dma.set(iova, mapping);
    return mapping;
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA of [iova, iova+size): returns the bytes the kernel unmapped
   * (0 when nothing was mapped there). TYPE1v2 refuses to split a mapping (EINVAL).
   */
  unmap(iova: bigint | number, size: bigint | number): bigint {
    const start = BigInt(iova);
    const length = BigInt(size);
    const arg = vfio_iommu_type1_dma_unmap.encode({ argsz: vfio_iommu_type1_dma_unmap.size, flags: 0, iova: start, size: length });
    vfioIoctl(this.sys, this.fd, 'VFIO_IOMMU_UNMAP_DMA', arg);
    // Both TYPE1 flavours remove whole mappings, those whose first byte lies in the range.
    for (const [at] of this.dma) if (at >= start && at - start < length) this.dma.delete(at);
    return vfio_iommu_type1_dma_unmap.decode(arg).size;
  }

  /** Removes every mapping: VFIO_DMA_UNMAP_FLAG_ALL when offered, else one by one. */
  unmapAll(): bigint {
    if (this.checkExtension('VFIO_UNMAP_ALL')) {
      const arg = vfio_iommu_type1_dma_unmap.encode({
        argsz: vfio_iommu_type1_dma_unmap.size, flags: flags.VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n,
      });
      vfioIoctl(this.sys, this.fd, 'VFIO_IOMMU_UNMAP_DMA', arg);
      this.dma.clear();
      return vfio_iommu_type1_dma_unmap.decode(arg).size;
    }
    let total = 0n;
    for (const m of [...this.dma.values()]) total += this.unmap(m.iova, m.size);
    return total;
  }

  /** The live mappings this container made, by IOVA. */
  get mappings(): readonly DmaMapping[] {
    return [...this.dma.values()].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  }

  dmaSummary(): DmaSummary {
    let bytes = 0n;
    for (const m of this.dma.values()) bytes += m.size;
    return { count: this.dma.size, bytes };
  }

  /** For Group.attach(): the group joined this container. */
  addGroup(group: Group): void {
    this.groups.add(group);
  }

  /** For Group.detach(): removing the last group drops the IOMMU and every mapping. */
  removeGroup(group: Group): void {
    this.groups.delete(group);
    if (this.groups.size === 0) {
      this.iommu = undefined;
      this.dma.clear();
    }
  }

  /** Closes the groups still attached (and so their devices) first, then the container. */
  close(): void {
    if (this.fdNumber < 0) return;
    for (const group of [...this.groups]) group.close();
    const fd = this.fdNumber;
    this.fdNumber = -1;
    this.dma.clear();
    this.sys.close(fd);
  }

  [inspect.custom](): string {
    if (this.closed) return 'Container (closed)';
    const type = this.iommu === undefined ? 'no IOMMU set' : extensionName(this.iommu);
    const groups = [...this.groups].map((g) => g.number).join(', ');
    const { count, bytes } = this.dmaSummary();
    const head = `Container fd ${this.fdNumber} ${type}, groups [${groups}], ${count} DMA mapping${count === 1 ? '' : 's'} (${formatSize(bytes)})`;
    const shown = this.mappings.slice(0, INSPECT_MAPPINGS).map((m) => `\n  ${inspect(m)}`).join('');
    const more = count > INSPECT_MAPPINGS ? `\n  ... ${count - INSPECT_MAPPINGS} more` : '';
    return head + shown + more;
  }
}
