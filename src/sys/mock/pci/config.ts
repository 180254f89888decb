// vfio-pci's virtual config space (vfio_pci_config.c), in front of a function's own
// config space (config-space.ts). Built at each open from what the device holds
// (vfio_config_init): a copy of the header and capabilities (vconfig), a map saying
// which capability owns each byte, and per-capability permission bits. Accesses are
// split into naturally aligned pieces that never cross a capability; a range with any
// byte past the end of config space is EFAULT as a whole.
import { sysError } from '../../../addon/errors.js';
import { barTypeBits } from '../../../device/pci/config-builder.js';
import type { PciConfigSpace, ConfigAccessSize } from '../../../device/pci/config-space.js';
import {
  basicPerms, capLengths, msiCapLength, msiPerms, PCI_CAP_ID_BASIC, PCI_CAP_ID_INVALID, PCI_CAP_ID_INVALID_VIRT,
  type PermBits,
} from './config-perms.js';
import {
  PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_5, PCI_BASE_ADDRESS_MEM_TYPE_64, PCI_CAP_EXP_ENDPOINT_SIZEOF_V1,
  PCI_CAP_EXP_ENDPOINT_SIZEOF_V2, PCI_CAP_FLAGS, PCI_CAP_ID_EXP, PCI_CAP_ID_HT, PCI_CAP_ID_MAX, PCI_CAP_ID_MSI,
  PCI_CAP_ID_PCIX, PCI_CAP_ID_SATA, PCI_CAP_ID_VNDR, PCI_CAP_LIST_ID, PCI_CAP_LIST_NEXT, PCI_CAP_PCIX_SIZEOF_V0,
  PCI_CAP_PCIX_SIZEOF_V2, PCI_CAPABILITY_LIST, PCI_CFG_SPACE_SIZE, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_EXP_FLAGS, PCI_EXP_FLAGS_VERS, PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_QMASK, PCI_MSI_FLAGS_QSIZE, PCI_ROM_ADDRESS, PCI_STATUS, PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF, PCI_X_CMD,
} from '../../../device/pci/regs.js';
import type { PciBarSpec } from '../../../device/pci/types.js';

/** What the virtual config space needs from the rest of the device. */
export interface VfioConfigHooks {
  /** vdev->msi_qmax: log2 of the vectors of the last MSI enable (0 before any). */
  msiQmax(): number;
  /** MSI is the active interrupt type (is_msi). */
  isMsi(): boolean;
  /** After any write touching COMMAND: the virtual INTx Disable bit as it now stands. */
  intxDisable(disabled: boolean): void;
}

type ReadFn = (pos: number, count: ConfigAccessSize, offset: number) => number;
type WriteFn = (pos: number, count: ConfigAccessSize, offset: number, val: number) => void;

interface Perm {
  readonly bits?: PermBits;
  readonly read?: ReadFn;
  readonly write?: WriteFn;
}

const ones = (count: number): number => (count === 4 ? 0xffffffff : (1 << (8 * count)) - 1);

function isBar(offset: number): boolean {
  return (offset >= PCI_BASE_ADDRESS_0 && offset < PCI_BASE_ADDRESS_5 + 4) ||
    (offset >= PCI_ROM_ADDRESS && offset < PCI_ROM_ADDRESS + 4);
}

export class VfioPciConfig {
  readonly size: number;
  private readonly vconfig: Uint8Array;
  private readonly map: Uint8Array;
  private readonly basic: Perm;
  private readonly unassigned: Perm;
  private readonly virtOnly: Perm;
  private msi: Perm | undefined;
  private bardirty = true;

  constructor(private readonly hw: PciConfigSpace, private readonly bars: readonly PciBarSpec[],
    private readonly hooks: VfioConfigHooks) {
    this.size = hw.size;
    this.vconfig = new Uint8Array(this.size);
    this.map = new Uint8Array(this.size).fill(PCI_CAP_ID_INVALID);
    this.map.fill(PCI_CAP_ID_BASIC, 0, PCI_STD_HEADER_SIZEOF);
    this.basic = { bits: basicPerms(), read: (p, c, o) => this.basicRead(p, c, o), write: (p, c, o, v) => this.basicWrite(p, c, o, v) };
    this.unassigned = { read: (p, c) => this.hw.read(p, c), write: (p, c, _o, v) => this.hw.write(p, c, v) };
    this.virtOnly = { read: (p, c) => this.vget(p, c), write: (p, c, _o, v) => this.vset(p, c, v) };
    this.vconfig.set(this.hw.bytes.subarray(0, PCI_STD_HEADER_SIZEOF));
    this.capInit();
  }

  /** vfio_pci_config_rw: reads into or writes from `buf` at `pos`; returns bytes done. */
  access(buf: Uint8Array, pos: number, iswrite: boolean): number {
    const count = buf.byteLength;
    if (pos < 0 || pos >= this.size || pos + count > this.size) {
      throw sysError('EFAULT', iswrite ? 'pwrite' : 'pread', undefined, `config space is ${this.size} bytes`);
    }
    let done = 0;
    while (done < count) done += this.doRw(buf.subarray(done), pos + done, iswrite);
    return done;
  }

  /** __vfio_pci_memory_enabled: the virtual COMMAND's Memory Space Enable. */
  memoryEnabled(): boolean {
    return (this.vget(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) !== 0;
  }

  /** The virtual INTx Disable bit (vfio keeps the real one for its own masking). */
  intxDisabled(): boolean {
    return (this.vget(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  /** vfio_config_do_rw: one naturally aligned piece inside one capability. */
  private doRw(buf: Uint8Array, pos: number, iswrite: boolean): number {
    let count = Math.min(buf.byteLength, this.remainingDword(pos));
    if (count >= 4 && pos % 4 === 0) count = 4;
    else if (count >= 2 && pos % 2 === 0) count = 2;
    else count = 1;
    const size = count as ConfigAccessSize;

    const capId = this.map[pos]!;
    let perm: Perm;
    let capStart = 0;
    if (capId === PCI_CAP_ID_INVALID) {
      perm = this.unassigned;
      capStart = pos;
    } else if (capId === PCI_CAP_ID_INVALID_VIRT) {
      perm = this.virtOnly;
      capStart = pos;
    } else {
      perm = this.capPerm(capId);
      if (capId > PCI_CAP_ID_BASIC) capStart = this.findCapStart(pos);
    }
    const offset = pos - capStart;
    const view = new DataView(buf.buffer, buf.byteOffset, count);
    if (iswrite) {
      if (!perm.write) return count;
      perm.write(pos, size, offset, getLE(view, size));
    } else {
      const val = perm.read ? perm.read(pos, size, offset) : 0;
      setLE(view, size, val);
    }
    return count;
  }

  private capPerm(capId: number): Perm {
    if (capId === PCI_CAP_ID_BASIC) return this.basic;
    if (capId === PCI_CAP_ID_MSI && this.msi) return this.msi;
    const direct: ReadFn = (p, c, o) => this.directRead(p, c, o);
    // Vendor-specific capabilities are written straight through; every other
    // capability without its own table is read-only (writes are dropped).
    if (capId === PCI_CAP_ID_VNDR) return { read: direct, write: (p, c, _o, v) => this.hw.write(p, c, v) };
    return { read: direct };
  }

  /** vfio_pci_cap_remaining_dword: bytes up to the dword boundary or the capability's end. */
  private remainingDword(pos: number): number {
    const cap = this.map[pos];
    let i = 1;
    while ((pos + i) % 4 !== 0 && pos + i < this.size && this.map[pos + i] === cap) i++;
    return i;
  }

  private findCapStart(pos: number): number {
    const cap = this.map[pos];
    if (cap === PCI_CAP_ID_BASIC) return 0;
    const base = pos >= PCI_CFG_SPACE_SIZE ? PCI_CFG_SPACE_SIZE : PCI_STD_HEADER_SIZEOF;
    while (pos - 1 >= base && this.map[pos - 1] === cap) pos--;
    return pos;
  }

  private vget(pos: number, count: number): number {
    let v = 0;
    for (let i = count - 1; i >= 0; i--) v = (v << 8) | this.vconfig[pos + i]!;
    return v >>> 0;
  }

  private vset(pos: number, count: number, v: number): void {
    for (let i = 0; i < count; i++) this.vconfig[pos + i] = (v >>> (8 * i)) & 0xff;
  }

  private permGet(bytes: Uint8Array, offset: number, count: number): number {
    let v = 0;
    for (let i = count - 1; i >= 0; i--) v = (v << 8) | bytes[offset + i]!;
    return v >>> 0;
  }

  /** vfio_default_config_read: virtual bits from vconfig, the rest from the device. */
  private defaultRead(bits: PermBits, pos: number, count: ConfigAccessSize, offset: number): number {
    let val = this.vget(pos, count);
    const virt = this.permGet(bits.virt, offset, count);
    if (virt !== ones(count)) {
      const phys = this.hw.read(pos, count);
      val = ((phys & ~virt) | (val & virt)) >>> 0;
    }
    return val;
  }

  /** vfio_default_config_write: writable virtual bits to vconfig, writable real bits to the device. */
  private defaultWrite(bits: PermBits, pos: number, count: ConfigAccessSize, offset: number, val: number): void {
    const write = this.permGet(bits.write, offset, count);
    if (!write) return;
    const virt = this.permGet(bits.virt, offset, count);
    if (write & virt) {
      const keep = this.vget(pos, count) & ~(write & virt);
      this.vset(pos, count, (keep | (val & write & virt)) >>> 0);
    }
    if (write & ~virt) {
      const phys = this.hw.read(pos, count) & ~(write & ~virt);
      this.hw.write(pos, count, (phys | (val & write & ~virt)) >>> 0);
    }
  }

  /** vfio_direct_config_read: the device's bytes, except the capability's next pointer. */
  private directRead(pos: number, count: ConfigAccessSize, offset: number): number {
    let val = this.hw.read(pos, count);
    const replaceLow = (n: number): void => {
      const mask = ones(n);
      val = ((val & ~mask) | (this.vget(pos, n) & mask)) >>> 0;
    };
    if (pos >= PCI_CFG_SPACE_SIZE) {
      if (offset < 4) replaceLow(count);
    } else if (pos >= PCI_STD_HEADER_SIZEOF) {
      if (offset === PCI_CAP_LIST_ID && count > 1) replaceLow(Math.min(PCI_CAP_FLAGS, count));
      else if (offset === PCI_CAP_LIST_NEXT) replaceLow(1);
    }
    return val;
  }

  private basicRead(pos: number, count: ConfigAccessSize, offset: number): number {
    if (isBar(offset)) this.barFixup();
    return this.defaultRead(this.basic.bits!, pos, count, offset);
  }

  private basicWrite(pos: number, count: ConfigAccessSize, offset: number, val: number): void {
    const newCmd = val & 0xffff;
    this.defaultWrite(this.basic.bits!, pos, count, offset, val);
    if (offset === PCI_COMMAND) {
      // vconfig remembers the memory and I/O enables the user asked for: the memory
      // enable decides whether BAR accesses are allowed.
      const mask = PCI_COMMAND_MEMORY | PCI_COMMAND_IO;
      this.vset(PCI_COMMAND, 2, (this.vget(PCI_COMMAND, 2) & ~mask) | (newCmd & mask));
    }
    if (offset >= PCI_COMMAND && offset <= PCI_COMMAND + 1) this.hooks.intxDisable(this.intxDisabled());
    if (isBar(offset)) this.bardirty = true;
  }

  /**
   * vfio_bar_fixup: BAR sizing on the virtual copy. Each implemented BAR keeps only
   * the address bits its size allows plus its type bits; unimplemented BARs and the
   * (absent) ROM read 0.
   */
  private barFixup(): void {
    if (!this.bardirty) return;
    for (let i = 0; i < 6; i++) {
      const at = PCI_BASE_ADDRESS_0 + 4 * i;
      const bar = this.bars.find((b) => b.index === i);
      if (!bar) {
        this.vset(at, 4, 0);
        continue;
      }
      const mask = ~(BigInt(bar.size) - 1n) & 0xffff_ffff_ffff_ffffn;
      let v = (this.vget(at, 4) & Number(mask & 0xffff_ffffn)) >>> 0;
      v = (v | barTypeBits(bar)) >>> 0;
      this.vset(at, 4, v);
      if (v & PCI_BASE_ADDRESS_MEM_TYPE_64) {
        i++;
        const hi = PCI_BASE_ADDRESS_0 + 4 * i;
        this.vset(hi, 4, (this.vget(hi, 4) & Number(mask >> 32n)) >>> 0);
      }
    }
    this.vset(PCI_ROM_ADDRESS, 4, 0);
    this.bardirty = false;
  }

  private msiRead(pos: number, count: ConfigAccessSize, offset: number): number {
    if (offset <= PCI_MSI_FLAGS && offset + count >= PCI_MSI_FLAGS) {
      // The kernel means to show msi_qmax in the flags' QMASK, but its pointer is the
      // capability's start, so the bits it edits are the (device-read) id byte's.
      // Kept as the kernel does it: the user sees the device's own QMASK.
      const start = this.findCapStart(pos);
      const word = (this.vget(start, 2) & ~PCI_MSI_FLAGS_QMASK) | (this.hooks.msiQmax() << 1);
      this.vset(start, 2, word);
    }
    return this.defaultRead(this.msi!.bits!, pos, count, offset);
  }

  private msiWrite(pos: number, count: ConfigAccessSize, offset: number, val: number): void {
    this.defaultWrite(this.msi!.bits!, pos, count, offset, val);
    if (offset <= PCI_MSI_FLAGS && offset + count >= PCI_MSI_FLAGS) {
      const start = this.findCapStart(pos);
      let flags = this.vget(start + PCI_MSI_FLAGS, 2);
      // MSI is enabled only through VFIO_DEVICE_SET_IRQS.
      if (!this.hooks.isMsi()) flags &= ~PCI_MSI_FLAGS_ENABLE;
      const qmax = this.hooks.msiQmax();
      if ((flags & PCI_MSI_FLAGS_QSIZE) >> 4 > qmax) flags = (flags & ~PCI_MSI_FLAGS_QSIZE) | (qmax << 4);
      this.vset(start + PCI_MSI_FLAGS, 2, flags);
      this.hw.write(start + PCI_MSI_FLAGS, 2, flags);
    }
  }

  /** vfio_cap_init: copies the capabilities vfio-pci knows, hides the others. */
  private capInit(): void {
    const hw = this.hw;
    if (!(hw.get16(PCI_STATUS) & PCI_STATUS_CAP_LIST)) return;
    let pos = hw.get8(PCI_CAPABILITY_LIST);
    let prev = PCI_CAPABILITY_LIST;
    let loops = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / 4;
    let caps = 0;
    while (pos && loops--) {
      const cap = hw.get8(pos);
      const next = hw.get8(pos + PCI_CAP_LIST_NEXT);
      let len = 0;
      if (cap && cap <= PCI_CAP_ID_MAX) {
        const known = capLengths.get(cap) ?? 0;
        len = known === 'variable' ? this.capLen(cap, pos) : known;
      }
      if (!len || pos + len > PCI_CFG_SPACE_SIZE) {
        this.vconfig[prev] = next; // hidden from the user's chain
        pos = next;
        continue;
      }
      this.map.fill(cap, pos, pos + len);
      this.vconfig.set(hw.bytes.subarray(pos, pos + len), pos);
      prev = pos + PCI_CAP_LIST_NEXT;
      pos = next;
      caps++;
    }
    if (!caps) this.vset(PCI_STATUS, 2, this.vget(PCI_STATUS, 2) & ~PCI_STATUS_CAP_LIST);
  }

  /** vfio_cap_len for the variable-length capabilities. */
  private capLen(cap: number, pos: number): number {
    const hw = this.hw;
    switch (cap) {
      case PCI_CAP_ID_MSI: {
        const flags = hw.get16(pos + PCI_MSI_FLAGS);
        const len = msiCapLength(flags);
        this.msi ??= {
          bits: msiPerms(len, flags),
          read: (p, c, o) => this.msiRead(p, c, o),
          write: (p, c, o, v) => this.msiWrite(p, c, o, v),
        };
        return len;
      }
      case PCI_CAP_ID_PCIX:
        return (hw.get16(pos + PCI_X_CMD) >> 12) & 3 ? PCI_CAP_PCIX_SIZEOF_V2 : PCI_CAP_PCIX_SIZEOF_V0;
      case PCI_CAP_ID_VNDR:
        return hw.get8(pos + PCI_CAP_FLAGS);
      case PCI_CAP_ID_EXP:
        return (hw.get16(pos + PCI_EXP_FLAGS) & PCI_EXP_FLAGS_VERS) === 1 ? PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 : PCI_CAP_EXP_ENDPOINT_SIZEOF_V2;
      case PCI_CAP_ID_HT:
        return hw.get8(pos + 3) & 0xe0 ? 24 : 28;
      case PCI_CAP_ID_SATA:
        return (hw.get8(pos + 4) & 0xf) === 0xf ? 16 : 8;
      default:
        return 0;
    }
  }
}

function getLE(view: DataView, size: ConfigAccessSize): number {
  return size === 4 ? view.getUint32(0, true) : size === 2 ? view.getUint16(0, true) : view.getUint8(0);
}

function setLE(view: DataView, size: ConfigAccessSize, v: number): void {
  if (size === 4) view.setUint32(0, v >>> 0, true);
  else if (size === 2) view.setUint16(0, v & 0xffff, true);
  else view.setUint8(0, v & 0xff);
}
