// Lays out a type-0 config space the way QEMU's PCI core does for its devices: the
// header with identity and firmware-assigned BARs, capabilities from 0x40, and QEMU's
// write masks (COMMAND IO|MEMORY|MASTER|INTX_DISABLE|SERR, cache line and interrupt
// line writable, everything past the header writable except capabilities, which have
// their own masks) and write-1-to-clear status error bits.
import { PciConfigSpace } from './config-space.js';
import {
  PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_PREFETCH, PCI_BASE_ADDRESS_MEM_TYPE_64, PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE, PCI_CAP_EXP_ENDPOINT_SIZEOF_V2, PCI_CAP_ID_EXP, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_NEXT, PCI_CAP_MSIX_SIZEOF, PCI_CAPABILITY_LIST, PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE,
  PCI_CAP_ID_PM, PCI_CLASS_PROG, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO, PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY, PCI_COMMAND_SERR, PCI_DEVICE_ID, PCI_EXP_DEVCAP, PCI_EXP_DEVCAP_FLR, PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL_BCR_FLR, PCI_EXP_FLAGS, PCI_EXP_TYPE_ENDPOINT, PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE, PCI_INTERRUPT_PIN, PCI_MSI_ADDRESS_HI, PCI_MSI_ADDRESS_LO, PCI_MSI_ADDRESS_LO_MASK,
  PCI_MSI_DATA_32, PCI_MSI_DATA_64, PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT, PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QSIZE, PCI_MSI_MASK_32, PCI_MSI_MASK_64, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL, PCI_MSIX_PBA, PCI_MSIX_TABLE, PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_STATE_MASK, PCI_PM_PMC, PCI_PM_SIZEOF, PCI_REVISION_ID, PCI_STATUS, PCI_STATUS_CAP_LIST,
  PCI_STATUS_DETECTED_PARITY, PCI_STATUS_PARITY, PCI_STATUS_REC_MASTER_ABORT, PCI_STATUS_REC_TARGET_ABORT,
  PCI_STATUS_SIG_SYSTEM_ERROR, PCI_STATUS_SIG_TARGET_ABORT, PCI_STD_HEADER_SIZEOF, PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID, PCI_VENDOR_ID,
} from './regs.js';
import type { PciBarSpec, PciIdentity } from './types.js';

export interface MsiLayout {
  /** Vectors the function can send: 1, 2, 4, 8, 16 or 32. */
  readonly vectors: number;
  readonly address64: boolean;
  readonly perVectorMask: boolean;
}

export interface MsixLayout {
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export interface ConfigLayout {
  readonly identity: PciIdentity;
  readonly bars: readonly PciBarSpec[];
  /** 0 for none, 1..4 for INTA#..INTD#. */
  readonly interruptPin: number;
  /** What firmware wrote into the interrupt line register. */
  readonly interruptLine: number;
  /** COMMAND as firmware left it (SeaBIOS: IO | MEMORY | SERR). */
  readonly command: number;
  readonly msi?: MsiLayout;
  readonly msix?: MsixLayout;
  /** Adds a PCI Express v2 endpoint capability and makes config space 4 KiB. */
  readonly express?: boolean;
  /** With express: the function advertises Function Level Reset (DEVCAP) and DEVCTL's Initiate FLR is writable. */
  readonly flr?: boolean;
  /** Adds a power-management capability (version 3, D0/D3hot writable, No_Soft_Reset). */
  readonly powerManagement?: boolean;
  /**
   * BARs no firmware placed (a virtual function's): addresses may be 0, so the BAR
   * registers read just their type bits until software programs them.
   */
  readonly unassignedBars?: boolean;
  /**
   * Bytes outside the header and the capabilities are read-only zeros (a virtual
   * function's), instead of QEMU's writable scratch bytes.
   */
  readonly readOnlyUnused?: boolean;
}

/** The BAR register's type bits (I/O, 64-bit, prefetchable). */
export function barTypeBits(bar: PciBarSpec): number {
  if (bar.kind === 'io') return PCI_BASE_ADDRESS_SPACE_IO;
  return (bar.kind === 'memory64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
}

export function validateBars(bars: readonly PciBarSpec[], allowUnassigned = false): void {
  const used = new Set<number>();
  for (const bar of bars) {
    const slots = bar.kind === 'memory64' ? [bar.index, bar.index + 1] : [bar.index];
    for (const s of slots) {
      if (!Number.isInteger(s) || s < 0 || s > 5 || used.has(s)) throw new Error(`BAR ${bar.index}: slot ${s} is invalid or taken`);
      used.add(s);
    }
    const min = bar.kind === 'io' ? 4 : 16;
    if (!Number.isSafeInteger(bar.size) || bar.size < min || (bar.size & (bar.size - 1)) !== 0) {
      throw new Error(`BAR ${bar.index}: size ${bar.size} is not a power of two >= ${min}`);
    }
    if (bar.kind === 'memory32' && bar.address + BigInt(bar.size) > 1n << 32n) throw new Error(`BAR ${bar.index}: 32-bit BAR above 4 GiB`);
    if ((bar.address === 0n && !allowUnassigned) || bar.address % BigInt(bar.size) !== 0n) {
      throw new Error(`BAR ${bar.index}: address must be non-zero and size-aligned`);
    }
    if (bar.registerWindow !== undefined && (bar.registerWindow % 4 !== 0 || bar.registerWindow <= 0 || bar.registerWindow > bar.size)) {
      throw new Error(`BAR ${bar.index}: register window ${bar.registerWindow} must be a multiple of 4 within the BAR`);
    }
  }
}

export function buildConfigSpace(layout: ConfigLayout): PciConfigSpace {
  validateBars(layout.bars, layout.unassignedBars);
  const cfg = new PciConfigSpace(layout.express ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE);
  const { identity: id } = layout;
  cfg.set16(PCI_VENDOR_ID, id.vendor);
  cfg.set16(PCI_DEVICE_ID, id.device);
  cfg.set8(PCI_REVISION_ID, id.revision);
  cfg.set8(PCI_CLASS_PROG, id.classCode);
  cfg.set16(PCI_CLASS_PROG + 1, id.classCode >>> 8);
  cfg.set8(PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL);
  cfg.set16(PCI_SUBSYSTEM_VENDOR_ID, id.subsystemVendor);
  cfg.set16(PCI_SUBSYSTEM_ID, id.subsystemDevice);
  cfg.set8(PCI_INTERRUPT_PIN, layout.interruptPin);
  cfg.set8(PCI_INTERRUPT_LINE, layout.interruptLine);
  cfg.set16(PCI_COMMAND, layout.command);

  // QEMU's pci_init_wmask and pci_init_w1cmask.
  cfg.wmask[PCI_CACHE_LINE_SIZE] = 0xff;
  cfg.wmask[PCI_INTERRUPT_LINE] = 0xff;
  setMask16(cfg.wmask, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_SERR);
  if (!layout.readOnlyUnused) cfg.wmask.fill(0xff, PCI_STD_HEADER_SIZEOF, cfg.size);
  setMask16(cfg.w1cmask, PCI_STATUS, PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |
    PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY);

  for (const bar of layout.bars) {
    const at = PCI_BASE_ADDRESS_0 + 4 * bar.index;
    const mask = ~(BigInt(bar.size) - 1n) & 0xffff_ffff_ffff_ffffn;
    const type = barTypeBits(bar);
    cfg.set32(at, Number(bar.address & 0xffff_ffffn) | type);
    setMask32(cfg.wmask, at, Number(mask & 0xffff_ffffn) & ~(bar.kind === 'io' ? 0x3 : 0xf));
    if (bar.kind === 'memory64') {
      cfg.set32(at + 4, Number(bar.address >> 32n));
      setMask32(cfg.wmask, at + 4, Number(mask >> 32n));
    }
  }

  let next = PCI_STD_HEADER_SIZEOF;
  const add = (capId: number, length: number): number => {
    const pos = next;
    next = pos + Math.ceil(length / 4) * 4;
    if (next > PCI_CFG_SPACE_SIZE) throw new Error('capabilities do not fit in config space');
    // QEMU's pci_add_capability: linked at the head, read-only by default.
    cfg.wmask.fill(0, pos, pos + length);
    cfg.set8(pos, capId);
    cfg.set8(pos + PCI_CAP_LIST_NEXT, cfg.get8(PCI_CAPABILITY_LIST));
    cfg.set8(PCI_CAPABILITY_LIST, pos);
    cfg.set16(PCI_STATUS, cfg.get16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    return pos;
  };

  if (layout.express) {
    const pos = add(PCI_CAP_ID_EXP, PCI_CAP_EXP_ENDPOINT_SIZEOF_V2);
    cfg.set16(pos + PCI_EXP_FLAGS, 2 | (PCI_EXP_TYPE_ENDPOINT << 4));
    if (layout.flr) {
      cfg.set32(pos + PCI_EXP_DEVCAP, PCI_EXP_DEVCAP_FLR);
      setMask16(cfg.wmask, pos + PCI_EXP_DEVCTL, PCI_EXP_DEVCTL_BCR_FLR);
    }
  }
  if (layout.powerManagement) {
    const pos = add(PCI_CAP_ID_PM, PCI_PM_SIZEOF);
    cfg.set16(pos + PCI_PM_PMC, 3);
    cfg.set16(pos + PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET);
    setMask16(cfg.wmask, pos + PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK);
  }
  if (layout.msix) addMsix(cfg, add(PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF), layout.msix);
  if (layout.msi) addMsi(cfg, layout.msi, add);
  return cfg;
}

function addMsi(cfg: PciConfigSpace, msi: MsiLayout, add: (id: number, len: number) => number): void {
  const log2 = Math.log2(msi.vectors);
  if (!Number.isInteger(log2) || log2 < 0 || log2 > 5) throw new Error(`MSI vectors ${msi.vectors} is not 1..32, a power of two`);
  // QEMU's msi_cap_sizeof: 0xa, 0xe, 0x14 or 0x18 bytes.
  const length = msi.perVectorMask ? (msi.address64 ? 0x18 : 0x14) : (msi.address64 ? 0x0e : 0x0a);
  const pos = add(PCI_CAP_ID_MSI, length);
  let flags = log2 << 1;
  if (msi.address64) flags |= PCI_MSI_FLAGS_64BIT;
  if (msi.perVectorMask) flags |= PCI_MSI_FLAGS_MASKBIT;
  cfg.set16(pos + PCI_MSI_FLAGS, flags);
  // QEMU's msi_init write masks: enable and queue size, address, data, mask bits.
  setMask16(cfg.wmask, pos + PCI_MSI_FLAGS, PCI_MSI_FLAGS_QSIZE | PCI_MSI_FLAGS_ENABLE);
  setMask32(cfg.wmask, pos + PCI_MSI_ADDRESS_LO, PCI_MSI_ADDRESS_LO_MASK);
  if (msi.address64) setMask32(cfg.wmask, pos + PCI_MSI_ADDRESS_HI, 0xffffffff);
  setMask16(cfg.wmask, pos + (msi.address64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 0xffff);
  if (msi.perVectorMask) {
    setMask32(cfg.wmask, pos + (msi.address64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), msi.vectors === 32 ? 0xffffffff : (1 << msi.vectors) - 1);
  }
}

function addMsix(cfg: PciConfigSpace, pos: number, msix: MsixLayout): void {
  if (!Number.isInteger(msix.vectors) || msix.vectors < 1 || msix.vectors > 2048) throw new Error(`MSI-X vectors ${msix.vectors} is not 1..2048`);
  cfg.set16(pos + PCI_MSIX_FLAGS, msix.vectors - 1);
  cfg.set32(pos + PCI_MSIX_TABLE, (msix.tableOffset & ~7) | msix.tableBar);
  cfg.set32(pos + PCI_MSIX_PBA, (msix.pbaOffset & ~7) | msix.pbaBar);
  setMask16(cfg.wmask, pos + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
}

function setMask16(mask: Uint8Array, at: number, v: number): void {
  mask[at] = v & 0xff;
  mask[at + 1] = (v >>> 8) & 0xff;
}

function setMask32(mask: Uint8Array, at: number, v: number): void {
  setMask16(mask, at, v);
  setMask16(mask, at + 2, v >>> 16);
}
