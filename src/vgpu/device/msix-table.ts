// The MSI-X table and Pending Bit Array of a vGPU, emulated by the core in the BAR the
// vendor's VgpuPciSpec names (PCI spec 6.8.2): per vector a message address, data and a
// Vector Control word whose bit 0 masks the vector; the PBA holds one read-only pending
// bit per vector. A vector raised while masked becomes pending and is sent when it is
// unmasked. The vendor never sees these accesses.
import type { RegisterHandler } from '../vendor.js';

export const MSIX_ENTRY_SIZE = 16;
const VECTOR_CTRL_WORD = 3;
const VECTOR_CTRL_MASKBIT = 1;

export interface MsixPlacement {
  readonly vectors: number;
  readonly bar: number;
  readonly tableOffset: number;
  readonly pbaOffset: number;
}

/** Bytes of the PBA: whole QWORDs, one bit per vector. */
export function pbaSize(vectors: number): number {
  return Math.ceil(vectors / 64) * 8;
}

function readBytes(words: Uint32Array, offset: number, size: 1 | 2 | 4): number {
  const word = words[offset >>> 2]!;
  if (size === 4) return word;
  const shift = (offset & 3) * 8;
  return (word >>> shift) & (size === 2 ? 0xffff : 0xff);
}

export class MsixTable {
  private readonly entries: Uint32Array;
  private readonly pending_: Uint32Array;
  /** Called when a write clears a vector's mask bit. */
  onUnmask: (vector: number) => void = () => {};
  /** Accesses to the table, offsets relative to its start. */
  readonly table: RegisterHandler;
  /** Accesses to the PBA (read-only). */
  readonly pba: RegisterHandler;

  constructor(readonly placement: MsixPlacement) {
    const { vectors } = placement;
    this.entries = new Uint32Array(vectors * 4);
    this.pending_ = new Uint32Array(pbaSize(vectors) / 4);
    this.reset();
    this.table = {
      read: (offset, size) => readBytes(this.entries, offset, size),
      write: (offset, size, value) => this.writeTable(offset, size, value),
    };
    this.pba = {
      read: (offset, size) => readBytes(this.pending_, offset, size),
      write: () => {}, // read-only
    };
  }

  get vectors(): number {
    return this.placement.vectors;
  }

  /** Power-on state: zeros, every vector masked, nothing pending. */
  reset(): void {
    this.entries.fill(0);
    for (let v = 0; v < this.placement.vectors; v++) this.entries[v * 4 + VECTOR_CTRL_WORD] = VECTOR_CTRL_MASKBIT;
    this.pending_.fill(0);
  }

  masked(vector: number): boolean {
    return (this.entries[vector * 4 + VECTOR_CTRL_WORD]! & VECTOR_CTRL_MASKBIT) !== 0;
  }

  /** The host side (re)programs a vector's mask bit, as the PCI core does when it requests or frees its interrupt. */
  setMasked(vector: number, masked: boolean): void {
    const at = vector * 4 + VECTOR_CTRL_WORD;
    this.entries[at] = masked ? VECTOR_CTRL_MASKBIT : 0;
  }

  pending(vector: number): boolean {
    return (this.pending_[vector >>> 5]! & (1 << (vector & 31))) !== 0;
  }

  setPending(vector: number, pending: boolean): void {
    const bit = 1 << (vector & 31);
    const i = vector >>> 5;
    this.pending_[i] = pending ? this.pending_[i]! | bit : this.pending_[i]! & ~bit;
  }

  clearPending(): void {
    this.pending_.fill(0);
  }

  private writeTable(offset: number, size: 1 | 2 | 4, value: number): void {
    const index = offset >>> 2;
    const shift = (offset & 3) * 8;
    const mask = size === 4 ? 0xffffffff : ((size === 2 ? 0xffff : 0xff) << shift) >>> 0;
    const old = this.entries[index]!;
    let word = ((old & ~mask) | ((value << shift) & mask)) >>> 0;
    const isCtrl = (index & 3) === VECTOR_CTRL_WORD;
    // Vector Control: only the mask bit exists; the rest is reserved, reading 0.
    if (isCtrl) word &= VECTOR_CTRL_MASKBIT;
    this.entries[index] = word;
    if (isCtrl && (old & VECTOR_CTRL_MASKBIT) && !(word & VECTOR_CTRL_MASKBIT)) this.onUnmask(index >>> 2);
  }
}
