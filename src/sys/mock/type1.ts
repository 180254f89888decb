// The TYPE1 / TYPE1v2 IOMMU driver of the mock kernel (vfio_iommu_type1): the ioctls a
// container passes through once SET_IOMMU chose it, the DMA mappings, pinning and
// locked-memory accounting, dirty-page tracking, and the groups attached to it.
// Validation order and errnos follow drivers/vfio/vfio_iommu_type1.c.
//
// Groups are IOMMU-backed (a real device behind an IOMMU domain: mappings pin user
// memory) or emulated (an mdev-style group: mappings are only recorded, no pinning,
// no accounting, page size PAGE_SIZE, no IOVA range limit).
//
// Devices (mediated ones: the vGPUs) pin single pages on demand through their DmaSpace
// (vfio_pin_pages): pins are counted per IOVA and, without an IOMMU domain, each newly
// pinned page is charged to locked memory. Before an unmap removes a mapping with
// pinned pages every open device is told (dma_unmap) and must unpin; see settlePins
// for what happens when one does not.
import { extensions, flags } from '../../uapi/constants.js';
import { chainCaps, dmaAvailCap, iovaRangeCap, migrationCap, type Range } from '../../uapi/caps.js';
import { ioctls } from '../../uapi/ioctls.js';
import {
  vfio_bitmap, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get, vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info,
} from '../../uapi/structs.js';
import { sysError, type ErrnoCode } from '../../addon/errors.js';
import type { AddressSpace, Segment } from './address-space.js';
import { accessOk, DIRTY_BITMAP_SIZE_MAX, lowestBit, verifyBitmapSize, writeUserBitmap } from './dirty-bitmap.js';
import { DmaStore, IOMMU_READ, IOMMU_WRITE, type DmaMapping, type PinnedPage, type PinOwner } from './dma-store.js';
import type { LockedMemory } from './locked-memory.js';
import type { IommuPlatform, KernelFlavour } from './options.js';
import { requireUserBytes, userPointer } from './user-args.js';

const U64_MAX = (1n << 64n) - 1n;
/** The kernel notifies devices about one mapping at most this many more times, then BUGs. */
const UNMAP_NOTIFY_RETRIES = 10;

/** What the IOMMU driver needs from the kernel around it. */
export interface Type1Context {
  readonly mm: AddressSpace;
  readonly locked: LockedMemory;
  readonly pageSize: number;
  readonly flavour: KernelFlavour;
  readonly dmaEntryLimit: number;
  readonly platform: IommuPlatform;
}

/** A group as the IOMMU driver sees it. */
export interface Type1Group {
  readonly id: number;
  readonly iommuBacked: boolean;
}

function fail(code: ErrnoCode, operation: string, detail?: string): never {
  throw sysError(code, 'ioctl', operation, detail);
}

function pinFail(code: ErrnoCode, syscall: 'vfio_pin_pages' | 'vfio_unpin_pages', detail: string): never {
  throw sysError(code, syscall, undefined, detail);
}

/** The valid IOVA ranges of a domain: its aperture minus its reserved regions. */
export function validRanges(platform: IommuPlatform): Range[] {
  let ranges: Range[] = [{ ...platform.aperture }];
  for (const r of platform.reserved) {
    ranges = ranges.flatMap((n) => {
      if (r.start > n.end || r.end < n.start) return [n];
      const out: Range[] = [];
      if (r.start > n.start) out.push({ start: n.start, end: r.start - 1n });
      if (r.end < n.end) out.push({ start: r.end + 1n, end: n.end });
      return out;
    });
  }
  return ranges;
}

export class Type1Iommu {
  readonly store = new DmaStore<DmaMapping>();
  private dmaAvail: number;
  private readonly iommuGroups = new Set<number>();
  private readonly emulatedGroups = new Set<number>();
  /** Valid IOVA ranges; empty while only emulated groups were ever attached. */
  private iovaList: Range[] = [];
  private pgsizeBitmapValue = 0n;
  /** log2 of the smallest page size, kept with the bitmap (every MAP and UNMAP needs it). */
  private pgshift = 0n;
  /** 1 << pgshift, kept with it: every MAP_DMA and UNMAP_DMA checks alignment against it. */
  private minPageSizeValue = 1n;
  private minPageMask = 0n;
  private dirtyTracking = false;
  private vaddrInvalidCount = 0;
  /** Open devices that can be told to unpin (iommu->device_list); only they may pin. */
  private readonly devices = new Set<PinOwner>();
  /** IOMMU-backed groups that never pinned (num_non_pinned_groups): they may dirty any page. */
  private readonly nonPinnedGroups = new Set<number>();
  /** Pages pinned through pinPages, over all mappings. */
  private pinnedPageCount = 0;
  /** Pins dropped by force because their device did not unpin them (see settlePins). */
  forcedUnpins = 0;

  constructor(private readonly ctx: Type1Context, readonly v2: boolean, readonly nesting = false) {
    this.dmaAvail = ctx.dmaEntryLimit;
    this.pgsizeBitmap = this.pageMask();
  }

  private get pgsizeBitmap(): bigint {
    return this.pgsizeBitmapValue;
  }

  private set pgsizeBitmap(bitmap: bigint) {
    this.pgsizeBitmapValue = bitmap;
    this.pgshift = lowestBit(bitmap);
    this.minPageSizeValue = 1n << this.pgshift;
    this.minPageMask = this.minPageSizeValue - 1n;
  }

  /** vfio_iommu_type1_open(): which SET_IOMMU arguments make a TYPE1 IOMMU. */
  static open(ctx: Type1Context, type: bigint): Type1Iommu {
    if (type === BigInt(extensions.VFIO_TYPE1_IOMMU)) return new Type1Iommu(ctx, false);
    if (type === BigInt(extensions.VFIO_TYPE1v2_IOMMU)) return new Type1Iommu(ctx, true);
    if (type === BigInt(extensions.VFIO_TYPE1_NESTING_IOMMU)) return new Type1Iommu(ctx, true, true);
    throw sysError('EINVAL', 'ioctl', 'VFIO_SET_IOMMU', `IOMMU type ${type}`);
  }

  /** CHECK_EXTENSION as type1 answers it; `iommu` is undefined before SET_IOMMU. */
  static checkExtension(iommu: Type1Iommu | undefined, ext: bigint): number {
    switch (ext) {
      case BigInt(extensions.VFIO_TYPE1_IOMMU):
      case BigInt(extensions.VFIO_TYPE1v2_IOMMU):
      case BigInt(extensions.VFIO_TYPE1_NESTING_IOMMU):
      case BigInt(extensions.VFIO_UNMAP_ALL):
        return 1;
      case BigInt(extensions.VFIO_UPDATE_VADDR):
        return iommu && iommu.emulatedGroups.size === 0 ? 1 : 0;
      case BigInt(extensions.VFIO_DMA_CC_IOMMU):
        // The emulated VT-d has no snoop control, so an IOMMU domain never enforces
        // coherency; with no domain at all the kernel's loop answers 1.
        if (!iommu) return 0;
        return iommu.iommuGroups.size === 0 ? 1 : 0;
      default:
        return 0;
    }
  }

  get hasIommuDomain(): boolean {
    return this.iommuGroups.size > 0;
  }

  /** The smallest page size mappings must be aligned to. */
  get minPageSize(): bigint {
    return this.minPageSizeValue;
  }

  get dirtyPageTracking(): boolean {
    return this.dirtyTracking;
  }

  // ---- groups ----

  attachGroup(group: Type1Group): void {
    const op = 'VFIO_GROUP_SET_CONTAINER';
    if (this.vaddrInvalidCount) fail('EBUSY', op, 'a vaddr is invalidated');
    if (this.iommuGroups.has(group.id) || this.emulatedGroups.has(group.id)) fail('EINVAL', op, 'group already attached');
    if (!group.iommuBacked) {
      this.emulatedGroups.add(group.id);
      return;
    }
    // The emulated VT-d cannot make a nesting domain (SET_IOMMU(NESTING) is EINVAL, notes).
    if (this.nesting) fail('EINVAL', op, 'nesting is not supported by this IOMMU');
    if (this.iommuGroups.size === 0) this.attachFirstDomain(op);
    this.iommuGroups.add(group.id);
    // It can write memory without telling anyone, until it pins (pinned_page_dirty_scope).
    this.nonPinnedGroups.add(group.id);
  }

  detachGroup(group: Type1Group): void {
    const emulated = this.emulatedGroups.has(group.id);
    if (!emulated && !this.iommuGroups.has(group.id)) return;
    // Its devices are closed by now; pins they left behind go with the group.
    for (const owner of [...this.devices]) if (owner.group.id === group.id) this.devices.delete(owner);
    this.dropPinsOf((owner) => owner.group.id === group.id, 'when its group left the container');
    if (emulated) {
      this.emulatedGroups.delete(group.id);
      if (this.emulatedGroups.size === 0 && this.iommuGroups.size === 0) this.unmapUnpinAll();
      return;
    }
    this.iommuGroups.delete(group.id);
    if (this.iommuGroups.size === 0) {
      if (this.emulatedGroups.size === 0) this.unmapUnpinAll();
      else this.unpinReaccountAll();
      // With no domain left the aperture opens up to everything and pages are PAGE_SIZE.
      this.iovaList = [{ start: 0n, end: U64_MAX }];
      this.pgsizeBitmap = this.pageMask();
    }
    // A group that could dirty memory without pinning left: what it may have dirtied is
    // unknown, so every page counts as dirty until the next report.
    if (this.nonPinnedGroups.delete(group.id) && this.dirtyTracking) for (const m of this.store.values()) m.dirty = 'all';
  }

  /** The container dropped its last group: every mapping goes. */
  release(): void {
    this.unmapUnpinAll();
  }

  // ---- ioctls ----

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    switch (request) {
      case ioctls.VFIO_IOMMU_GET_INFO: return this.getInfo(arg);
      case ioctls.VFIO_IOMMU_MAP_DMA: return this.mapDma(arg);
      case ioctls.VFIO_IOMMU_UNMAP_DMA: return this.unmapDma(arg);
      case ioctls.VFIO_IOMMU_DIRTY_PAGES: return this.dirtyPages(arg);
      default:
        throw sysError('ENOTTY', 'ioctl', undefined, `ioctl 0x${request.toString(16)} on a TYPE1 container`);
    }
  }

  private getInfo(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_IOMMU_GET_INFO';
    const buf = userPointer(arg, op);
    const minsz = 16; // offsetofend(iova_pgsizes)
    requireUserBytes(buf, 0, minsz, op);
    let argsz = vfio_iommu_type1_info.decode(padTo(buf, 24)).argsz;
    if (argsz < minsz) fail('EINVAL', op, `argsz ${argsz}`);
    const copyOut = Math.min(argsz, vfio_iommu_type1_info.size);
    let infoFlags = flags.VFIO_IOMMU_INFO_PGSIZES;
    let capOffset = 0;
    const caps = [
      migrationCap(this.minPageSize, DIRTY_BITMAP_SIZE_MAX),
      dmaAvailCap(this.dmaAvail),
      ...(this.iovaList.length ? [iovaRangeCap(this.iovaList)] : []),
    ];
    const chain = chainCaps(caps, vfio_iommu_type1_info.size, this.ctx.flavour === '6.1' ? 1 : 8);
    if (chain.byteLength) {
      infoFlags |= flags.VFIO_IOMMU_INFO_CAPS;
      const needed = vfio_iommu_type1_info.size + chain.byteLength;
      if (argsz < needed) {
        argsz = needed;
      } else {
        requireUserBytes(buf, vfio_iommu_type1_info.size, chain.byteLength, op);
        buf.set(chain, vfio_iommu_type1_info.size);
        capOffset = vfio_iommu_type1_info.size;
      }
    }
    const info = vfio_iommu_type1_info.encode({ argsz, flags: infoFlags, iova_pgsizes: this.pgsizeBitmap, cap_offset: capOffset });
    requireUserBytes(buf, 0, copyOut, op);
    buf.set(info.subarray(0, copyOut), 0);
    return 0;
  }

  private mapDma(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_IOMMU_MAP_DMA';
    const buf = userPointer(arg, op);
    requireUserBytes(buf, 0, vfio_iommu_type1_dma_map.size, op);
    const map = vfio_iommu_type1_dma_map.decode(buf);
    const known = flags.VFIO_DMA_MAP_FLAG_READ | flags.VFIO_DMA_MAP_FLAG_WRITE | flags.VFIO_DMA_MAP_FLAG_VADDR;
    if (map.argsz < vfio_iommu_type1_dma_map.size || (map.flags & ~known) !== 0) fail('EINVAL', op, `argsz ${map.argsz} flags 0x${map.flags.toString(16)}`);
    const setVaddr = (map.flags & flags.VFIO_DMA_MAP_FLAG_VADDR) !== 0;
    let prot = 0;
    if (map.flags & flags.VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
    if (map.flags & flags.VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
    if ((prot !== 0) === setVaddr) fail('EINVAL', op, 'needs READ and/or WRITE, or VADDR alone');
    const { iova, vaddr, size } = map;
    if (size === 0n || ((size | iova | vaddr) & this.minPageMask) !== 0n) fail('EINVAL', op, 'size 0 or not page aligned');
    const last = iova + size - 1n;
    if (last > U64_MAX || vaddr + size - 1n > U64_MAX) fail('EINVAL', op, 'address wraps');

    const existing = this.store.find(iova, size);
    if (setVaddr) {
      if (!existing) fail('ENOENT', op, 'no mapping at that iova');
      if (!existing.vaddrInvalid || existing.iova !== iova || existing.size !== size) fail('EINVAL', op, 'not an invalidated mapping of that exact range');
      existing.vaddr = vaddr;
      existing.vaddrInvalid = false;
      this.vaddrInvalidCount--;
      return 0;
    }
    if (existing) fail('EEXIST', op, `overlaps the mapping at iova 0x${existing.iova.toString(16)}`);
    if (this.dmaAvail === 0) fail('ENOSPC', op, 'no DMA entries left');
    if (!this.iovaValid(iova, last)) fail('EINVAL', op, 'outside the valid IOVA ranges');

    const mapping = new Type1Mapping(iova, size, vaddr, prot);
    if (this.hasIommuDomain) this.pinMapped(mapping, op);
    if (this.dirtyTracking) mapping.dirty = new Set();
    this.store.insert(mapping);
    this.dmaAvail--;
    return 0;
  }

  private unmapDma(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_IOMMU_UNMAP_DMA';
    const buf = userPointer(arg, op);
    const minsz = vfio_iommu_type1_dma_unmap.size;
    requireUserBytes(buf, 0, minsz, op);
    const unmap = vfio_iommu_type1_dma_unmap.decode(buf);
    const known = flags.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | flags.VFIO_DMA_UNMAP_FLAG_VADDR | flags.VFIO_DMA_UNMAP_FLAG_ALL;
    if (unmap.argsz < minsz || (unmap.flags & ~known) !== 0) fail('EINVAL', op, `argsz ${unmap.argsz} flags 0x${unmap.flags.toString(16)}`);
    const getDirty = (unmap.flags & flags.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
    if (getDirty && (unmap.flags & (flags.VFIO_DMA_UNMAP_FLAG_ALL | flags.VFIO_DMA_UNMAP_FLAG_VADDR)) !== 0) {
      fail('EINVAL', op, 'GET_DIRTY_BITMAP with ALL or VADDR');
    }
    let bitmap: { pgsize: bigint; size: bigint; data: bigint } | undefined;
    if (getDirty) {
      if (unmap.argsz < minsz + vfio_bitmap.size) fail('EINVAL', op, 'argsz too small for the bitmap');
      requireUserBytes(buf, minsz, vfio_bitmap.size, op);
      bitmap = vfio_bitmap.decode(buf, minsz);
      if (!accessOk(bitmap.data, bitmap.size)) fail('EINVAL', op, 'bitmap outside user memory');
      verifyBitmapSize(unmap.size >> lowestBit(bitmap.pgsize), bitmap.size, op);
    }
    const unmapped = this.doUnmap(unmap.iova, unmap.size, unmap.flags, bitmap, op);
    // The kernel writes the struct back (with the size unmapped) only on success.
    vfio_iommu_type1_dma_unmap.write(buf, { size: unmapped });
    return 0;
  }

  private doUnmap(iova: bigint, requested: bigint, unmapFlags: number, bitmap: { pgsize: bigint; data: bigint } | undefined, op: string): bigint {
    const unmapAll = (unmapFlags & flags.VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
    const invalidateVaddr = (unmapFlags & flags.VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
    if (invalidateVaddr && this.emulatedGroups.size) fail('EBUSY', op, 'cannot invalidate vaddrs with emulated groups attached');
    const pgsize = this.minPageSize;
    if (iova & this.minPageMask) fail('EINVAL', op, 'iova not page aligned');
    let size = requested;
    if (unmapAll) {
      if (iova !== 0n || size !== 0n) fail('EINVAL', op, 'UNMAP_ALL needs iova and size 0');
      size = U64_MAX;
    } else if (size === 0n || (size & this.minPageMask) !== 0n || iova + size - 1n > U64_MAX) {
      fail('EINVAL', op, 'size 0, not page aligned, or wrapping');
    }
    if (bitmap && (!this.dirtyTracking || bitmap.pgsize !== pgsize)) fail('EINVAL', op, 'dirty tracking off or wrong bitmap page size');
    const end = iova + size; // exclusive; cannot pass 2^64 here
    if (this.v2 && !unmapAll) {
      const first = this.store.find(iova, 1n);
      if (first && first.iova !== iova) fail('EINVAL', op, 'the range starts inside a mapping');
      const last = this.store.find(end - 1n, 0n);
      if (last && last.iova + last.size !== end) fail('EINVAL', op, 'the range ends inside a mapping');
    }
    let unmapped = 0n;
    const marked: DmaMapping[] = [];
    for (let m = this.store.first(iova, end); m;) {
      if (!this.v2 && iova > m.iova) break;
      if (invalidateVaddr) {
        if (m.vaddrInvalid) {
          for (const undo of marked) { undo.vaddrInvalid = false; this.vaddrInvalidCount--; }
          fail('EINVAL', op, 'a mapping in the range already has an invalid vaddr');
        }
        m.vaddrInvalid = true;
        this.vaddrInvalidCount++;
        marked.push(m);
        unmapped += m.size;
        m = this.store.next(m, end);
        continue;
      }
      if (m.pins?.size) this.settlePins(m);
      if (bitmap) this.reportDirty(bitmap.data, m, iova, op);
      unmapped += m.size;
      const next = this.store.next(m, end);
      this.removeMapping(m);
      m = next;
    }
    return unmapped;
  }

  private dirtyPages(arg: number | Uint8Array | undefined): number {
    const op = 'VFIO_IOMMU_DIRTY_PAGES';
    if (!this.v2) fail('EACCES', op, 'dirty page tracking needs TYPE1v2');
    const buf = userPointer(arg, op);
    const minsz = vfio_iommu_type1_dirty_bitmap.size;
    requireUserBytes(buf, 0, minsz, op);
    const dirty = vfio_iommu_type1_dirty_bitmap.decode(buf);
    const known = flags.VFIO_IOMMU_DIRTY_PAGES_FLAG_START | flags.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP | flags.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
    if (dirty.argsz < minsz || (dirty.flags & ~known) !== 0) fail('EINVAL', op, `argsz ${dirty.argsz} flags 0x${dirty.flags.toString(16)}`);
    switch (dirty.flags) {
      case flags.VFIO_IOMMU_DIRTY_PAGES_FLAG_START:
        if (!this.dirtyTracking) {
          for (const m of this.store.values()) m.dirty = this.pinnedDirtyPages(m);
          this.dirtyTracking = true;
        }
        return 0;
      case flags.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP:
        if (this.dirtyTracking) {
          this.dirtyTracking = false;
          for (const m of this.store.values()) m.dirty = null;
        }
        return 0;
      case flags.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP:
        return this.getDirtyBitmap(buf, dirty.argsz, op);
      default:
        fail('EINVAL', op, 'exactly one of START, STOP, GET_BITMAP');
    }
  }

  private getDirtyBitmap(buf: Uint8Array, argsz: number, op: string): number {
    const minsz = vfio_iommu_type1_dirty_bitmap.size;
    if (argsz - minsz < vfio_iommu_type1_dirty_bitmap_get.size) fail('EINVAL', op, `argsz ${argsz}`);
    requireUserBytes(buf, minsz, vfio_iommu_type1_dirty_bitmap_get.size, op);
    const range = vfio_iommu_type1_dirty_bitmap_get.decode(buf, minsz);
    if (range.iova + range.size > U64_MAX) fail('EINVAL', op, 'range wraps');
    if (!accessOk(range.bitmap_data, range.bitmap_size)) fail('EINVAL', op, 'bitmap outside user memory');
    verifyBitmapSize(range.size >> lowestBit(range.bitmap_pgsize), range.bitmap_size, op);
    const pgsize = this.minPageSize;
    if (range.bitmap_pgsize !== pgsize) fail('EINVAL', op, `bitmap page size ${range.bitmap_pgsize}`);
    if (range.iova & (pgsize - 1n)) fail('EINVAL', op, 'iova not page aligned');
    if (range.size === 0n || (range.size & (pgsize - 1n)) !== 0n) fail('EINVAL', op, 'size 0 or not page aligned');
    if (!this.dirtyTracking) fail('EINVAL', op, 'dirty tracking is off');
    const end = range.iova + range.size;
    const first = this.store.find(range.iova, 1n);
    if (first && first.iova !== range.iova) fail('EINVAL', op, 'the range starts inside a mapping');
    const last = this.store.find(end - 1n, 0n);
    if (last && last.iova + last.size !== end) fail('EINVAL', op, 'the range ends inside a mapping');
    for (let m = this.store.first(range.iova, end); m; m = this.store.next(m, end)) {
      this.reportDirty(range.bitmap_data, m, range.iova, op);
      // A report starts the next interval afresh: only pinned pages stay dirty.
      m.dirty = this.pinnedDirtyPages(m);
    }
    return 0;
  }

  private reportDirty(bitmapAddr: bigint, m: DmaMapping, baseIova: bigint, op: string): void {
    // A group that can write memory without pinning makes every mapped page dirty.
    const dirty = this.nonPinnedGroups.size > 0 && m.iommuMapped ? 'all' : (m.dirty ?? new Set<number>());
    writeUserBitmap(this.ctx.mm, bitmapAddr, m, baseIova, this.pgshift, dirty, op);
  }

  // ---- mappings, pinning, accounting ----

  /** Records a device write through a mapping while tracking is on (vfio_dma_rw marks pages). */
  markDirty(m: DmaMapping, offset: bigint, length: number): void {
    if (!m.dirty || m.dirty === 'all' || length === 0) return;
    const shift = this.pgshift;
    const first = Number(offset >> shift);
    const last = Number((offset + BigInt(length) - 1n) >> shift);
    for (let p = first; p <= last; p++) m.dirty.add(p);
  }

  private pageMask(): bigint {
    return U64_MAX & ~(BigInt(this.ctx.pageSize) - 1n);
  }

  private iovaValid(start: bigint, last: bigint): boolean {
    if (this.iovaList.length === 0) return true; // an mdev-only container has no limit
    return this.iovaList.some((r) => start >= r.start && last <= r.end);
  }

  // Locked-memory invariant of a mapping (m.lockedPages): while it is IOMMU-mapped, every
  // ordinary page of it, once; otherwise, its device-pinned pages. A page a device pinned
  // is thus charged exactly once whatever domains come and go, as the kernel's
  // vfio_find_vpfn checks and unmap_unpin_reaccount arrange.

  /** Pins the user memory behind a mapping and charges it to locked memory, or throws leaving nothing. */
  private pinMapped(m: DmaMapping, op: string): void {
    const resolved = this.ctx.mm.resolve(m.vaddr, m.size, (m.prot & IOMMU_WRITE) !== 0);
    const pages = countAccounted(resolved.segments, this.ctx.pageSize);
    // Pages a device pinned are charged already.
    const more = Math.max(0, pages - m.lockedPages);
    // Pages are pinned in order: the limit can be hit before the first bad address.
    if (!this.ctx.locked.allows(more)) fail('ENOMEM', op, 'RLIMIT_MEMLOCK exceeded');
    if (!resolved.complete) fail('EFAULT', op, `vaddr 0x${m.vaddr.toString(16)} is not mapped with the needed access`);
    for (const s of resolved.segments) this.ctx.mm.pin(s.region);
    this.ctx.locked.charge(more);
    m.pinned = resolved.segments;
    m.lockedPages += more;
    m.iommuMapped = true;
  }

  /** Drops the IOMMU mapping's pins; pages devices still pin stay charged. */
  private unpinMapped(m: DmaMapping): void {
    if (!m.iommuMapped) return;
    const devicePinned = m.pins?.size ?? 0;
    for (const s of m.pinned) this.ctx.mm.unpin(s.region);
    this.ctx.locked.release(m.lockedPages - devicePinned);
    m.pinned = NO_SEGMENTS;
    m.lockedPages = devicePinned;
    m.iommuMapped = false;
  }

  private removeMapping(m: DmaMapping): void {
    if (m.pins?.size) this.dropPins(m, () => true, 'when the mapping went');
    this.unpinMapped(m);
    if (m.vaddrInvalid) this.vaddrInvalidCount--;
    this.store.remove(m);
    this.dmaAvail++;
  }

  private unmapUnpinAll(): void {
    for (const m of [...this.store.values()]) this.removeMapping(m);
  }

  private unpinReaccountAll(): void {
    for (const m of this.store.values()) this.unpinMapped(m);
  }

  // ---- pinning for devices (vfio_pin_pages / vfio_unpin_pages) ----

  /** A device's first open (vfio_device_container_register): only a device that can be told to unpin may pin. */
  registerDevice(owner: PinOwner): void {
    if (owner.device.dmaUnmap) this.devices.add(owner);
  }

  /** Its last close. Pins it still holds stay (the kernel keeps them too) until unmap or its group leaves. */
  unregisterDevice(owner: PinOwner): void {
    this.devices.delete(owner);
  }

  /** Pages pinned by devices right now, over all mappings. */
  get pinnedPages(): number {
    return this.pinnedPageCount;
  }

  /**
   * vfio_iommu_type1_pin_pages(): pins `npage` pages from `iova` (page aligned, already
   * checked by the caller) for `prot` and returns a view of each. On error every page
   * this call pinned is unpinned again.
   */
  pinPages(owner: PinOwner, iova: bigint, npage: number, prot: number): Uint8Array[] {
    const call = 'vfio_pin_pages';
    if (!this.v2) pinFail('EACCES', call, 'pinning needs a TYPE1v2 container');
    if (this.vaddrInvalidCount) pinFail('EBUSY', call, 'a mapping\'s vaddr is invalidated');
    if (!this.devices.has(owner)) pinFail('EINVAL', call, `${owner.device.name} has no dma_unmap callback, or is not open`);
    const pageSize = BigInt(this.ctx.pageSize);
    const views: Uint8Array[] = [];
    const done: { m: DmaMapping; index: number }[] = [];
    try {
      let m: DmaMapping | undefined;
      for (let i = 0; i < npage; i++) {
        const at = iova + BigInt(i) * pageSize;
        if (!m || at >= m.iova + m.size) m = this.store.containing(at);
        if (!m) pinFail('EINVAL', call, `iova 0x${at.toString(16)} is not mapped`);
        if ((m.prot & prot) !== prot) pinFail('EPERM', call, `iova 0x${at.toString(16)} is mapped with prot ${m.prot}, not ${prot}`);
        const index = Number((at - m.iova) / pageSize);
        views.push(this.pinPage(owner, m, index));
        done.push({ m, index });
      }
    } catch (err) {
      for (const { m, index } of done) this.unpinPage(owner, m, index);
      throw err;
    }
    // A group that pins reports what it dirties: it no longer dirties everything.
    this.nonPinnedGroups.delete(owner.group.id);
    return views;
  }

  /**
   * vfio_iommu_type1_unpin_pages(): drops one pin from each page. The kernel WARNs about
   * a page that is not pinned and goes on; the mock refuses the call whole (EINVAL).
   */
  unpinPages(owner: PinOwner, iova: bigint, npage: number): void {
    const pageSize = BigInt(this.ctx.pageSize);
    const pages: { m: DmaMapping; index: number }[] = [];
    let m: DmaMapping | undefined;
    for (let i = 0; i < npage; i++) {
      const at = iova + BigInt(i) * pageSize;
      if (!m || at >= m.iova + m.size) m = this.store.containing(at);
      const index = m ? Number((at - m.iova) / pageSize) : -1;
      if (!m || !m.pins?.has(index)) pinFail('EINVAL', 'vfio_unpin_pages', `iova 0x${at.toString(16)} is not pinned`);
      pages.push({ m, index });
    }
    for (const { m, index } of pages) this.unpinPage(owner, m, index);
  }

  private pinPage(owner: PinOwner, m: DmaMapping, index: number): Uint8Array {
    const call = 'vfio_pin_pages';
    const held = m.pins?.get(index);
    if (held) {
      held.refs++;
      held.holders.set(owner, (held.holders.get(owner) ?? 0) + 1);
      return held.view;
    }
    const pageSize = this.ctx.pageSize;
    const vaddr = m.vaddr + BigInt(index) * BigInt(pageSize);
    // The page as the user's memory has it now (vaddr_get_pfns), with the mapping's access.
    const resolved = this.ctx.mm.resolve(vaddr, BigInt(pageSize), (m.prot & IOMMU_WRITE) !== 0);
    const segment = resolved.segments[0];
    if (!resolved.complete || !segment || resolved.segments.length !== 1) {
      pinFail('EFAULT', call, `vaddr 0x${vaddr.toString(16)} is not mapped with the needed access`);
    }
    // Device memory (a BAR mmap) has no struct page to hand out.
    if (!segment.region.accounted) pinFail('EINVAL', call, `vaddr 0x${vaddr.toString(16)} is device memory`);
    if (!m.iommuMapped) {
      if (!this.ctx.locked.allows(1)) pinFail('ENOMEM', call, 'RLIMIT_MEMLOCK exceeded');
      this.ctx.locked.charge(1);
      m.lockedPages++;
    }
    this.ctx.mm.pin(segment.region);
    const page: PinnedPage = {
      refs: 1,
      region: segment.region,
      view: segment.region.bytes.subarray(segment.offset, segment.offset + pageSize),
      holders: new Map([[owner, 1]]),
    };
    (m.pins ??= new Map()).set(index, page);
    this.pinnedPageCount++;
    if (m.dirty instanceof Set) m.dirty.add(this.dirtyIndex(index));
    return page.view;
  }

  /** Drops one pin, the caller's own if it holds one on the page (any holder's otherwise, as the kernel keeps no owner). */
  private unpinPage(owner: PinOwner, m: DmaMapping, index: number): void {
    const page = m.pins!.get(index)!;
    const holder = page.holders.has(owner) ? owner : page.holders.keys().next().value!;
    const left = page.holders.get(holder)! - 1;
    if (left) page.holders.set(holder, left);
    else page.holders.delete(holder);
    if (--page.refs === 0) this.releasePage(m, index, page);
  }

  private releasePage(m: DmaMapping, index: number, page: PinnedPage): void {
    m.pins!.delete(index);
    this.pinnedPageCount--;
    this.ctx.mm.unpin(page.region);
    if (!m.iommuMapped) {
      this.ctx.locked.release(1);
      m.lockedPages--;
    }
  }

  /**
   * vfio_notify_dma_unmap() for a mapping about to go that has pinned pages: every open
   * device that can unpin is told (dma_unmap with the mapping's iova and size) and must
   * unpin; while a round makes progress and pins remain, the devices are told again, up
   * to the kernel's 10 retries.
   *
   * Policy where the kernel would BUG (pins left after the notices): never a dangling
   * pin. The remaining pins are dropped by force (unaccounted, the memory released),
   * counted in forcedUnpins and reported by process.emitWarning naming the devices that
   * held them, and the unmap completes. A dmaUnmap that throws is treated the same way:
   * its error is reported as a warning, never reaches the user, and the unmap goes on.
   */
  private settlePins(m: DmaMapping): void {
    for (let round = 0; round <= UNMAP_NOTIFY_RETRIES && m.pins?.size; round++) {
      const before = pinRefs(m);
      for (const owner of [...this.devices]) {
        try {
          owner.device.dmaUnmap?.(m.iova, m.size);
        } catch (err) {
          process.emitWarning(`${owner.device.name}: dma_unmap(0x${m.iova.toString(16)}, 0x${m.size.toString(16)}) threw: ${describe(err)}`,
            { type: 'VfioMockWarning', code: 'VFIO_MOCK_DMA_UNMAP_THREW' });
        }
      }
      if (pinRefs(m) >= before) break;
    }
    if (m.pins?.size) this.dropPins(m, () => true, 'after the dma_unmap notice');
  }

  /** Force-drops, in every mapping, the pins of the holders `which` selects. */
  private dropPinsOf(which: (owner: PinOwner) => boolean, when: string): void {
    if (this.pinnedPageCount === 0) return;
    for (const m of this.store.values()) if (m.pins?.size) this.dropPins(m, which, when);
  }

  /** Force-drops the pins of the holders `which` selects in one mapping, and says so (see settlePins). */
  private dropPins(m: DmaMapping, which: (owner: PinOwner) => boolean, when: string): void {
    const names = new Set<string>();
    let dropped = 0;
    for (const [index, page] of [...m.pins!]) {
      for (const [owner, count] of [...page.holders]) {
        if (!which(owner)) continue;
        page.holders.delete(owner);
        page.refs -= count;
        dropped += count;
        names.add(owner.device.name);
      }
      if (page.refs <= 0) this.releasePage(m, index, page);
    }
    if (!dropped) return;
    this.forcedUnpins += dropped;
    process.emitWarning(`${[...names].join(', ')} still held ${dropped} pin(s) in the DMA mapping at iova 0x${m.iova.toString(16)} ` +
      `(size 0x${m.size.toString(16)}) ${when}; the mock kernel dropped them`, { type: 'VfioMockWarning', code: 'VFIO_MOCK_FORCED_UNPIN' });
  }

  /** The dirty-page indexes (in the smallest IOMMU page size) of a mapping's pinned pages. */
  private pinnedDirtyPages(m: DmaMapping): Set<number> {
    const dirty = new Set<number>();
    if (m.pins) for (const index of m.pins.keys()) dirty.add(this.dirtyIndex(index));
    return dirty;
  }

  private dirtyIndex(pinIndex: number): number {
    return Number((BigInt(pinIndex) * BigInt(this.ctx.pageSize)) >> this.pgshift);
  }

  /**
   * The first IOMMU-backed group arrives: the domain's aperture and reserved regions
   * must not conflict with existing mappings, and every mapping made so far (while
   * only emulated groups were attached) is pinned now. Failure leaves nothing changed.
   */
  private attachFirstDomain(op: string): void {
    const { platform } = this.ctx;
    for (const m of this.store.values()) {
      const last = m.iova + m.size - 1n;
      if (m.iova < platform.aperture.start || last > platform.aperture.end) fail('EINVAL', op, 'a mapping lies outside the IOMMU aperture');
      if (platform.reserved.some((r) => m.iova <= r.end && last >= r.start)) fail('EINVAL', op, 'a mapping overlaps a reserved region');
    }
    const done: DmaMapping[] = [];
    try {
      for (const m of this.store.values()) {
        if (m.iommuMapped) continue;
        this.pinMapped(m, op);
        done.push(m);
      }
    } catch (err) {
      for (const m of done) this.unpinMapped(m);
      throw err;
    }
    this.iovaList = validRanges(platform);
    this.pgsizeBitmap = platform.pgsizeBitmap;
  }

  /** The pinned memory behind `offset` of a mapping, or undefined when it is not pinned there. */
  pinnedAt(m: DmaMapping, offset: number): { segment: Segment; within: number } | undefined {
    let base = 0;
    for (const segment of m.pinned) {
      if (offset < base + segment.length) return { segment, within: offset - base };
      base += segment.length;
    }
    return undefined;
  }
}

function pinRefs(m: DmaMapping): number {
  let refs = 0;
  if (m.pins) for (const page of m.pins.values()) refs += page.refs;
  return refs;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function countAccounted(segments: readonly Segment[], pageSize: number): number {
  let pages = 0;
  for (const s of segments) if (s.region.accounted) pages += Math.ceil(s.length / pageSize);
  return pages;
}

/** A view at least `size` bytes long for decoding a struct whose tail the kernel does not read. */
function padTo(buf: Uint8Array, size: number): Uint8Array {
  if (buf.byteLength >= size) return buf;
  const out = new Uint8Array(size);
  out.set(buf);
  return out;
}

/**
 * A new mapping. A class, not an object literal: V8 pretenures a literal's allocation site
 * once many of its objects live long (a container holds thousands of mappings), and then
 * every MAP_DMA allocated in the old generation (measured: most of a map+unmap pair).
 */
/** What a mapping pins while it pins nothing (never written to: pinned is replaced whole). */
const NO_SEGMENTS: readonly Segment[] = [];

class Type1Mapping implements DmaMapping {
  pinned: readonly Segment[] = NO_SEGMENTS;
  lockedPages = 0;
  iommuMapped = false;
  vaddrInvalid = false;
  dirty: Set<number> | 'all' | null = null;
  pins: Map<number, PinnedPage> | null = null;
  constructor(readonly iova: bigint, readonly size: bigint, public vaddr: bigint, readonly prot: number) {}
}
