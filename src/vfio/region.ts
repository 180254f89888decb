// One region of a device fd (a BAR, the ROM, config space, or a device-specific
// region): typed little-endian register access and bulk transfers through
// pread/pwrite at info.offset + offset, and mmap of the region or its sparse areas.
import { inspect } from 'node:util';
import type { SysLayer } from '../sys/types.js';
import { PROT_READ, PROT_WRITE } from '../sys/types.js';
import { sysError } from '../addon/errors.js';
import { capIds, flags } from '../uapi/constants.js';
import { vfio_region_info } from '../uapi/structs.js';
import { decodeRegionType, decodeSparseMmap } from '../uapi/caps.js';
import { capsOf } from './argsz.js';
import { RegionMapping } from './region-mapping.js';
import { formatSize, hex } from './names.js';

/** A part of a region that may be mmapped (VFIO_REGION_INFO_CAP_SPARSE_MMAP). */
export interface SparseArea {
  offset: number;
  size: number;
}

/** What a Region needs from its device: the fd, or an EBADF once the device is closed. */
export interface RegionHost {
  readonly sys: SysLayer;
  readonly fd: number;
}

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`region offset must be a non-negative integer, got ${offset}`);
}

export class Region {
  readonly index: number;
  readonly flags: number;
  /** Bytes; 0 for an unimplemented BAR. */
  readonly size: number;
  /** Where the region starts in the device fd (vfio-pci: index << 40; others choose). */
  readonly offset: bigint;
  /** The mmappable parts, when the kernel restricts mmap to them. */
  readonly sparseAreas: readonly SparseArea[] | undefined;
  /** VFIO_REGION_INFO_CAP_TYPE, for device-specific regions. */
  readonly type: { type: number; subtype: number } | undefined;
  /** The MSI-X table may be mmapped together with the rest of the BAR. */
  readonly msixMappable: boolean;

  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** One view per access width over `scratch`, made once: register access is the hot path. */
  private readonly scratchByWidth: Record<number, Uint8Array> = {
    1: this.scratch.subarray(0, 1), 2: this.scratch.subarray(0, 2), 4: this.scratch.subarray(0, 4), 8: this.scratch,
  };
  private readonly live = new Set<RegionMapping>();

  /** Decodes a filled vfio_region_info buffer (caps included). */
  constructor(private readonly host: RegionHost, info: Uint8Array, readonly name: string) {
    const head = vfio_region_info.decode(info);
    this.index = head.index;
    this.flags = head.flags;
    this.size = Number(head.size);
    this.offset = head.offset;
    let sparse: SparseArea[] | undefined;
    let type: { type: number; subtype: number } | undefined;
    let msix = false;
    for (const cap of capsOf(info, (head.flags & flags.VFIO_REGION_INFO_FLAG_CAPS) !== 0, head.cap_offset)) {
      if (cap.id === capIds.VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
        sparse = decodeSparseMmap(info, cap.offset).map((a) => ({ offset: Number(a.offset), size: Number(a.size) }));
      } else if (cap.id === capIds.VFIO_REGION_INFO_CAP_TYPE) {
        type = decodeRegionType(info, cap.offset);
      } else if (cap.id === capIds.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
        msix = true;
      }
    }
    this.sparseAreas = sparse;
    this.type = type;
    this.msixMappable = msix;
  }

  get readable(): boolean {
    return (this.flags & flags.VFIO_REGION_INFO_FLAG_READ) !== 0;
  }

  get writable(): boolean {
    return (this.flags & flags.VFIO_REGION_INFO_FLAG_WRITE) !== 0;
  }

  get mmappable(): boolean {
    return (this.flags & flags.VFIO_REGION_INFO_FLAG_MMAP) !== 0;
  }

  read8(offset: number): number {
    this.readScratch(offset, 1);
    return this.scratchView.getUint8(0);
  }

  read16(offset: number): number {
    this.readScratch(offset, 2);
    return this.scratchView.getUint16(0, true);
  }

  read32(offset: number): number {
    this.readScratch(offset, 4);
    return this.scratchView.getUint32(0, true);
  }

  read64(offset: number): bigint {
    this.readScratch(offset, 8);
    return this.scratchView.getBigUint64(0, true);
  }

  write8(offset: number, value: number): void {
    this.scratchView.setUint8(0, value);
    this.writeScratch(offset, 1);
  }

  write16(offset: number, value: number): void {
    this.scratchView.setUint16(0, value, true);
    this.writeScratch(offset, 2);
  }

  write32(offset: number, value: number): void {
    this.scratchView.setUint32(0, value >>> 0, true);
    this.writeScratch(offset, 4);
  }

  write64(offset: number, value: bigint): void {
    this.scratchView.setBigUint64(0, BigInt.asUintN(64, value), true);
    this.writeScratch(offset, 8);
  }

  /** pread of `length` bytes; shorter when the kernel stops at the end of the region. */
  read(offset: number, length: number): Uint8Array {
    checkOffset(offset);
    checkOffset(length);
    const buf = new Uint8Array(length);
    const done = this.host.sys.pread(this.host.fd, buf, this.offset + BigInt(offset));
    return done === length ? buf : buf.subarray(0, done);
  }

  /** pwrite; returns the bytes the kernel took. */
  write(offset: number, bytes: Uint8Array): number {
    checkOffset(offset);
    return this.host.sys.pwrite(this.host.fd, bytes, this.offset + BigInt(offset));
  }

  /**
   * mmap of the whole region, or of `area` (e.g. one of sparseAreas). Read/write
   * protection follows the region's flags. Unmapped when the region's device closes.
   */
  mmap(area: SparseArea = { offset: 0, size: this.size }): RegionMapping {
    checkOffset(area.offset);
    checkOffset(area.size);
    if (!this.mmappable) throw sysError('EINVAL', 'mmap', undefined, `${this.name} cannot be mmapped`);
    const prot = (this.readable ? PROT_READ : 0) | (this.writable ? PROT_WRITE : 0);
    const raw = this.host.sys.mmap(this.host.fd, this.offset + BigInt(area.offset), area.size, prot);
    const mapping = new RegionMapping(this.host.sys, raw, this.name, area.offset, (m) => this.live.delete(m));
    this.live.add(mapping);
    return mapping;
  }

  /** Mappings of this region still mapped. */
  get mappings(): readonly RegionMapping[] {
    return [...this.live];
  }

  /** Unmaps every mapping of the region (the device calls this before closing its fd). */
  close(): void {
    for (const m of [...this.live]) m.unmap();
  }

  private readScratch(offset: number, width: number): void {
    checkOffset(offset);
    const buf = this.scratchByWidth[width]!;
    const done = this.host.sys.pread(this.host.fd, buf, this.offset + BigInt(offset));
    if (done !== width) throw sysError('EIO', 'pread', undefined, `short read: ${done} of ${width} bytes at ${this.name}+${hex(offset)}`);
  }

  private writeScratch(offset: number, width: number): void {
    checkOffset(offset);
    const buf = this.scratchByWidth[width]!;
    const done = this.host.sys.pwrite(this.host.fd, buf, this.offset + BigInt(offset));
    if (done !== width) throw sysError('EIO', 'pwrite', undefined, `short write: ${done} of ${width} bytes at ${this.name}+${hex(offset)}`);
  }

  /** "BAR0 1 MiB rw mmap" and the like. */
  summary(): string {
    if (this.size === 0) return `${this.name} unimplemented`;
    const access = `${this.readable ? 'r' : ''}${this.writable ? 'w' : ''}` || 'no access';
    const parts = [this.name, formatSize(this.size), access];
    if (this.mmappable) parts.push(this.sparseAreas ? `mmap ${this.sparseAreas.length} sparse area${this.sparseAreas.length === 1 ? '' : 's'}` : 'mmap');
    if (this.type) parts.push(`type ${hex(this.type.type)}:${this.type.subtype}`);
    if (this.msixMappable) parts.push('msix-mappable');
    return parts.join(' ');
  }

  [inspect.custom](): string {
    return `Region ${this.summary()} at fd offset ${hex(this.offset)}`;
  }
}
