// The "hardware" configuration space of a simulated PCI function: what the function
// itself answers to config cycles, before vfio-pci virtualizes anything. Like QEMU's
// PCIDevice it keeps the bytes with a write mask (bits software may change) and a
// write-1-to-clear mask; a write hook lets the function react (MSI enable, COMMAND).
import {
  PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_LIST_NEXT, PCI_CAPABILITY_LIST, PCI_COMMAND, PCI_COMMAND_MASTER,
  PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, PCI_STATUS, PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
} from './regs.js';

export type ConfigAccessSize = 1 | 2 | 4;

/** Called after a write landed, with the written range (before any side effect). */
export type ConfigWriteHook = (offset: number, size: ConfigAccessSize) => void;

export class PciConfigSpace {
  readonly bytes: Uint8Array;
  /** Bits software may write; everything else is read-only. */
  readonly wmask: Uint8Array;
  /** Bits a write of 1 clears (status error bits). */
  readonly w1cmask: Uint8Array;
  private hooks: ConfigWriteHook[] = [];

  constructor(readonly size: 256 | 4096) {
    this.bytes = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
  }

  onWrite(hook: ConfigWriteHook): void {
    this.hooks.push(hook);
  }

  /** A config read as the function answers it (little-endian). */
  read(offset: number, size: ConfigAccessSize): number {
    this.check(offset, size);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.bytes[offset + i]!;
    return v >>> 0;
  }

  /** A config write: only writable bits change; write-1-to-clear bits clear. */
  write(offset: number, size: ConfigAccessSize, value: number): void {
    this.check(offset, size);
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const b = (value >>> (8 * i)) & 0xff;
      const w = this.wmask[at]!;
      const w1c = this.w1cmask[at]!;
      let cur = this.bytes[at]!;
      cur = (cur & ~w) | (b & w);
      cur &= ~(b & w1c);
      this.bytes[at] = cur & 0xff;
    }
    for (const hook of this.hooks) hook(offset, size);
  }

  /** Direct access for the function's own use (no masks, no hooks). */
  get8(offset: number): number { return this.bytes[offset]!; }
  get16(offset: number): number { return this.bytes[offset]! | (this.bytes[offset + 1]! << 8); }
  get32(offset: number): number { return this.read(offset, 4); }
  set8(offset: number, v: number): void { this.bytes[offset] = v & 0xff; }
  set16(offset: number, v: number): void { this.set8(offset, v); this.set8(offset + 1, v >>> 8); }
  set32(offset: number, v: number): void { this.set16(offset, v); this.set16(offset + 2, v >>> 16); }

  /** Offset of the first capability with this id in the standard list, or 0. */
  findCapability(id: number): number {
    if (!(this.get16(PCI_STATUS) & PCI_STATUS_CAP_LIST)) return 0;
    const seen = new Set<number>();
    for (let pos = this.get8(PCI_CAPABILITY_LIST) & ~3; pos >= 0x40 && !seen.has(pos); pos = this.get8(pos + PCI_CAP_LIST_NEXT) & ~3) {
      seen.add(pos);
      if (this.get8(pos) === id) return pos;
    }
    return 0;
  }

  /** The MSI Enable bit of the function's MSI capability (QEMU's msi_enabled()). */
  msiEnabled(): boolean {
    const pos = this.findCapability(PCI_CAP_ID_MSI);
    return pos !== 0 && (this.get16(pos + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  msixEnabled(): boolean {
    const pos = this.findCapability(PCI_CAP_ID_MSIX);
    return pos !== 0 && (this.get16(pos + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  busMaster(): boolean {
    return (this.get16(PCI_COMMAND) & PCI_COMMAND_MASTER) !== 0;
  }

  /** The Interrupt Status bit follows the INTx pin's level (QEMU's pci_update_irq_status). */
  setInterruptStatus(level: boolean): void {
    const s = this.get16(PCI_STATUS);
    this.set16(PCI_STATUS, level ? s | PCI_STATUS_INTERRUPT : s & ~PCI_STATUS_INTERRUPT);
  }

  private check(offset: number, size: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.size || offset % size !== 0) {
      throw new RangeError(`config access of ${size} bytes at 0x${offset.toString(16)} is outside or unaligned`);
    }
  }
}
