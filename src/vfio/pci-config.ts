// PCI configuration space through the CONFIG region: the standard type 0 header's
// fields by name, and the capability lists (standard from 0x34, extended from 0x100).
import { inspect } from 'node:util';
import type { Region } from './region.js';
import { hex } from './names.js';

/** Offsets of the type 0 header (PCI Local Bus spec, <linux/pci_regs.h> names in comments). */
export const pciHeader = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG: 0x09,
  CLASS_DEVICE: 0x0a,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BASE_ADDRESS_0: 0x10,
  CARDBUS_CIS: 0x28,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  ROM_ADDRESS: 0x30,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  MIN_GNT: 0x3e,
  MAX_LAT: 0x3f,
} as const;

export const pciCommand = {
  IO: 0x1,
  MEMORY: 0x2,
  MASTER: 0x4,
  INTX_DISABLE: 0x400,
} as const;

/** STATUS bit: a capability list starts at CAPABILITY_LIST. */
export const PCI_STATUS_CAP_LIST = 0x10;

const capNames: Record<number, string> = {
  0x01: 'PM', 0x02: 'AGP', 0x03: 'VPD', 0x04: 'SLOTID', 0x05: 'MSI', 0x06: 'CHSWP', 0x07: 'PCIX',
  0x08: 'HT', 0x09: 'VNDR', 0x0a: 'DBG', 0x0b: 'CCRC', 0x0c: 'SHPC', 0x0d: 'SSVID', 0x0e: 'AGP3',
  0x0f: 'SECDEV', 0x10: 'EXP', 0x11: 'MSIX', 0x12: 'SATA', 0x13: 'AF', 0x14: 'EA',
};

const extCapNames: Record<number, string> = {
  0x01: 'ERR', 0x02: 'VC', 0x03: 'DSN', 0x04: 'PWR', 0x0b: 'VNDR', 0x0d: 'ACS', 0x0e: 'ARI',
  0x0f: 'ATS', 0x10: 'SRIOV', 0x13: 'PRI', 0x15: 'REBAR', 0x18: 'LTR', 0x19: 'SECPCI',
  0x1b: 'PASID', 0x1e: 'L1SS', 0x1f: 'PTM', 0x25: 'DVSEC',
};

export interface PciCapability {
  id: number;
  name: string;
  offset: number;
  /** Extended capabilities only: the capability's version. */
  version?: number;
  extended: boolean;
}

/** The fields of the type 0 header, decoded from one read. */
export interface PciHeader {
  vendorId: number;
  deviceId: number;
  command: number;
  status: number;
  revisionId: number;
  /** base class << 16 | subclass << 8 | prog-if */
  classCode: number;
  headerType: number;
  /** As config space holds them: the kernel virtualizes them (sizing, addresses). */
  bars: number[];
  subsystemVendorId: number;
  subsystemId: number;
  romAddress: number;
  capabilitiesPointer: number;
  interruptLine: number;
  interruptPin: number;
}

/** A standard list has at most (256 - 64) / 4 entries; more means a loop. */
const MAX_CAPS = 48;
const MAX_EXT_CAPS = (4096 - 256) / 4;

export class PciConfig {
  constructor(readonly region: Region) {}

  get size(): number {
    return this.region.size;
  }

  read8(offset: number): number { return this.region.read8(offset); }
  read16(offset: number): number { return this.region.read16(offset); }
  read32(offset: number): number { return this.region.read32(offset); }
  write8(offset: number, value: number): void { this.region.write8(offset, value); }
  write16(offset: number, value: number): void { this.region.write16(offset, value); }
  write32(offset: number, value: number): void { this.region.write32(offset, value); }

  get vendorId(): number { return this.read16(pciHeader.VENDOR_ID); }
  get deviceId(): number { return this.read16(pciHeader.DEVICE_ID); }
  get command(): number { return this.read16(pciHeader.COMMAND); }
  set command(value: number) { this.write16(pciHeader.COMMAND, value); }
  get status(): number { return this.read16(pciHeader.STATUS); }
  get revisionId(): number { return this.read8(pciHeader.REVISION_ID); }
  get classCode(): number { return this.read32(pciHeader.REVISION_ID) >>> 8; }
  get headerType(): number { return this.read8(pciHeader.HEADER_TYPE); }
  get subsystemVendorId(): number { return this.read16(pciHeader.SUBSYSTEM_VENDOR_ID); }
  get subsystemId(): number { return this.read16(pciHeader.SUBSYSTEM_ID); }
  get interruptLine(): number { return this.read8(pciHeader.INTERRUPT_LINE); }
  set interruptLine(value: number) { this.write8(pciHeader.INTERRUPT_LINE, value); }
  get interruptPin(): number { return this.read8(pciHeader.INTERRUPT_PIN); }

  /** The raw 32-bit BAR register n (0..5). */
  bar(n: number): number {
    if (!Number.isInteger(n) || n < 0 || n > 5) throw new RangeError(`BAR number must be 0..5, got ${n}`);
    return this.read32(pciHeader.BASE_ADDRESS_0 + 4 * n);
  }

  /** Sets COMMAND bits (e.g. MEMORY | MASTER before DMA) and returns the new value. */
  enable(bits: number): number {
    this.command = this.command | bits;
    return this.command;
  }

  /** The whole type 0 header in one 64-byte read. */
  header(): PciHeader {
    const bytes = this.region.read(0, 64);
    if (bytes.byteLength !== 64) throw new RangeError(`config space returned ${bytes.byteLength} of 64 header bytes`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const u8 = (at: number): number => dv.getUint8(at);
    const u16 = (at: number): number => dv.getUint16(at, true);
    const u32 = (at: number): number => dv.getUint32(at, true);
    return {
      vendorId: u16(pciHeader.VENDOR_ID),
      deviceId: u16(pciHeader.DEVICE_ID),
      command: u16(pciHeader.COMMAND),
      status: u16(pciHeader.STATUS),
      revisionId: u8(pciHeader.REVISION_ID),
      classCode: u32(pciHeader.REVISION_ID) >>> 8,
      headerType: u8(pciHeader.HEADER_TYPE),
      bars: [0, 1, 2, 3, 4, 5].map((n) => u32(pciHeader.BASE_ADDRESS_0 + 4 * n)),
      subsystemVendorId: u16(pciHeader.SUBSYSTEM_VENDOR_ID),
      subsystemId: u16(pciHeader.SUBSYSTEM_ID),
      romAddress: u32(pciHeader.ROM_ADDRESS),
      capabilitiesPointer: u8(pciHeader.CAPABILITY_LIST),
      interruptLine: u8(pciHeader.INTERRUPT_LINE),
      interruptPin: u8(pciHeader.INTERRUPT_PIN),
    };
  }

  /** Standard capabilities (when STATUS says there is a list), then extended ones (PCIe, 4 KiB config). */
  capabilities(): PciCapability[] {
    const caps: PciCapability[] = [];
    if (this.status & PCI_STATUS_CAP_LIST) {
      const seen = new Set<number>();
      for (let at = this.read8(pciHeader.CAPABILITY_LIST) & ~3; at >= 0x40 && !seen.has(at) && seen.size < MAX_CAPS;) {
        seen.add(at);
        const word = this.read16(at);
        const id = word & 0xff;
        caps.push({ id, name: capNames[id] ?? `cap ${hex(id, 2)}`, offset: at, extended: false });
        at = (word >>> 8) & ~3;
      }
    }
    if (this.size > 0x100) {
      const seen = new Set<number>();
      for (let at = 0x100; at >= 0x100 && !seen.has(at) && seen.size < MAX_EXT_CAPS;) {
        seen.add(at);
        const header = this.read32(at);
        if (header === 0 || header === 0xffffffff) break;
        const id = header & 0xffff;
        caps.push({ id, name: extCapNames[id] ?? `ext cap ${hex(id, 4)}`, offset: at, version: (header >>> 16) & 0xf, extended: true });
        at = (header >>> 20) & ~3;
      }
    }
    return caps;
  }

  /** The first capability with this id (standard unless `extended`). */
  findCapability(id: number, extended = false): PciCapability | undefined {
    return this.capabilities().find((c) => c.id === id && c.extended === extended);
  }

  [inspect.custom](): string {
    try {
      const h = this.header();
      const caps = this.capabilities().map((c) => `${c.name}@${hex(c.offset, 2)}`).join(' ');
      return `PciConfig ${hex(h.vendorId, 4).slice(2)}:${hex(h.deviceId, 4).slice(2)} rev ${hex(h.revisionId, 2)} class ${hex(h.classCode, 6)} command ${hex(h.command, 4)} status ${hex(h.status, 4)} caps [${caps}]`;
    } catch (err) {
      return `PciConfig (unreadable: ${(err as Error).message})`;
    }
  }
}
