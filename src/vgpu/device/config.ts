// The config space of a vGPU, emulated by the core from the vendor's VgpuPciSpec: the
// standard header (ids, class, subsystem, COMMAND with QEMU's writable bits, STATUS with
// its write-1-to-clear error bits, BARs that size by writing all ones and pair up when
// 64-bit, no ROM, interrupt pin and a writable line) and the capabilities the spec asks
// for (power management, MSI with per-vector masking, MSI-X, PCI Express with FLR and
// 4 KiB of config space). Laid out by the mock's config builder, then driven here the
// way vfio-pci drives its virtual copy: accesses split into naturally aligned pieces,
// MSI and MSI-X Enable follow SET_IRQS only (writes to them are virtual), COMMAND's
// INTx Disable masks INTx, and an Initiate FLR write resets the function.
// A fresh one is built at each open, so every open starts from power-on state.
import { sysError } from '../../addon/errors.js';
import { buildConfigSpace } from '../../device/pci/config-builder.js';
import type { PciConfigSpace } from '../../device/pci/config-space.js';
import {
  PCI_CAP_ID_EXP, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO,
  PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_EXP_DEVCTL, PCI_EXP_DEVCTL_BCR_FLR, PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_QSIZE, PCI_MSI_MASK_32, PCI_MSI_MASK_64, PCI_MSI_PENDING_32,
  PCI_MSI_PENDING_64, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_MASKALL, PCI_STATUS,
} from '../../device/pci/regs.js';
import type { VgpuBar, VgpuPciSpec } from '../vendor.js';
import type { PciBarSpec } from '../../device/pci/types.js';

/** What config writes do to the rest of the device. */
export interface ConfigEvents {
  /** COMMAND's INTx Disable as it now stands (vfio-pci masks INTx with it). */
  intxDisable(disabled: boolean): void;
  /** The active interrupt type, which MSI/MSI-X Enable reflect. */
  irqType(): 'none' | 'intx' | 'msi' | 'msix';
  /** vdev->msi_qmax: log2 of the vectors of the last MSI enable. */
  msiQmax(): number;
  /** MSI mask bits or MSI-X Function Mask changed: pending vectors may be sent now. */
  masksChanged(): void;
  /** Initiate Function Level Reset was written. */
  flr(): void;
}

/** The BARs as the config builder takes them: unassigned (address 0). */
export function barSpecs(bars: readonly VgpuBar[]): PciBarSpec[] {
  return bars.map((b) => ({ index: b.index, size: b.size, kind: b.kind, prefetchable: b.prefetchable ?? false, address: 0n }));
}

function overlaps(pos: number, size: number, reg: number, regSize: number): boolean {
  return pos < reg + regSize && reg < pos + size;
}

export class VgpuConfig {
  readonly size: number;
  private readonly cfg: PciConfigSpace;
  private readonly msiPos: number;
  private readonly msixPos: number;
  private readonly expPos: number;
  private readonly msiMaskAt: number;
  private readonly msiPendingAt: number;

  constructor(spec: VgpuPciSpec, bars: readonly VgpuBar[], private readonly events: ConfigEvents) {
    const hasMemory = bars.some((b) => b.kind !== 'io');
    const hasIo = bars.some((b) => b.kind === 'io');
    this.cfg = buildConfigSpace({
      identity: spec.identity,
      bars: barSpecs(bars),
      interruptPin: spec.interruptPin,
      interruptLine: 0,
      // As vfio-pci's user finds it after pci_enable_device: decoding what the BARs need.
      command: (hasMemory ? PCI_COMMAND_MEMORY : 0) | (hasIo ? PCI_COMMAND_IO : 0),
      msi: spec.msiVectors ? { vectors: spec.msiVectors, address64: true, perVectorMask: true } : undefined,
      msix: spec.msix ? {
        vectors: spec.msix.vectors, tableBar: spec.msix.bar, tableOffset: spec.msix.tableOffset,
        pbaBar: spec.msix.bar, pbaOffset: spec.msix.pbaOffset,
      } : undefined,
      express: spec.express,
      flr: spec.express,
      powerManagement: spec.powerManagement,
      unassignedBars: true,
      readOnlyUnused: true,
    });
    this.size = this.cfg.size;
    this.msiPos = this.cfg.findCapability(PCI_CAP_ID_MSI);
    this.msixPos = this.cfg.findCapability(PCI_CAP_ID_MSIX);
    this.expPos = this.cfg.findCapability(PCI_CAP_ID_EXP);
    const msi64 = this.msiPos !== 0 && (this.cfg.get16(this.msiPos + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_64BIT) !== 0;
    this.msiMaskAt = this.msiPos === 0 ? 0 : this.msiPos + (msi64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
    this.msiPendingAt = this.msiPos === 0 ? 0 : this.msiPos + (msi64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32);
  }

  /** vfio_pci_config_rw: bytes done; any byte past the end is EFAULT for the whole access. */
  access(buf: Uint8Array, pos: number, iswrite: boolean): number {
    const count = buf.byteLength;
    if (pos < 0 || pos >= this.size || pos + count > this.size) {
      throw sysError('EFAULT', iswrite ? 'pwrite' : 'pread', undefined, `config space is ${this.size} bytes`);
    }
    let done = 0;
    while (done < count) {
      const at = pos + done;
      const left = count - done;
      const size = left >= 4 && at % 4 === 0 ? 4 : left >= 2 && at % 2 === 0 ? 2 : 1;
      if (iswrite) {
        let v = 0;
        for (let i = size - 1; i >= 0; i--) v = (v << 8) | buf[done + i]!;
        this.write(at, size, v >>> 0);
      } else {
        const v = this.cfg.read(at, size);
        for (let i = 0; i < size; i++) buf[done + i] = v >>> (8 * i);
      }
      done += size;
    }
    return done;
  }

  /** The config space as a migration stream carries it. */
  saveState(): Uint8Array {
    return this.cfg.bytes.slice();
  }

  /**
   * Checks a migrated config space and returns its load: every bit software may write
   * comes from it, except the MSI and MSI-X enables (the user's SET_IRQS on the
   * destination decides those); the function's read-only bits stay this vGPU's.
   */
  prepareLoad(bytes: Uint8Array): () => void {
    if (bytes.byteLength !== this.size) throw new Error(`config space of ${bytes.byteLength} bytes, this vGPU has ${this.size}`);
    const keep = new Set<number>();
    if (this.msiPos) for (let i = 0; i < 2; i++) keep.add(this.msiPos + PCI_MSI_FLAGS + i);
    if (this.msixPos) for (let i = 0; i < 2; i++) keep.add(this.msixPos + PCI_MSIX_FLAGS + i);
    return () => {
      const cfg = this.cfg;
      for (let i = 0; i < this.size; i++) {
        if (keep.has(i)) continue;
        const w = cfg.wmask[i]!;
        cfg.bytes[i] = (cfg.bytes[i]! & ~w) | (bytes[i]! & w);
      }
    };
  }

  /** COMMAND's Memory Space Enable: BAR accesses are EIO without it. */
  memoryEnabled(): boolean {
    return (this.cfg.bytes[PCI_COMMAND]! & PCI_COMMAND_MEMORY) !== 0;
  }

  /** COMMAND's Bus Master Enable: the vendor starts no DMA without it. */
  busMaster(): boolean {
    return (this.cfg.get16(PCI_COMMAND) & PCI_COMMAND_MASTER) !== 0;
  }

  intxDisabled(): boolean {
    return (this.cfg.get16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  /** STATUS's Interrupt Status follows the INTx line. */
  setIntxStatus(level: boolean): void {
    this.cfg.setInterruptStatus(level);
  }

  /** A status bit the function itself sets (e.g. Signaled Target Abort); software clears it by writing 1. */
  setStatusBits(bits: number): void {
    this.cfg.set16(PCI_STATUS, this.cfg.get16(PCI_STATUS) | bits);
  }

  // ---- MSI ----

  /** SET_IRQS enabled MSI with 2^qmax vectors (0: disabled). */
  setMsiEnabled(enabled: boolean, qmax: number): void {
    if (!this.msiPos) return;
    const at = this.msiPos + PCI_MSI_FLAGS;
    let flags = this.cfg.get16(at) & ~(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    if (enabled) flags |= PCI_MSI_FLAGS_ENABLE | (qmax << 4);
    this.cfg.set16(at, flags);
  }

  /** Clears the mask bits of vectors 0..nvec-1 (what requesting their interrupts does). */
  unmaskMsiVectors(nvec: number): void {
    if (!this.msiMaskAt) return;
    const bits = nvec >= 32 ? 0xffffffff : (1 << nvec) - 1;
    this.cfg.set32(this.msiMaskAt, this.cfg.get32(this.msiMaskAt) & ~bits);
  }

  msiMasked(vector: number): boolean {
    return this.msiMaskAt !== 0 && (this.cfg.get32(this.msiMaskAt) & (1 << vector)) !== 0;
  }

  msiPending(vector: number): boolean {
    return this.msiPendingAt !== 0 && (this.cfg.get32(this.msiPendingAt) & (1 << vector)) !== 0;
  }

  setMsiPending(vector: number, pending: boolean): void {
    if (!this.msiPendingAt) return;
    const bits = this.cfg.get32(this.msiPendingAt);
    this.cfg.set32(this.msiPendingAt, pending ? bits | (1 << vector) : bits & ~(1 << vector));
  }

  clearMsiPending(): void {
    if (this.msiPendingAt) this.cfg.set32(this.msiPendingAt, 0);
  }

  // ---- MSI-X ----

  setMsixEnabled(enabled: boolean): void {
    if (!this.msixPos) return;
    const at = this.msixPos + PCI_MSIX_FLAGS;
    const flags = this.cfg.get16(at);
    this.cfg.set16(at, enabled ? flags | PCI_MSIX_FLAGS_ENABLE : flags & ~PCI_MSIX_FLAGS_ENABLE);
  }

  msixFunctionMasked(): boolean {
    return this.msixPos !== 0 && (this.cfg.get16(this.msixPos + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_MASKALL) !== 0;
  }

  // ---- writes and their effects ----

  private write(pos: number, size: 1 | 2 | 4, value: number): void {
    this.cfg.write(pos, size, value);
    if (overlaps(pos, size, PCI_COMMAND, 2)) this.events.intxDisable(this.intxDisabled());
    const msi = this.msiPos;
    if (msi !== 0) {
      if (overlaps(pos, size, msi + PCI_MSI_FLAGS, 2)) {
        // vfio-pci: MSI Enable shows only what SET_IRQS did; the size asked for is capped at qmax.
        const at = msi + PCI_MSI_FLAGS;
        let flags = this.cfg.get16(at);
        flags = this.events.irqType() === 'msi' ? flags | PCI_MSI_FLAGS_ENABLE : flags & ~PCI_MSI_FLAGS_ENABLE;
        const qmax = this.events.msiQmax();
        if ((flags & PCI_MSI_FLAGS_QSIZE) >> 4 > qmax) flags = (flags & ~PCI_MSI_FLAGS_QSIZE) | (qmax << 4);
        this.cfg.set16(at, flags);
      }
      if (overlaps(pos, size, this.msiMaskAt, 4)) this.events.masksChanged();
    }
    const msix = this.msixPos;
    if (msix !== 0 && overlaps(pos, size, msix + PCI_MSIX_FLAGS, 2)) {
      this.setMsixEnabled(this.events.irqType() === 'msix');
      this.events.masksChanged();
    }
    const exp = this.expPos;
    if (exp !== 0 && overlaps(pos, size, exp + PCI_EXP_DEVCTL, 2)) {
      const devctl = this.cfg.get16(exp + PCI_EXP_DEVCTL);
      if (devctl & PCI_EXP_DEVCTL_BCR_FLR) {
        // Initiate FLR always reads 0.
        this.cfg.set16(exp + PCI_EXP_DEVCTL, devctl & ~PCI_EXP_DEVCTL_BCR_FLR);
        this.events.flr();
      }
    }
  }
}
