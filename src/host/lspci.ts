// Config space decoded the way `lspci -vv` shows it: identity, Control and Status bits
// with +/-, the interrupt pin, the BARs, and the capabilities the core and the mock
// devices have (PM, MSI, MSI-X, PCI Express), others by name and offset.
import type { PciConfig } from '../vfio/index.js';

/** Names of class codes (base class << 8 | subclass), a short table of those we meet. */
const CLASS_NAMES: Record<number, string> = {
  0x0000: 'Non-VGA unclassified device',
  0x0001: 'VGA compatible unclassified device',
  0x0100: 'SCSI storage controller',
  0x0106: 'SATA controller',
  0x0108: 'Non-Volatile memory controller',
  0x0200: 'Ethernet controller',
  0x0300: 'VGA compatible controller',
  0x0301: 'XGA compatible controller',
  0x0302: '3D controller',
  0x0380: 'Display controller',
  0x0403: 'Audio device',
  0x0600: 'Host bridge',
  0x0604: 'PCI bridge',
  0x0700: 'Serial controller',
  0x0880: 'System peripheral',
  0x1200: 'Processing accelerators',
};

const BASE_NAMES: Record<number, string> = {
  0x00: 'Unclassified device', 0x01: 'Mass storage controller', 0x02: 'Network controller', 0x03: 'Display controller',
  0x04: 'Multimedia controller', 0x05: 'Memory controller', 0x06: 'Bridge', 0x07: 'Communication controller',
  0x08: 'Generic system peripheral', 0x12: 'Processing accelerators', 0xff: 'Unassigned class',
};

/** "VGA compatible controller [0300]" for a 24-bit class code (prog-if ignored, as lspci's first line). */
export function pciClassName(classCode: number): string {
  const cls = (classCode >>> 8) & 0xffff;
  const name = CLASS_NAMES[cls] ?? BASE_NAMES[cls >>> 8] ?? 'Unclassified device';
  return `${name} [${cls.toString(16).padStart(4, '0')}]`;
}

const bit = (value: number, mask: number): string => (value & mask ? '+' : '-');

/** The lines `lspci -vv` would print for this config space (without the device name line). */
export function decodeConfig(config: PciConfig, barSizes: readonly number[] = []): string[] {
  const h = config.header();
  const lines: string[] = [];
  const rev = h.revisionId.toString(16).padStart(2, '0');
  lines.push(`${pciClassName(h.classCode)}: Device ${hex(h.vendorId, 4)}:${hex(h.deviceId, 4)} (rev ${rev})`);
  if (h.subsystemVendorId !== 0 || h.subsystemId !== 0) lines.push(`Subsystem: Device ${hex(h.subsystemVendorId, 4)}:${hex(h.subsystemId, 4)}`);
  const c = h.command;
  lines.push(`Control: I/O${bit(c, 0x1)} Mem${bit(c, 0x2)} BusMaster${bit(c, 0x4)} SpecCycle${bit(c, 0x8)} MemWINV${bit(c, 0x10)} VGASnoop${bit(c, 0x20)} ParErr${bit(c, 0x40)} Stepping${bit(c, 0x80)} SERR${bit(c, 0x100)} FastB2B${bit(c, 0x200)} DisINTx${bit(c, 0x400)}`);
  const s = h.status;
  const devsel = ['fast', 'medium', 'slow', '??'][(s >>> 9) & 3];
  lines.push(`Status: Cap${bit(s, 0x10)} 66MHz${bit(s, 0x20)} UDF${bit(s, 0x40)} FastB2B${bit(s, 0x80)} ParErr${bit(s, 0x100)} DEVSEL=${devsel} >TAbort${bit(s, 0x800)} <TAbort${bit(s, 0x1000)} <MAbort${bit(s, 0x2000)} >SERR${bit(s, 0x4000)} <PERR${bit(s, 0x8000)} INTx${bit(s, 0x8)}`);
  if (h.interruptPin !== 0) {
    const pin = h.interruptPin <= 4 ? String.fromCharCode(0x40 + h.interruptPin) : `?${h.interruptPin}`;
    lines.push(`Interrupt: pin ${pin} routed to IRQ ${h.interruptLine}`);
  }
  lines.push(...barLines(h.bars, barSizes));
  for (const cap of config.capabilities()) lines.push(...capabilityLines(config, cap.id, cap.offset, cap.extended, cap.name, cap.version));
  return lines;
}

/**
 * "Region 0: Memory at fe000000 (32-bit, non-prefetchable) [size=4K]": sizes from the
 * VFIO regions (sizing a BAR would write config space); an unassigned 32-bit memory BAR
 * reads 0, so a BAR with a size is shown even then.
 */
function barLines(bars: number[], sizes: readonly number[]): string[] {
  const lines: string[] = [];
  for (let n = 0; n < 6; n++) {
    const raw = bars[n]!;
    const size = sizes[n] ?? 0;
    const sized = size > 0 ? ` [size=${lspciSize(size)}]` : '';
    if (raw === 0 && size === 0) continue;
    if (raw & 1) {
      lines.push(`Region ${n}: I/O ports at ${hex(raw & ~3, 4)}${sized}`);
      continue;
    }
    const is64 = ((raw >>> 1) & 3) === 2;
    const prefetch = (raw & 8) !== 0;
    let address = BigInt((raw & ~0xf) >>> 0);
    if (is64 && n < 5) address |= BigInt(bars[n + 1]!) << 32n;
    const where = address === 0n ? '<unassigned>' : address.toString(16);
    lines.push(`Region ${n}: Memory at ${where} (${is64 ? '64-bit' : '32-bit'}, ${prefetch ? 'prefetchable' : 'non-prefetchable'})${sized}`);
    if (is64) n++;
  }
  return lines;
}

function capabilityLines(config: PciConfig, id: number, at: number, extended: boolean, name: string, version: number | undefined): string[] {
  const off = at.toString(16).padStart(extended ? 3 : 2, '0');
  if (extended) return [`Capabilities: [${off} v${version ?? 0}] ${name}`];
  switch (id) {
    case 0x01: {
      const pmc = config.read16(at + 2);
      const pmcsr = config.read16(at + 4);
      return [`Capabilities: [${off}] Power Management version ${pmc & 7}`, `\tStatus: D${pmcsr & 3} NoSoftRst${bit(pmcsr, 0x8)} PME-Enable${bit(pmcsr, 0x100)}`];
    }
    case 0x05: {
      const ctrl = config.read16(at + 2);
      const is64 = (ctrl & 0x80) !== 0;
      const lo = config.read32(at + 4);
      const hi = is64 ? config.read32(at + 8) : 0;
      const data = config.read16(at + (is64 ? 12 : 8));
      const address = ((BigInt(hi) << 32n) | BigInt(lo)).toString(16).padStart(is64 ? 16 : 8, '0');
      return [
        `Capabilities: [${off}] MSI: Enable${bit(ctrl, 1)} Count=${1 << ((ctrl >>> 4) & 7)}/${1 << ((ctrl >>> 1) & 7)} Maskable${bit(ctrl, 0x100)} 64bit${bit(ctrl, 0x80)}`,
        `\tAddress: ${address}  Data: ${data.toString(16).padStart(4, '0')}`,
      ];
    }
    case 0x11: {
      const ctrl = config.read16(at + 2);
      const table = config.read32(at + 4);
      const pba = config.read32(at + 8);
      return [
        `Capabilities: [${off}] MSI-X: Enable${bit(ctrl, 0x8000)} Count=${(ctrl & 0x7ff) + 1} Masked${bit(ctrl, 0x4000)}`,
        `\tVector table: BAR=${table & 7} offset=${((table & ~7) >>> 0).toString(16).padStart(8, '0')}`,
        `\tPBA: BAR=${pba & 7} offset=${((pba & ~7) >>> 0).toString(16).padStart(8, '0')}`,
      ];
    }
    case 0x10: {
      const flags = config.read16(at + 2);
      const kinds = ['Endpoint', 'Legacy Endpoint', '?', '?', 'Root Port', 'Upstream Port', 'Downstream Port', 'PCI-Express to PCI/PCI-X Bridge', 'PCI/PCI-X to PCI-Express Bridge', 'Root Complex Integrated Endpoint', 'Root Complex Event Collector'];
      const devctl = config.read16(at + 8);
      return [
        `Capabilities: [${off}] Express (v${flags & 0xf}) ${kinds[(flags >>> 4) & 0xf] ?? '?'}`,
        `\tDevCtl: CorrErr${bit(devctl, 1)} NonFatalErr${bit(devctl, 2)} FatalErr${bit(devctl, 4)} UnsupReq${bit(devctl, 8)}`,
      ];
    }
    default:
      return [`Capabilities: [${off}] ${name}`];
  }
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, '0');
}

/** lspci's sizes: 256, 4K, 1M, 8G. */
function lspciSize(bytes: number): string {
  for (const [unit, scale] of [['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}
