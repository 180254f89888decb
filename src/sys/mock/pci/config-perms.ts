// vfio-pci's permission tables for config space (drivers/vfio/pci/vfio_pci_config.c):
// per byte, which bits are virtualized (read from and written to the driver's copy,
// vconfig) and which bits the user may write. Everything not virtualized is read from
// the device; writable bits that are not virtualized are written through to it.
import {
  PCI_BASE_ADDRESS_0, PCI_BIST, PCI_CACHE_LINE_SIZE, PCI_CAP_AF_SIZEOF, PCI_CAP_ID_AF, PCI_CAP_ID_AGP,
  PCI_CAP_ID_EXP, PCI_CAP_ID_HT, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_ID_PCIX, PCI_CAP_ID_PM, PCI_CAP_ID_SATA,
  PCI_CAP_ID_VNDR, PCI_CAP_ID_VPD, PCI_CAP_LIST_NEXT, PCI_CAP_MSIX_SIZEOF, PCI_CAP_VPD_SIZEOF, PCI_CAPABILITY_LIST,
  PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_DEVICE_ID, PCI_INTERRUPT_LINE, PCI_INTERRUPT_PIN, PCI_LATENCY_TIMER,
  PCI_MSI_ADDRESS_HI, PCI_MSI_ADDRESS_LO, PCI_MSI_DATA_32, PCI_MSI_DATA_64, PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_MASKBIT, PCI_MSI_MASK_32, PCI_MSI_MASK_64, PCI_MSI_PENDING_32, PCI_MSI_PENDING_64, PCI_PM_SIZEOF,
  PCI_AGP_SIZEOF, PCI_ROM_ADDRESS, PCI_STATUS, PCI_STATUS_CAP_LIST, PCI_STD_HEADER_SIZEOF, PCI_VENDOR_ID,
} from '../../../device/pci/regs.js';

/** The fake capability id vfio-pci gives the standard header in its config map. */
export const PCI_CAP_ID_BASIC = 0;
/** Map value for bytes no capability claims (raw access to the device). */
export const PCI_CAP_ID_INVALID = 0xff;
/** Map value for bytes that are purely virtual. */
export const PCI_CAP_ID_INVALID_VIRT = 0xfe;

/** Per-byte permission bits, rounded up to whole dwords like alloc_perm_bits. */
export interface PermBits {
  readonly virt: Uint8Array;
  readonly write: Uint8Array;
}

/**
 * Lengths of standard capabilities as pci_cap_length gives them: 0 means vfio-pci
 * hides the capability from the chain, 'variable' means it is measured per device.
 */
export const capLengths: ReadonlyMap<number, number | 'variable'> = new Map<number, number | 'variable'>([
  [PCI_CAP_ID_BASIC, PCI_STD_HEADER_SIZEOF],
  [PCI_CAP_ID_PM, PCI_PM_SIZEOF],
  [PCI_CAP_ID_AGP, PCI_AGP_SIZEOF],
  [PCI_CAP_ID_VPD, PCI_CAP_VPD_SIZEOF],
  [PCI_CAP_ID_MSI, 'variable'],
  [PCI_CAP_ID_PCIX, 'variable'],
  [PCI_CAP_ID_HT, 'variable'],
  [PCI_CAP_ID_VNDR, 'variable'],
  [PCI_CAP_ID_EXP, 'variable'],
  [PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF],
  [PCI_CAP_ID_SATA, 'variable'],
  [PCI_CAP_ID_AF, PCI_CAP_AF_SIZEOF],
]);

function alloc(size: number): PermBits {
  const rounded = Math.ceil(size / 4) * 4;
  return { virt: new Uint8Array(rounded), write: new Uint8Array(rounded) };
}

function setb(p: PermBits, off: number, virt: number, write: number): void {
  p.virt[off] = virt & 0xff;
  p.write[off] = write & 0xff;
}

function setw(p: PermBits, off: number, virt: number, write: number): void {
  setb(p, off, virt, write);
  setb(p, off + 1, virt >>> 8, write >>> 8);
}

function setd(p: PermBits, off: number, virt: number, write: number): void {
  setw(p, off, virt, write);
  setw(p, off + 2, virt >>> 16, write >>> 16);
}

const ALL = 0xffffffff;

/** init_pci_cap_basic_perm: the standard header. */
export function basicPerms(): PermBits {
  const p = alloc(PCI_STD_HEADER_SIZEOF);
  // Vendor and device ids: virtual and read-only.
  setw(p, PCI_VENDOR_ID, 0xffff, 0);
  setw(p, PCI_DEVICE_ID, 0xffff, 0);
  // COMMAND: INTx disable is virtual (vfio uses the real bit for masking); all writable.
  setw(p, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 0xffff);
  // STATUS: the capability-list bit is virtual; nothing writable.
  setw(p, PCI_STATUS, PCI_STATUS_CAP_LIST, 0);
  setb(p, PCI_CACHE_LINE_SIZE, 0, 0xff);
  setb(p, PCI_LATENCY_TIMER, 0, 0xff);
  setb(p, PCI_BIST, 0, 0xff);
  // Every BAR and the ROM BAR: virtual, writable (sizing works on the virtual copy).
  for (let bar = PCI_BASE_ADDRESS_0; bar <= PCI_BASE_ADDRESS_0 + 20; bar += 4) setd(p, bar, ALL, ALL);
  setd(p, PCI_ROM_ADDRESS, ALL, ALL);
  setb(p, PCI_CAPABILITY_LIST, 0xff, 0);
  setb(p, PCI_INTERRUPT_LINE, 0xff, 0xff);
  setb(p, PCI_INTERRUPT_PIN, 0xff, 0);
  return p;
}

/** init_pci_cap_msi_perm: the MSI capability, for its measured length and flags. */
export function msiPerms(length: number, flags: number): PermBits {
  const p = alloc(length);
  setb(p, PCI_CAP_LIST_NEXT, 0xff, 0);
  // Only the low byte of the control register: the upper byte is reserved.
  setb(p, PCI_MSI_FLAGS, 0xff, 0xff);
  setd(p, PCI_MSI_ADDRESS_LO, ALL, ALL);
  if (flags & PCI_MSI_FLAGS_64BIT) {
    setd(p, PCI_MSI_ADDRESS_HI, ALL, ALL);
    setw(p, PCI_MSI_DATA_64, 0xffff, 0xffff);
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
      setd(p, PCI_MSI_MASK_64, 0, ALL);
      setd(p, PCI_MSI_PENDING_64, 0, ALL);
    }
  } else {
    setw(p, PCI_MSI_DATA_32, 0xffff, 0xffff);
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
      setd(p, PCI_MSI_MASK_32, 0, ALL);
      setd(p, PCI_MSI_PENDING_32, 0, ALL);
    }
  }
  return p;
}

/** vfio_msi_cap_len: 10 bytes, +4 for 64-bit addresses, +10 for per-vector masking. */
export function msiCapLength(flags: number): number {
  let len = 10;
  if (flags & PCI_MSI_FLAGS_64BIT) len += 4;
  if (flags & PCI_MSI_FLAGS_MASKBIT) len += 10;
  return len;
}
