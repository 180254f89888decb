// A simulated PCI function bound to vfio-pci: the mock kernel's vfio_device_ops for a
// PCI device (drivers/vfio/pci/vfio_pci_core.c), in front of a PciFunctionModel. It
// owns what the kernel driver owns while the device is open: the virtual config space
// (config.ts), the interrupt state (irqs.ts), the BAR maps (bar-shadow.ts), ioeventfds
// and the low-power state; and it is the model's bus (INTx pin, MSI, bus-master DMA).
import { sysError } from '../../../addon/errors.js';
import { addon } from '../../../addon/addon.js';
import { pciRegion } from '../../../uapi/constants.js';
import { ioctls } from '../../../uapi/ioctls.js';
import { vfio_pci_hot_reset_info } from '../../../uapi/structs.js';
import type { Mapping } from '../../types.js';
import type { DeviceContext } from '../../../device/backend.js';
import { BarShadow } from './bar-shadow.js';
import { getPciDeviceInfo } from '../../../device/pci/device-info.js';
import { VfioPciConfig } from './config.js';
import { LowPowerState } from './feature.js';
import { IoeventfdTable } from './ioeventfd.js';
import { VfioPciIrqs, type IrqCounts } from '../../../device/pci/irqs.js';
import type { PciDma, PciFunctionHost, PciFunctionModel } from './model.js';
import { barRw, getRegionInfo, splitOffset, type MsixTableInfo } from '../../../device/pci/regions.js';
import {
  PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO, PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY, PCI_INTERRUPT_PIN, PCI_MSI_ADDRESS_LO, PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE, PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_QSIZE, PCI_MSIX_TABLE, PCI_MSIX_TABLE_BIR, PCI_MSIX_TABLE_OFFSET,
  PCI_MSI_FLAGS_QSIZE, PCI_STD_HEADER_SIZEOF, PCI_MSI_FLAGS_QMASK, PCI_MSIX_ENTRY_SIZE,
} from '../../../device/pci/regs.js';
import type { MockPciDevice } from './model.js';
import type { KernelFlavour } from '../options.js';
import type { MmioSize, PciBarSpec, PciIdentity } from '../../../device/pci/types.js';

/** How often mapped BARs are checked for stores while mapped (ms). */
const MAPPED_STORE_POLL_MS = 2;
/** IOMMU page granularity at which a DMA is translated (and may be partly blocked). */
const DMA_PAGE = 4096n;

const OFFSET_LIMIT = 1n << 63n;

interface OpenState {
  readonly ctx: DeviceContext;
  readonly config: VfioPciConfig;
  readonly irqs: VfioPciIrqs;
  readonly ioeventfds: IoeventfdTable;
  readonly lowPower: LowPowerState;
  /** pci_save_state at open: the header restored at close. */
  readonly savedHeader: Uint8Array;
  readonly shadows: Map<number, BarShadow>;
  poll: NodeJS.Timeout | undefined;
  /** Whether mappings reach the device now (memory enabled, not in low power). */
  mapsLive: boolean;
}

export class VfioPciDevice implements MockPciDevice {
  readonly pci: PciIdentity;
  private open_: OpenState | undefined;
  private intxLevel = false;
  /** vdev->msi_qmax: kept across opens, as the kernel keeps it in the device. */
  private msiQmax = 0;
  private syncing = false;
  private readonly host: PciFunctionHost;
  /** The mock kernel's flavour, set when registered (6.1 until then). */
  private flavour: KernelFlavour = '6.1';

  constructor(readonly name: string, readonly model: PciFunctionModel) {
    this.pci = model.identity;
    const dma: PciDma = {
      read: (iova, dst) => this.dma(iova, dst, 'read'),
      write: (iova, src) => this.dma(iova, src, 'write'),
    };
    this.host = {
      dma,
      setIntx: (level) => this.setIntx(level),
      msiNotify: (vector) => this.msiNotify(vector),
      registersChanged: (bar) => this.registersChanged(bar),
    };
    model.config.onWrite((offset, size) => this.hwConfigWritten(offset, size));
    model.attach(this.host);
  }

  useFlavour(flavour: KernelFlavour): void {
    this.flavour = flavour;
  }

  /** Whether a device fd is open. */
  get isOpen(): boolean {
    return this.open_ !== undefined;
  }

  /** The interrupt state while open (for the vGPU core and tests). */
  get irqs(): VfioPciIrqs | undefined {
    return this.open_?.irqs;
  }

  /** Asks the user to release the device (the REQ interrupt); false when nobody listens. */
  requestRelease(): boolean {
    return this.open_?.irqs.requestRelease() ?? false;
  }

  // ---- vfio_device_ops ----

  open(ctx: DeviceContext): void {
    if (this.open_) return;
    const hw = this.model.config;
    // pci_enable_device: decode the kinds of BARs the function has.
    let cmd = hw.get16(PCI_COMMAND);
    if (this.model.bars.some((b) => b.kind !== 'io')) cmd |= PCI_COMMAND_MEMORY;
    if (this.model.bars.some((b) => b.kind === 'io')) cmd |= PCI_COMMAND_IO;
    hw.write(PCI_COMMAND, 2, cmd);
    // pci_try_reset_function, when the function can reset.
    if (this.model.resettable) this.functionReset();
    const savedHeader = hw.bytes.slice(0, PCI_STD_HEADER_SIZEOF);
    // A PCI 2.3 device starts with its INTx Disable bit clear.
    if (hw.get16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) hw.write(PCI_COMMAND, 2, hw.get16(PCI_COMMAND) & ~PCI_COMMAND_INTX_DISABLE);

    let irqs: VfioPciIrqs | undefined;
    const config = new VfioPciConfig(hw, this.model.bars, {
      msiQmax: () => this.msiQmax,
      isMsi: () => irqs?.type === 'msi',
      intxDisable: (disabled) => irqs?.setVirqDisabled(disabled),
    });
    irqs = new VfioPciIrqs(this.irqCounts(), ctx.eventfds, {
      enableMsi: (index, nvec) => this.enableMsi(index, nvec),
      disableMsi: (index) => this.disableMsi(index),
    });
    irqs.setIntxLevel(this.intxLevel);
    this.open_ = {
      ctx, config, irqs,
      ioeventfds: new IoeventfdTable((bar) => this.barLength(bar), ctx.eventfds, () => this.msixTable()),
      lowPower: new LowPowerState(ctx.eventfds),
      savedHeader,
      shadows: new Map(),
      poll: undefined,
      mapsLive: config.memoryEnabled(),
    };
  }

  close(): void {
    const st = this.open_;
    if (!st) return;
    try {
      this.syncMappedStores(); // stores made just before the close still reach the device
    } catch {
      // release must not fail
    }
    if (st.poll) clearInterval(st.poll);
    for (const shadow of st.shadows.values()) shadow.close();
    st.shadows.clear();
    // vfio_pci_core_disable: stop DMA, interrupts off, eventfds dropped, config restored.
    const hw = this.model.config;
    hw.write(PCI_COMMAND, 2, hw.get16(PCI_COMMAND) & ~PCI_COMMAND_MASTER);
    st.irqs.release();
    st.ioeventfds.clear();
    st.lowPower.release();
    this.open_ = undefined;
    for (let at = 4; at < PCI_STD_HEADER_SIZEOF; at += 4) {
      const saved = st.savedHeader[at]! | (st.savedHeader[at + 1]! << 8) | (st.savedHeader[at + 2]! << 16) | (st.savedHeader[at + 3]! << 24);
      if (hw.get32(at) !== saved >>> 0) hw.write(at, 4, saved >>> 0);
    }
    hw.write(PCI_COMMAND, 2, hw.get16(PCI_COMMAND) & ~PCI_COMMAND_MASTER);
  }

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    const st = this.requireOpen('ioctl');
    this.enter();
    const buffer = (operation: string): Uint8Array => {
      if (!(arg instanceof Uint8Array)) throw sysError('EFAULT', 'ioctl', operation, 'the argument must be a buffer');
      return arg;
    };
    switch (request) {
      case ioctls.VFIO_DEVICE_GET_INFO:
        return getPciDeviceInfo(buffer('VFIO_DEVICE_GET_INFO'), { resettable: this.model.resettable });
      case ioctls.VFIO_DEVICE_GET_REGION_INFO:
        return getRegionInfo(buffer('VFIO_DEVICE_GET_REGION_INFO'), {
          bars: this.model.bars,
          configSize: st.config.size,
          mmapSupported: (i) => this.mmapSupported(i),
          msix: this.msixTable(),
        });
      case ioctls.VFIO_DEVICE_GET_IRQ_INFO:
        return st.irqs.getIrqInfo(buffer('VFIO_DEVICE_GET_IRQ_INFO'));
      case ioctls.VFIO_DEVICE_SET_IRQS:
        return st.irqs.setIrqs(buffer('VFIO_DEVICE_SET_IRQS'));
      case ioctls.VFIO_DEVICE_RESET:
        return this.reset();
      case ioctls.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
        return this.hotReset(buffer('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO'), 'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO');
      case ioctls.VFIO_DEVICE_PCI_HOT_RESET:
        return this.hotReset(buffer('VFIO_DEVICE_PCI_HOT_RESET'), 'VFIO_DEVICE_PCI_HOT_RESET');
      case ioctls.VFIO_DEVICE_IOEVENTFD:
        return st.ioeventfds.ioctl(buffer('VFIO_DEVICE_IOEVENTFD'));
      case ioctls.VFIO_DEVICE_FEATURE: {
        const ret = st.lowPower.ioctl(buffer('VFIO_DEVICE_FEATURE'));
        this.updateMapsLive();
        return ret;
      }
      default:
        // QUERY_GFX_PLANE and GET_GFX_DMABUF are mdev-only; anything else is unknown.
        throw sysError('ENOTTY', 'ioctl', undefined, `device ioctl 0x${request.toString(16)}`);
    }
  }

  read(buf: Uint8Array, offset: bigint): number {
    return this.rw(buf, offset, false);
  }

  write(buf: Uint8Array, offset: bigint): number {
    return this.rw(buf, offset, true);
  }

  mmap(offset: bigint, length: number, prot: number): Mapping {
    const st = this.requireOpen('mmap');
    const page = addon().pageSize;
    if (!Number.isSafeInteger(length) || length <= 0 || offset < 0n || offset % BigInt(page) !== 0n) {
      throw sysError('EINVAL', 'mmap', undefined, 'length must be positive and offset page-aligned');
    }
    const { index, pos } = splitOffset(offset);
    if (index >= pciRegion.VFIO_PCI_NUM_REGIONS) throw sysError('EINVAL', 'mmap', undefined, `no region ${index}`);
    if (index >= pciRegion.VFIO_PCI_ROM_REGION_INDEX) throw sysError('EINVAL', 'mmap', undefined, 'ROM, config and VGA cannot be mapped');
    if (!this.mmapSupported(index)) throw sysError('EINVAL', 'mmap', undefined, `BAR${index} cannot be mapped`);
    const bar = this.bar(index)!;
    const reqLen = Math.ceil(length / page) * page;
    if (pos + reqLen > Math.ceil(bar.size / page) * page) throw sysError('EINVAL', 'mmap', undefined, `past the end of BAR${index}`);
    let shadow = st.shadows.get(index);
    if (!shadow) {
      shadow = new BarShadow(bar, `vfio-pci ${this.name} BAR${index}`, (off) => this.model.mmioPeek(index, off));
      st.shadows.set(index, shadow);
    }
    const mapping = shadow.map(pos, length, prot);
    if (!st.poll) {
      st.poll = setInterval(() => this.pollMappedStores(), MAPPED_STORE_POLL_MS);
      st.poll.unref();
    }
    return mapping;
  }

  // ---- ioctls ----

  private reset(): number {
    if (!this.model.resettable) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_RESET', 'the device cannot reset');
    this.functionReset();
    this.refreshShadows();
    return 0;
  }

  /** pci_try_reset_function: the header is saved before the reset and restored after. */
  private functionReset(): void {
    const hw = this.model.config;
    const saved = hw.bytes.slice(0, PCI_STD_HEADER_SIZEOF);
    this.model.reset();
    hw.bytes.set(saved);
  }

  /** The function sits on the root bus with no slot: neither slot nor bus reset exists. */
  private hotReset(buf: Uint8Array, operation: string): number {
    const minsz = vfio_pci_hot_reset_info.size;
    if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', operation, 'buffer shorter than 12 bytes');
    const hdr = vfio_pci_hot_reset_info.decode(buf);
    if (hdr.argsz < minsz) throw sysError('EINVAL', 'ioctl', operation, `argsz ${hdr.argsz}`);
    if (operation === 'VFIO_DEVICE_PCI_HOT_RESET' && hdr.flags) throw sysError('EINVAL', 'ioctl', operation, 'flags must be 0');
    // 6.12's vfio_pci_ioctl_pci_hot_reset: a zero-length array is only for cdev users, and a
    // group user is one; checked before probing for a slot or bus reset (6.1 has no such check).
    if (operation === 'VFIO_DEVICE_PCI_HOT_RESET' && this.flavour === '6.12' && hdr.count === 0) {
      throw sysError('EINVAL', 'ioctl', operation, 'count 0 is only for cdev users');
    }
    throw sysError('ENODEV', 'ioctl', operation, 'no slot or bus reset for a device on the root bus');
  }

  // ---- region access ----

  private rw(buf: Uint8Array, offset: bigint, iswrite: boolean): number {
    const syscall = iswrite ? 'pwrite' : 'pread';
    const st = this.requireOpen(syscall);
    // ksys_pread64 refuses a negative position before the driver sees a zero count.
    if (offset < 0n || offset >= OFFSET_LIMIT) throw sysError('EINVAL', syscall, undefined, 'negative offset');
    if (buf.byteLength === 0) return 0;
    const { index, pos } = splitOffset(offset);
    if (index >= pciRegion.VFIO_PCI_NUM_REGIONS) throw sysError('EINVAL', syscall, undefined, `no region ${index}`);
    this.enter();
    switch (index) {
      case pciRegion.VFIO_PCI_CONFIG_REGION_INDEX: {
        const n = st.config.access(buf, pos, iswrite);
        if (iswrite) this.updateMapsLive();
        return n;
      }
      case pciRegion.VFIO_PCI_ROM_REGION_INDEX:
        throw sysError('EINVAL', syscall, undefined, iswrite ? 'the ROM is read-only' : 'no option ROM');
      case pciRegion.VFIO_PCI_VGA_REGION_INDEX:
        throw sysError('EINVAL', syscall, undefined, 'not a VGA device');
      default: {
        const bar = this.bar(index);
        if (!bar) throw sysError('EINVAL', syscall, undefined, `BAR${index} is not implemented`);
        const port = {
          read: (off: number, size: MmioSize) => this.model.mmioRead(index, off, size),
          write: (off: number, size: MmioSize, v: number) => this.model.mmioWrite(index, off, size, v),
        };
        const n = barRw(bar, port, buf, pos, iswrite, () => st.config.memoryEnabled(), this.msixTable());
        this.refreshShadow(index);
        return n;
      }
    }
  }

  /**
   * What every ioctl and region access does first: resume from low power (which may
   * wake the user and bring mappings back), then apply stores made through mappings.
   */
  private enter(): void {
    this.open_?.lowPower.resume();
    this.updateMapsLive();
    this.syncMappedStores();
  }

  // ---- BAR mappings ----

  /** Replays stores users made through mappings as register writes, then refreshes. */
  private syncMappedStores(): void {
    const st = this.open_;
    if (!st || st.shadows.size === 0 || this.syncing) return;
    if (!st.mapsLive) return;
    this.syncing = true;
    try {
      for (const [index, shadow] of st.shadows) {
        for (const store of shadow.collectStores()) this.model.mmioWrite(index, store.offset, 4, store.value);
      }
    } finally {
      this.syncing = false;
    }
    this.refreshShadows();
  }

  private pollMappedStores(): void {
    try {
      this.syncMappedStores();
    } catch {
      // A model error must not escape a timer and end the process.
    }
  }

  private refreshShadow(index: number): void {
    const shadow = this.open_?.shadows.get(index);
    if (shadow && !this.syncing) shadow.refresh((off) => this.model.mmioPeek(index, off));
  }

  private refreshShadows(): void {
    for (const index of this.open_?.shadows.keys() ?? []) this.refreshShadow(index);
  }

  /**
   * Mappings reach the device only while Memory Space Enable is on and the device is
   * not in low power (the kernel zaps them: a touch would be SIGBUS). Stores made while
   * they are dead are dropped when they come back.
   */
  private updateMapsLive(): void {
    const st = this.open_;
    if (!st) return;
    const live = st.config.memoryEnabled() && !st.lowPower.engaged;
    if (live && !st.mapsLive) this.refreshShadows();
    st.mapsLive = live;
  }

  private registersChanged(bar: number): void {
    if (this.syncing) return;
    const st = this.open_;
    if (!st?.shadows.has(bar)) return;
    this.syncMappedStores();
    this.refreshShadow(bar);
  }

  private mmapSupported(index: number): boolean {
    const bar = this.bar(index);
    // A memory BAR of at least a page, or a smaller one that starts a page.
    return !!bar && bar.kind !== 'io' && (bar.size >= addon().pageSize || bar.address % BigInt(addon().pageSize) === 0n);
  }

  private bar(index: number): PciBarSpec | undefined {
    return this.model.bars.find((b) => b.index === index);
  }

  private barLength(index: number): number {
    return this.bar(index)?.size ?? 0;
  }

  // ---- interrupts ----

  private irqCounts(): IrqCounts {
    const hw = this.model.config;
    const msiPos = hw.findCapability(PCI_CAP_ID_MSI);
    const msixPos = hw.findCapability(PCI_CAP_ID_MSIX);
    return {
      intx: hw.get8(PCI_INTERRUPT_PIN) ? 1 : 0,
      msi: msiPos ? 1 << ((hw.get16(msiPos + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_QMASK) >> 1) : 0,
      msix: msixPos ? (hw.get16(msixPos + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1 : 0,
      err: this.model.express ? 1 : 0,
      req: 1,
    };
  }

  private msixTable(): MsixTableInfo | undefined {
    const hw = this.model.config;
    const pos = hw.findCapability(PCI_CAP_ID_MSIX);
    if (!pos) return undefined;
    const table = hw.get32(pos + PCI_MSIX_TABLE);
    return {
      bar: table & PCI_MSIX_TABLE_BIR,
      offset: (table & PCI_MSIX_TABLE_OFFSET) >>> 0,
      size: ((hw.get16(pos + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1) * PCI_MSIX_ENTRY_SIZE,
    };
  }

  /** The PCI core enables MSI or MSI-X in the function (address and data are the host's). */
  private enableMsi(index: 1 | 2, nvec: number): void {
    const hw = this.model.config;
    if (index === 1) {
      this.msiQmax = Math.ceil(Math.log2(nvec));
      const pos = hw.findCapability(PCI_CAP_ID_MSI);
      hw.write(pos + PCI_MSI_ADDRESS_LO, 4, 0xfee00000);
      const flags = (hw.get16(pos + PCI_MSI_FLAGS) & ~PCI_MSI_FLAGS_QSIZE) | (this.msiQmax << 4) | PCI_MSI_FLAGS_ENABLE;
      hw.write(pos + PCI_MSI_FLAGS, 2, flags);
    } else {
      const pos = hw.findCapability(PCI_CAP_ID_MSIX);
      hw.write(pos + PCI_MSIX_FLAGS, 2, hw.get16(pos + PCI_MSIX_FLAGS) | PCI_MSIX_FLAGS_ENABLE);
    }
  }

  private disableMsi(index: 1 | 2): void {
    const hw = this.model.config;
    const pos = hw.findCapability(index === 1 ? PCI_CAP_ID_MSI : PCI_CAP_ID_MSIX);
    if (!pos) return;
    const flagsAt = pos + (index === 1 ? PCI_MSI_FLAGS : PCI_MSIX_FLAGS);
    hw.write(flagsAt, 2, hw.get16(flagsAt) & ~(index === 1 ? PCI_MSI_FLAGS_ENABLE : PCI_MSIX_FLAGS_ENABLE));
  }

  /** Reacts to writes reaching the function's own config space. */
  private hwConfigWritten(offset: number, size: number): void {
    // QEMU's msi_write_config / msix_write_config: while MSI or MSI-X is enabled the
    // function may not use INTx, so the pin is deasserted.
    const hw = this.model.config;
    const msiPos = hw.findCapability(PCI_CAP_ID_MSI);
    const msixPos = hw.findCapability(PCI_CAP_ID_MSIX);
    const touches = (pos: number, reg: number): boolean => pos !== 0 && offset <= pos + reg + 1 && offset + size > pos + reg;
    if ((touches(msiPos, PCI_MSI_FLAGS) && hw.msiEnabled()) || (touches(msixPos, PCI_MSIX_FLAGS) && hw.msixEnabled())) {
      this.setIntx(false);
    }
  }

  private setIntx(level: boolean): void {
    if (level === this.intxLevel) return;
    this.intxLevel = level;
    this.model.config.setInterruptStatus(level);
    this.open_?.irqs.setIntxLevel(level);
  }

  private msiNotify(vector: number): void {
    const hw = this.model.config;
    if (!hw.msiEnabled() && !hw.msixEnabled()) return;
    this.open_?.irqs.signalMsi(vector);
  }

  // ---- bus-master DMA ----

  /**
   * DMA through the IOMMU, page by page as the IOMMU translates it: a blocked page
   * reads as zeros and drops writes (QEMU's unassigned memory behind a DMAR fault);
   * with Bus Master off, or no device fd open, nothing reaches memory at all.
   */
  private dma(iova: bigint, buf: Uint8Array, access: 'read' | 'write'): boolean {
    const ctx = this.open_?.ctx;
    if (!ctx || !this.model.config.busMaster()) {
      if (access === 'read') buf.fill(0);
      return false;
    }
    let ok = true;
    let done = 0;
    while (done < buf.byteLength) {
      const at = iova + BigInt(done);
      const pageLeft = Number(DMA_PAGE - (at % DMA_PAGE));
      const piece = buf.subarray(done, done + Math.min(pageLeft, buf.byteLength - done));
      try {
        if (access === 'read') ctx.dma.read(at, piece);
        else ctx.dma.write(at, piece);
      } catch (err) {
        // A DmaFault is the IOMMU blocking the page. Any other error from the IOMMU
        // side is treated the same: this often runs from a device's timer, where a
        // throw would end the process.
        if (!(err instanceof Error)) throw err;
        if (access === 'read') piece.fill(0);
        ok = false;
      }
      done += piece.byteLength;
    }
    return ok;
  }

  private requireOpen(syscall: string): OpenState {
    if (!this.open_) throw sysError('EBADF', syscall, undefined, `device ${this.name} is not open`);
    return this.open_;
  }
}

/** A simulated function behind vfio-pci, ready to register with the mock kernel. */
export function createVfioPciDevice(address: string, model: PciFunctionModel): VfioPciDevice {
  return new VfioPciDevice(address, model);
}
