// A vGPU as a complete VFIO PCI device: the mock kernel's vfio_device_ops for one vGPU,
// built from the vendor's VgpuModel. The core plays what an mdev vendor driver's
// vfio_device_ops would do in the kernel, with vfio-pci's shapes so the ordinary client
// opens it like any vfio-pci function: GET_INFO PCI|RESET with 9 regions (plus the
// model's device-specific ones, device-regions.ts) and 5 irqs, regions at index << 40,
// an emulated config space (config.ts), BARs dispatched area by area to the vendor's
// handlers or its memory (bar-dispatch.ts), the MSI-X table and PBA emulated in their
// BAR (msix-table.ts), and vfio-pci's SET_IRQS (interrupts.ts).
//
// Lifecycle: the first open of a device fd builds fresh per-open state (config space
// at power-on values, interrupts off), hands the vendor a VgpuSession (DMA through a
// PinTracker, raise, the live Bus Master bit) in model.open, then tells the registry (events.opened). The last
// close calls model.release, drops every pin the vendor still holds, turns interrupts
// off and tells the registry (events.released).
//
// Vendor failures: a vendor callback that throws a SysError passes it to the user; any
// other throw becomes EIO. Either way the device stays usable and nothing else is
// touched. A register handler that throws also sets STATUS Signaled Target Abort (the
// function could not complete the access), which software clears by writing 1.
import { addon } from '../../addon/addon.js';
import { isSysError, sysError, type SysError } from '../../addon/errors.js';
import type { DeviceContext, DeviceBackend, RegionFile } from '../../device/backend.js';
import type { IrqCounts } from '../../device/pci/irqs.js';
import { getRegionInfo, type RegionLayout } from '../../device/pci/regions.js';
import { PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE, PCI_STATUS_SIG_TARGET_ABORT } from '../../device/pci/regs.js';
import type { Mapping } from '../../sys/types.js';
import { sparseMmapCap } from '../../uapi/caps.js';
import { pciRegion } from '../../uapi/constants.js';
import { ioctls } from '../../uapi/ioctls.js';
import type { RegisterHandler, TrappedArea, VgpuBarArea, VgpuModel, VgpuSession } from '../vendor.js';
import { BarDispatch } from './bar-dispatch.js';
import { barSpecs, VgpuConfig } from './config.js';
import { deviceFeature } from './device-ioctls.js';
import { getPciDeviceInfo } from '../../device/pci/device-info.js';
import { DeviceRegions } from './device-regions.js';
import { VgpuInterrupts } from './interrupts.js';
import { MsixTable, pbaSize, MSIX_ENTRY_SIZE } from './msix-table.js';
import { PinTracker } from './pin-tracker.js';
import { validateModel } from './validate-model.js';
import { VgpuMigrationOps } from '../migration/vgpu-migration.js';

/** What the registry learns from the device: the proposal's start and shutdown. */
export interface VgpuDeviceEvents {
  opened(): void;
  released(): void;
}

/** State that exists only while a device fd is open. */
interface OpenState {
  readonly ctx: DeviceContext;
  readonly pins: PinTracker;
  readonly config: VgpuConfig;
  readonly msix: MsixTable | undefined;
  readonly interrupts: VgpuInterrupts;
  /** An Initiate FLR written to config space, carried out when the write returns. */
  flrRequested: boolean;
}

const REGION_SHIFT = 2 ** 40;
const OFFSET_LIMIT = 1n << 63n;
const CONFIG = pciRegion.VFIO_PCI_CONFIG_REGION_INDEX;
const ROM = pciRegion.VFIO_PCI_ROM_REGION_INDEX;
const VGA = pciRegion.VFIO_PCI_VGA_REGION_INDEX;
const NUM_REGIONS = pciRegion.VFIO_PCI_NUM_REGIONS;

export class VgpuDevice implements DeviceBackend {
  readonly name: string;
  /** By BAR index; undefined for BARs the model lacks (and upper halves of 64-bit BARs). */
  private readonly bars: (BarDispatch | undefined)[] = [];
  private readonly regionLayout: RegionLayout;
  /** Regions 9 and up (the model's `regions`). */
  private readonly deviceRegions: DeviceRegions;
  private readonly irqCounts: IrqCounts;
  private readonly pageSize: number;
  private st: OpenState | undefined;
  /** Pins the vendor left behind that the core dropped (at release or after a DMA-unmap notice). */
  private forced = 0;
  /** vfio_migration_ops and vfio_log_ops: present when the vendor's model can migrate. */
  readonly migration: VgpuMigrationOps | undefined;
  readonly dirtyLog: VgpuMigrationOps | undefined;

  /**
   * `identity` names the vGPU in its migration stream (a stream loads only into the same
   * vendor and type): the driver's name and the type id.
   */
  constructor(readonly uuid: string, readonly model: VgpuModel, private readonly events: VgpuDeviceEvents,
    identity?: { vendor: string; type: string }) {
    this.name = uuid;
    this.pageSize = addon().pageSize;
    validateModel(model, this.pageSize);
    if (model.migration) {
      if (!identity) throw new TypeError('a vGPU model that migrates needs its vendor and type to name its stream');
      this.migration = this.dirtyLog = new VgpuMigrationOps(model.migration, identity, {
        pageSize: this.pageSize,
        dirtyTarget: () => this.st?.pins,
        coreSections: () => (this.st ? [{ name: 'core.config', data: this.st.config.saveState() }] : []),
        prepareCoreSections: (sections) => this.prepareCoreSections(sections),
      });
    }
    const { pci } = model;
    for (const bar of model.bars) {
      const areas: VgpuBarArea[] = [...bar.areas];
      if (pci.msix && pci.msix.bar === bar.index) areas.push(...this.msixAreas(pci.msix));
      this.bars[bar.index] = new BarDispatch(bar, areas);
    }
    this.deviceRegions = new DeviceRegions(model.regions ?? []);
    this.irqCounts = {
      intx: pci.interruptPin ? 1 : 0,
      msi: pci.msiVectors,
      msix: pci.msix?.vectors ?? 0,
      err: pci.express ? 1 : 0,
      req: 1,
    };
    this.regionLayout = {
      bars: barSpecs(model.bars),
      configSize: pci.express ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE,
      mmapSupported: (index) => (this.bars[index]?.mappedAreas.length ?? 0) > 0,
      msix: undefined,
      barCaps: (index) => this.sparseCaps(index),
    };
  }

  /** Whether a device fd is open (between the proposal's start and shutdown). */
  get isOpen(): boolean {
    return this.st !== undefined;
  }

  /** Pins the vendor left behind that the core had to drop. */
  get forcedUnpins(): number {
    return this.forced;
  }

  /** Asks the user to release the device through the REQ interrupt; false when nobody listens. */
  requestRelease(): boolean {
    return this.st?.interrupts.irqs.requestRelease() ?? false;
  }

  // ---- vfio_device_ops ----

  open(ctx: DeviceContext): void {
    // A host calls open once for its first user; a second call comes from another host
    // (the mdev bus while a vfio-user client holds it, or the reverse): one user at a time.
    if (this.st) throw sysError('EBUSY', 'open', undefined, `vGPU ${this.name} is in use by another user`);
    const { pci } = this.model;
    const pins = new PinTracker(ctx.dma, this.pageSize);
    const msix = pci.msix ? new MsixTable(pci.msix) : undefined;
    let interrupts: VgpuInterrupts | undefined;
    const config = new VgpuConfig(pci, this.model.bars, {
      intxDisable: (disabled) => interrupts?.setIntxDisabled(disabled),
      irqType: () => interrupts?.irqs.type ?? 'none',
      msiQmax: () => interrupts?.msiQmax ?? 0,
      masksChanged: () => interrupts?.masksChanged(),
      flr: () => { st.flrRequested = true; },
    });
    interrupts = new VgpuInterrupts(this.irqCounts, ctx.eventfds, config, msix);
    const st: OpenState = { ctx, pins, config, msix, interrupts, flrRequested: false };
    const live = interrupts;
    const isCurrent = (): boolean => this.st === st;
    const session: VgpuSession = {
      dma: pins,
      raise: (vector) => {
        if (isCurrent()) live.raise(vector);
      },
      get busMaster() {
        return isCurrent() && config.busMaster();
      },
    };
    this.st = st;
    try {
      this.model.open(session);
    } catch (err) {
      this.teardown(st);
      throw vendorError(err, 'open', 'the vendor failed to open the vGPU');
    }
    try {
      this.events.opened();
    } catch (err) {
      // The open fails as a whole: the vendor sees a release, the registry nothing.
      this.release(st);
      throw err;
    }
  }

  close(): void {
    const st = this.st;
    if (!st) return;
    this.release(st);
    this.migration?.closed();
    this.events.released();
  }

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    const st = this.requireOpen('ioctl');
    const buffer = (operation: string): Uint8Array => {
      if (!(arg instanceof Uint8Array)) throw sysError('EFAULT', 'ioctl', operation, 'the argument must be a buffer');
      return arg;
    };
    switch (request) {
      case ioctls.VFIO_DEVICE_GET_INFO:
        return getPciDeviceInfo(buffer('VFIO_DEVICE_GET_INFO'), { resettable: true, numRegions: this.deviceRegions.numRegions });
      case ioctls.VFIO_DEVICE_GET_REGION_INFO: {
        const buf = buffer('VFIO_DEVICE_GET_REGION_INFO');
        if (this.deviceRegions.claims(buf)) return this.deviceRegions.getInfo(buf);
        return getRegionInfo(buf, this.regionLayout);
      }
      case ioctls.VFIO_DEVICE_GET_IRQ_INFO:
        return st.interrupts.irqs.getIrqInfo(buffer('VFIO_DEVICE_GET_IRQ_INFO'));
      case ioctls.VFIO_DEVICE_SET_IRQS:
        return st.interrupts.irqs.setIrqs(buffer('VFIO_DEVICE_SET_IRQS'));
      case ioctls.VFIO_DEVICE_RESET:
        this.resetFunction(st, 'VFIO_DEVICE_RESET');
        return 0;
      case ioctls.VFIO_DEVICE_FEATURE:
        // The host ran the core's features (device/migration/feature.ts); what is left
        // would go to a device_feature op, which a vGPU does not have.
        return deviceFeature(buffer('VFIO_DEVICE_FEATURE'));
      default: {
        if (!this.model.ioctl) throw sysError('ENOTTY', 'ioctl', undefined, `device ioctl 0x${request.toString(16)}`);
        try {
          return this.model.ioctl(request, arg);
        } catch (err) {
          throw vendorError(err, 'ioctl', `the vendor failed ioctl 0x${request.toString(16)}`);
        }
      }
    }
  }

  read(buf: Uint8Array, offset: bigint): number {
    return this.rw(buf, offset, false);
  }

  write(buf: Uint8Array, offset: bigint): number {
    return this.rw(buf, offset, true);
  }

  mmap(offset: bigint, length: number, prot: number): Mapping {
    this.requireOpen('mmap');
    const page = this.pageSize;
    if (!Number.isSafeInteger(length) || length <= 0 || offset < 0n || offset % BigInt(page) !== 0n || offset >= OFFSET_LIMIT) {
      throw sysError('EINVAL', 'mmap', undefined, 'length must be positive and offset page-aligned');
    }
    const off = Number(offset);
    const index = Math.floor(off / REGION_SHIFT);
    const pos = off - index * REGION_SHIFT;
    if (index >= NUM_REGIONS) throw sysError('EINVAL', 'mmap', undefined, `no region ${index}`);
    if (index >= ROM) throw sysError('EINVAL', 'mmap', undefined, 'ROM, config and VGA cannot be mapped');
    const bar = this.bars[index];
    if (!bar) throw sysError('EINVAL', 'mmap', undefined, `BAR${index} is not implemented`);
    try {
      return bar.mmap(pos, length, prot, page);
    } catch (err) {
      throw vendorError(err, 'mmap', `the vendor failed to map BAR${index}`);
    }
  }

  /**
   * A BAR's mapped areas whose memory has a file (DeviceBackend.regionFile): the areas
   * sharing one fd and one base (file offset minus area offset, non-negative and page
   * aligned); when areas disagree, the group covering the most bytes is listed.
   */
  regionFile(index: number): RegionFile | undefined {
    const bar = index < ROM ? this.bars[index] : undefined;
    if (!bar) return undefined;
    const groups = new Map<string, { fd: number; offset: bigint; areas: { offset: bigint; size: bigint }[]; bytes: number }>();
    for (const area of bar.mappedAreas) {
      const file = area.memory.file;
      if (!file || file.offset % this.pageSize !== 0) continue;
      const base = BigInt(file.offset) - BigInt(area.offset);
      if (base < 0n) continue;
      const key = `${file.fd}:${base}`;
      const group = groups.get(key) ?? { fd: file.fd, offset: base, areas: [], bytes: 0 };
      group.areas.push({ offset: BigInt(area.offset), size: BigInt(area.size) });
      group.bytes += area.size;
      groups.set(key, group);
    }
    let best: { fd: number; offset: bigint; areas: { offset: bigint; size: bigint }[]; bytes: number } | undefined;
    for (const g of groups.values()) if (!best || g.bytes > best.bytes) best = g;
    return best && { fd: best.fd, offset: best.offset, areas: best.areas };
  }

  dmaUnmap(iova: bigint, length: bigint): void {
    const st = this.st;
    if (!st) return;
    let failure: unknown;
    try {
      this.model.dmaUnmap(iova, length);
    } catch (err) {
      failure = err;
    }
    // Never a dangling pin: whatever the vendor kept in the range goes now.
    this.forced += st.pins.dropRange(iova, length);
    if (failure !== undefined) throw vendorError(failure, 'dma_unmap', 'the vendor failed the DMA-unmap notice');
  }

  /** The vendor's release (which cannot fail the close), then the core's own teardown. */
  private release(st: OpenState): void {
    try {
      this.model.release();
    } catch {
      // Whatever the vendor left behind is cleaned up by the teardown.
    }
    this.teardown(st);
  }

  /** Drops the vendor's leftover pins, turns interrupts off and forgets the open state. */
  private teardown(st: OpenState): void {
    this.forced += st.pins.close();
    st.interrupts.irqs.release();
    this.st = undefined;
  }

  // ---- regions ----

  private rw(buf: Uint8Array, offset: bigint, iswrite: boolean): number {
    const syscall = iswrite ? 'pwrite' : 'pread';
    const st = this.requireOpen(syscall);
    // ksys_pread64 refuses a negative position before the driver sees a zero count.
    if (offset < 0n || offset >= OFFSET_LIMIT) throw sysError('EINVAL', syscall, undefined, 'negative offset');
    if (buf.byteLength === 0) return 0;
    const off = Number(offset);
    const index = Math.floor(off / REGION_SHIFT);
    const pos = off - index * REGION_SHIFT;
    if (index < ROM) {
      const bar = this.bars[index];
      if (!bar) throw sysError('EINVAL', syscall, undefined, `BAR${index} is not implemented`);
      if (pos >= bar.size) throw sysError('EINVAL', syscall, undefined, `offset 0x${pos.toString(16)} is past BAR${index}`);
      if (!bar.isIo && !st.config.memoryEnabled()) throw sysError('EIO', syscall, undefined, 'memory space is disabled in COMMAND');
      try {
        return bar.rw(buf, pos, iswrite);
      } catch (err) {
        if (isSysError(err)) throw err;
        st.config.setStatusBits(PCI_STATUS_SIG_TARGET_ABORT);
        throw vendorError(err, syscall, `the vendor failed an access to BAR${index}+0x${pos.toString(16)}`);
      }
    }
    if (index === CONFIG) {
      const n = st.config.access(buf, pos, iswrite);
      if (st.flrRequested) {
        st.flrRequested = false;
        this.resetFunction(st, syscall);
      }
      return n;
    }
    if (index === ROM) throw sysError('EINVAL', syscall, undefined, iswrite ? 'the ROM is read-only' : 'no option ROM');
    if (index === VGA) throw sysError('EINVAL', syscall, undefined, 'not a VGA device');
    if (this.deviceRegions.region(index)) {
      try {
        return this.deviceRegions.rw(index, buf, pos, iswrite);
      } catch (err) {
        throw vendorError(err, syscall, `the vendor failed an access to region ${index}+0x${pos.toString(16)}`);
      }
    }
    throw sysError('EINVAL', syscall, undefined, `no region ${index}`);
  }

  /** The SPARSE_MMAP capability of a BAR whose mapped areas do not cover all of it. */
  private sparseCaps(index: number): Uint8Array[] {
    const bar = this.bars[index];
    if (!bar || bar.mappedAreas.length === 0) return [];
    const areas = bar.mappedAreas;
    if (areas.length === 1 && areas[0]!.offset === 0 && areas[0]!.size === bar.size) return [];
    return [sparseMmapCap(areas.map((a) => ({ offset: BigInt(a.offset), size: BigInt(a.size) })))];
  }

  /** The MSI-X table and PBA as trapped areas answered by the open device's MsixTable. */
  private msixAreas(msix: NonNullable<VgpuModel['pci']['msix']>): TrappedArea[] {
    const table: RegisterHandler = {
      read: (offset, size) => this.st!.msix!.table.read(offset, size),
      write: (offset, size, value) => this.st!.msix!.table.write(offset, size, value),
    };
    const pba: RegisterHandler = {
      read: (offset, size) => this.st!.msix!.pba.read(offset, size),
      write: () => {}, // the PBA is read-only
    };
    return [
      { kind: 'trapped', offset: msix.tableOffset, size: msix.vectors * MSIX_ENTRY_SIZE, handler: table },
      { kind: 'trapped', offset: msix.pbaOffset, size: pbaSize(msix.vectors), handler: pba },
    ];
  }

  // ---- reset ----

  /**
   * VFIO_DEVICE_RESET and an FLR written to config space: the core's own state first
   * (INTx, MSI and MSI-X disabled, nothing pending; the config header is left as the
   * user programmed it, as the PCI core's save and restore around a reset leaves it),
   * then the vendor's model.reset().
   */
  private resetFunction(st: OpenState, syscall: string): void {
    st.interrupts.reset();
    // As mtty's deferred reset: every migration session ends and the state is RUNNING again.
    try {
      this.migration?.reset();
    } catch (err) {
      throw vendorError(err, syscall, 'the vendor failed to resume the vGPU at reset');
    }
    try {
      this.model.reset();
    } catch (err) {
      throw vendorError(err, syscall, 'the vendor failed to reset the vGPU');
    }
  }

  /** The core's sections of a migration stream: checked now (EINVAL), loaded by the function returned. */
  private prepareCoreSections(sections: ReadonlyMap<string, Uint8Array>): () => void {
    const st = this.requireOpen('ioctl');
    const op = 'VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE';
    for (const name of sections.keys()) {
      if (name !== 'core.config') throw sysError('EINVAL', 'ioctl', op, `migration stream refused: unknown core section ${name}`);
    }
    const config = sections.get('core.config');
    if (!config) throw sysError('EINVAL', 'ioctl', op, 'migration stream refused: no core.config section');
    try {
      return st.config.prepareLoad(config);
    } catch (err) {
      throw sysError('EINVAL', 'ioctl', op, `migration stream refused: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private requireOpen(syscall: string): OpenState {
    if (!this.st) throw sysError('EBADF', syscall, undefined, `vGPU ${this.name} is not open`);
    return this.st;
  }
}

/** A vendor's SysError passes through; anything else it throws is EIO. */
function vendorError(err: unknown, syscall: string, detail: string): SysError {
  if (isSysError(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return sysError('EIO', syscall, undefined, `${detail}: ${reason}`);
}
