// DMA as a device behind the mock IOMMU sees it. A transfer is checked whole before a
// byte moves: every IOVA in it must be mapped (it may run across adjacent mappings)
// with READ for a device read of memory and WRITE for a device write, else DmaFault.
// Pinned mappings reach the pinned pages (valid even after the user's munmap, as on
// the real IOMMU); unpinned ones (emulated groups) reach the user's memory at the
// mapping's vaddr now, as vfio_dma_rw does.
//
// Pinning (vfio_pin_pages) is checked here as vfio_main.c does before the IOMMU driver
// sees it: the device must be open, npage in 1..512, the IOVA page aligned.
import { sysError } from '../../addon/errors.js';
import { DmaFault, type DmaSpace } from '../../device/backend.js';
import { IOMMU_READ, IOMMU_WRITE, type DmaMapping, type PinOwner } from './dma-store.js';
import type { Type1Iommu } from './type1.js';
import type { AddressSpace } from './address-space.js';

/** VFIO_PIN_PAGES_MAX_ENTRIES: the most pages one pin or unpin call may name. */
export const VFIO_PIN_PAGES_MAX_ENTRIES = 512;
const U64_LIMIT = 1n << 64n;

interface Piece {
  readonly bytes: Uint8Array;
  readonly mapping: DmaMapping;
  readonly offset: bigint;
}

export class IommuDmaSpace implements DmaSpace {
  private open = true;

  /**
   * `iommu` answers the container's current IOMMU (none once the container lost it);
   * `owner` is the device whose DmaSpace this is, for the pins it takes.
   */
  constructor(private readonly iommu: () => Type1Iommu | undefined, private readonly mm: AddressSpace,
    private readonly owner: PinOwner, private readonly pageSize: number) {}

  /** The device's last fd closed: its DmaSpace pins no more (vfio_assert_device_open). */
  close(): void {
    this.open = false;
  }

  pin(iova: bigint, npage: number, prot: number): Uint8Array[] {
    const iommu = this.checkPinArgs('vfio_pin_pages', iova, npage);
    return iommu.pinPages(this.owner, iova, npage, prot);
  }

  unpin(iova: bigint, npage: number): void {
    const iommu = this.checkPinArgs('vfio_unpin_pages', iova, npage);
    iommu.unpinPages(this.owner, iova, npage);
  }

  private checkPinArgs(call: 'vfio_pin_pages' | 'vfio_unpin_pages', iova: bigint, npage: number): Type1Iommu {
    const iommu = this.iommu();
    if (!Number.isInteger(npage) || npage <= 0 || !this.open || !iommu) {
      throw sysError('EINVAL', call, undefined, !this.open || !iommu ? `${this.owner.device.name} is not open` : `npage ${npage}`);
    }
    if (npage > VFIO_PIN_PAGES_MAX_ENTRIES) throw sysError('E2BIG', call, undefined, `npage ${npage} > ${VFIO_PIN_PAGES_MAX_ENTRIES}`);
    const size = BigInt(npage) * BigInt(this.pageSize);
    if (typeof iova !== 'bigint' || iova < 0n || iova % BigInt(this.pageSize) !== 0n || iova + size > U64_LIMIT) {
      throw sysError('EINVAL', call, undefined, `iova ${String(iova)} is not a page-aligned address with room for ${npage} pages`);
    }
    return iommu;
  }

  read(iova: bigint, dst: Uint8Array): void {
    let done = 0;
    for (const p of this.translate(iova, dst.byteLength, 'read')) {
      dst.set(p.bytes, done);
      done += p.bytes.byteLength;
    }
  }

  write(iova: bigint, src: Uint8Array): void {
    const pieces = this.translate(iova, src.byteLength, 'write');
    const iommu = this.iommu()!;
    let done = 0;
    for (const p of pieces) {
      p.bytes.set(src.subarray(done, done + p.bytes.byteLength));
      iommu.markDirty(p.mapping, p.offset, p.bytes.byteLength);
      done += p.bytes.byteLength;
    }
  }

  private translate(iova: bigint, length: number, access: 'read' | 'write'): Piece[] {
    const fault = (reason: string): never => { throw new DmaFault(iova, length, access, reason); };
    if (iova < 0n || iova + BigInt(length) > 1n << 64n) fault('address out of range');
    if (length === 0) return [];
    const iommu = this.iommu();
    if (!iommu) return fault('no IOMMU is set on the container');
    const need = access === 'read' ? IOMMU_READ : IOMMU_WRITE;
    const pieces: Piece[] = [];
    let at = iova;
    let left = length;
    while (left > 0) {
      const m = iommu.store.containing(at);
      if (!m) return fault(`iova 0x${at.toString(16)} is not mapped`);
      if ((m.prot & need) === 0) fault(`iova 0x${at.toString(16)} is mapped without ${access === 'read' ? 'READ' : 'WRITE'}`);
      const offset = at - m.iova;
      const chunk = Number(m.size - offset < BigInt(left) ? m.size - offset : BigInt(left));
      pieces.push(...this.memoryOf(m, iommu, offset, chunk, access, fault));
      at += BigInt(chunk);
      left -= chunk;
    }
    return pieces;
  }

  private memoryOf(m: DmaMapping, iommu: Type1Iommu, offset: bigint, length: number, access: 'read' | 'write',
    fault: (reason: string) => never): Piece[] {
    const pieces: Piece[] = [];
    if (m.iommuMapped) {
      let off = Number(offset);
      let left = length;
      while (left > 0) {
        const hit = iommu.pinnedAt(m, off);
        if (!hit) return fault('pinned memory ends early');
        const n = Math.min(left, hit.segment.length - hit.within);
        const start = hit.segment.offset + hit.within;
        pieces.push({ bytes: hit.segment.region.bytes.subarray(start, start + n), mapping: m, offset: BigInt(off) });
        off += n;
        left -= n;
      }
      return pieces;
    }
    if (m.vaddrInvalid) return fault('the mapping\'s vaddr is invalidated');
    const resolved = this.mm.resolve(m.vaddr + offset, BigInt(length), access === 'write');
    if (!resolved.complete) return fault(`user memory at vaddr 0x${(m.vaddr + offset).toString(16)} is gone`);
    let off = offset;
    for (const s of resolved.segments) {
      pieces.push({ bytes: s.region.bytes.subarray(s.offset, s.offset + s.length), mapping: m, offset: off });
      off += BigInt(s.length);
    }
    return pieces;
  }
}
