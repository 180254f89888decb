// The process's memory as the mock kernel sees it (its mm): every Mapping this sys
// layer handed out (allocate() and device mmaps), by address. MAP_DMA pins through it,
// copy_to_user/copy_from_user of user addresses (dirty bitmaps) go through it, and a
// Mapping a DMA mapping still pins outlives the user's munmap, as pinned pages do.
import { addon } from '../../addon/addon.js';
import { sysError } from '../../addon/errors.js';
import type { Mapping } from '../types.js';
import { PROT_READ, PROT_WRITE } from '../types.js';

export interface MemoryRegion {
  readonly mapping: Mapping;
  readonly address: bigint;
  /** Bytes the mock can reach (the buffer's length when registered). */
  readonly length: number;
  readonly prot: number;
  /** Ordinary pages, counted in locked memory when pinned; device memory is not (reserved pfns). */
  readonly accounted: boolean;
  /** The memory itself, kept for as long as anything pins it. */
  readonly bytes: Uint8Array;
  /** Still in the user's address space (false once munmap'ed, while still pinned). */
  mapped: boolean;
  /** How many DMA mappings pin (part of) it. */
  pins: number;
}

/** A piece of a user address range that lies inside one region. */
export interface Segment {
  readonly region: MemoryRegion;
  readonly offset: number;
  readonly length: number;
}

export interface Resolved {
  /** The pieces from the start of the range up to the end or the first fault. */
  segments: Segment[];
  /** True when the whole range resolved; false when it stops at an unmapped or forbidden byte. */
  complete: boolean;
}

export class AddressSpace {
  /** Mapped regions, sorted by address. */
  private readonly regions: MemoryRegion[] = [];
  /** Regions the user unmapped while DMA mappings still pin them. */
  private readonly retained = new Set<MemoryRegion>();

  add(mapping: Mapping, prot: number, accounted: boolean): MemoryRegion {
    const bytes = new Uint8Array(mapping.buffer);
    const region: MemoryRegion = {
      mapping, address: mapping.address, length: bytes.byteLength, prot, accounted, bytes, mapped: true, pins: 0,
    };
    const at = this.indexAfter(region.address);
    const before = this.regions[at - 1];
    if (before && before.address + BigInt(before.length) > region.address) {
      throw new Error(`mapping at 0x${region.address.toString(16)} overlaps a live mapping`);
    }
    this.regions.splice(at, 0, region);
    return region;
  }

  /** munmap(2) of a Mapping this layer made. Idempotent; EINVAL for a Mapping it never made. */
  unmap(mapping: Mapping): void {
    const at = this.indexAfter(mapping.address) - 1;
    const region = this.regions[at];
    if (region && region.mapping === mapping) {
      this.regions.splice(at, 1);
      region.mapped = false;
      if (region.pins === 0) addon().munmap(mapping.buffer);
      else this.retained.add(region);
      return;
    }
    for (const r of this.retained) if (r.mapping === mapping) return;
    if (mapping.buffer.byteLength === 0) return; // already unmapped
    throw sysError('EINVAL', 'munmap', undefined, 'not a mapping of this sys layer');
  }

  pin(region: MemoryRegion): void {
    region.pins++;
  }

  /** Drops one pin; the memory really goes once the user unmapped it and nothing pins it. */
  unpin(region: MemoryRegion): void {
    region.pins--;
    if (region.pins === 0 && !region.mapped) {
      this.retained.delete(region);
      addon().munmap(region.mapping.buffer);
    }
  }

  /**
   * Walks [vaddr, vaddr+length) through mapped regions, as get_user_pages would:
   * stops at the first byte that is unmapped, PROT_NONE, or read-only when `write`.
   */
  resolve(vaddr: bigint, length: bigint, write: boolean): Resolved {
    const segments: Segment[] = [];
    const end = vaddr + length;
    let at = vaddr;
    while (at < end) {
      const region = this.regions[this.indexAfter(at) - 1];
      if (!region || at >= region.address + BigInt(region.length)) break;
      if ((region.prot & (PROT_READ | PROT_WRITE)) === 0 || (write && (region.prot & PROT_WRITE) === 0)) break;
      const stop = region.address + BigInt(region.length) < end ? region.address + BigInt(region.length) : end;
      segments.push({ region, offset: Number(at - region.address), length: Number(stop - at) });
      at = stop;
    }
    return { segments, complete: at >= end };
  }

  /** copy_to_user: EFAULT unless the whole range is mapped writable. */
  copyToUser(vaddr: bigint, src: Uint8Array, operation: string): void {
    const r = this.resolve(vaddr, BigInt(src.byteLength), true);
    if (!r.complete) throw sysError('EFAULT', 'ioctl', operation, `user address 0x${vaddr.toString(16)}`);
    let done = 0;
    for (const s of r.segments) {
      s.region.bytes.set(src.subarray(done, done + s.length), s.offset);
      done += s.length;
    }
  }

  /** copy_from_user: EFAULT unless the whole range is mapped readable. */
  copyFromUser(vaddr: bigint, length: number, operation: string): Uint8Array {
    const r = this.resolve(vaddr, BigInt(length), false);
    if (!r.complete) throw sysError('EFAULT', 'ioctl', operation, `user address 0x${vaddr.toString(16)}`);
    const out = new Uint8Array(length);
    let done = 0;
    for (const s of r.segments) {
      out.set(s.region.bytes.subarray(s.offset, s.offset + s.length), done);
      done += s.length;
    }
    return out;
  }

  /** Mapped regions, for diagnostics. */
  get mappedCount(): number {
    return this.regions.length;
  }

  /** Regions kept alive only by DMA pins. */
  get retainedCount(): number {
    return this.retained.size;
  }

  /** Index of the first region whose address is above `address`. */
  private indexAfter(address: bigint): number {
    let lo = 0;
    let hi = this.regions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.regions[mid]!.address <= address) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
