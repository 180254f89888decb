// A VFIO device fd: its info, regions and interrupts. Opened by Group.openDevice();
// close() unmaps its regions and releases its interrupts before closing the fd.
import { inspect } from 'node:util';
import type { SysLayer } from '../sys/types.js';
import { isSysError, sysError } from '../addon/errors.js';
import { flags, pciRegion } from '../uapi/constants.js';
import { vfio_device_info, vfio_irq_info, vfio_region_info } from '../uapi/structs.js';
import type { CapRef } from '../uapi/caps.js';
import { capsOf, queryInfo } from './argsz.js';
import { closedError, vfioIoctl } from './ioctl.js';
import { Region } from './region.js';
import { Irqs, decodeIrqInfo, type IrqInfo } from './irqs.js';
import { PciConfig } from './pci-config.js';
import { hex, regionName } from './names.js';

export interface DeviceInfo {
  flags: number;
  numRegions: number;
  numIrqs: number;
  /** VFIO_DEVICE_FLAGS_PCI: a vfio-pci device (regions and irqs use the PCI indexes). */
  pci: boolean;
  /** VFIO_DEVICE_FLAGS_RESET: reset() is supported. */
  reset: boolean;
  /** Device info capabilities, undecoded. */
  caps: readonly CapRef[];
}

export class Device {
  private fdNumber: number;
  readonly info: DeviceInfo;
  /** Every region the kernel described, by index (VGA on a device without VGA is absent). */
  readonly regions: ReadonlyMap<number, Region>;
  readonly irqs: Irqs;
  /** Vendor and device id from config space, read once at open (PCI devices). */
  readonly pciId: { vendor: number; device: number } | undefined;
  private configHelper: PciConfig | undefined;

  private constructor(readonly sys: SysLayer, fd: number, readonly name: string, private readonly onClose: () => void) {
    this.fdNumber = fd;
    this.info = this.queryInfo();
    const regions = new Map<number, Region>();
    for (let index = 0; index < this.info.numRegions; index++) {
      const region = this.queryRegion(index);
      if (region) regions.set(index, region);
    }
    this.regions = regions;
    const irqInfos = new Map<number, IrqInfo>();
    for (let index = 0; index < this.info.numIrqs; index++) {
      const info = this.queryIrq(index);
      if (info) irqInfos.set(index, info);
    }
    this.irqs = new Irqs(this, irqInfos);
    this.pciId = this.readPciId();
  }

  /** Wraps a fd from VFIO_GROUP_GET_DEVICE_FD; closes it if the device cannot be described. */
  static fromFd(sys: SysLayer, fd: number, name: string, onClose: () => void = () => {}): Device {
    try {
      return new Device(sys, fd, name, onClose);
    } catch (err) {
      sys.close(fd);
      throw err;
    }
  }

  get fd(): number {
    if (this.fdNumber < 0) throw closedError(`device ${this.name}`, 'device');
    return this.fdNumber;
  }

  get closed(): boolean {
    return this.fdNumber < 0;
  }

  /**
   * A region by index; EINVAL when the device has none there. An index past
   * num_regions is asked for (and kept): a device may name one elsewhere, as the
   * kernel's mdpy does with its display plane's region 16 in QUERY_GFX_PLANE.
   */
  region(index: number): Region {
    let region = this.regions.get(index);
    if (!region && Number.isInteger(index) && index >= this.info.numRegions && index <= 0xffffffff) {
      region = this.queryRegion(index);
      if (region) (this.regions as Map<number, Region>).set(index, region);
    }
    if (!region) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_GET_REGION_INFO', `${this.name} has no ${regionName(index, this.info.pci)}`);
    return region;
  }

  /** BAR n of a PCI device (region index n). */
  bar(n: number): Region {
    if (!Number.isInteger(n) || n < 0 || n > 5) throw new RangeError(`BAR number must be 0..5, got ${n}`);
    return this.region(pciRegion.VFIO_PCI_BAR0_REGION_INDEX + n);
  }

  /** Typed access to PCI config space (the CONFIG region). */
  get config(): PciConfig {
    return (this.configHelper ??= new PciConfig(this.region(pciRegion.VFIO_PCI_CONFIG_REGION_INDEX)));
  }

  /** VFIO_DEVICE_RESET (EINVAL when the device cannot reset). */
  reset(): void {
    vfioIoctl(this.sys, this.fd, 'VFIO_DEVICE_RESET');
  }

  /** Stops interrupt listeners, unmaps regions, then closes the fd. Idempotent. */
  close(): void {
    if (this.fdNumber < 0) return;
    // Every step runs even if an earlier one throws, so nothing is left behind; the
    // first error is rethrown at the end.
    const errors: unknown[] = [];
    const step = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        errors.push(err);
      }
    };
    step(() => this.irqs.close());
    for (const region of this.regions.values()) step(() => region.close());
    const fd = this.fdNumber;
    this.fdNumber = -1;
    step(() => this.sys.close(fd));
    this.onClose();
    if (errors.length > 0) throw errors[0];
  }

  private queryInfo(): DeviceInfo {
    const buf = queryInfo(this.sys, this.fd, { name: 'VFIO_DEVICE_GET_INFO', baseSize: vfio_device_info.size });
    const i = vfio_device_info.decode(buf);
    return {
      flags: i.flags,
      numRegions: i.num_regions,
      numIrqs: i.num_irqs,
      pci: (i.flags & flags.VFIO_DEVICE_FLAGS_PCI) !== 0,
      reset: (i.flags & flags.VFIO_DEVICE_FLAGS_RESET) !== 0,
      caps: capsOf(buf, (i.flags & flags.VFIO_DEVICE_FLAGS_CAPS) !== 0, i.cap_offset),
    };
  }

  /** GET_REGION_INFO with the argsz retry; undefined for an index the device lacks (EINVAL). */
  private queryRegion(index: number): Region | undefined {
    let buf: Uint8Array;
    try {
      buf = queryInfo(this.sys, this.fd, {
        name: 'VFIO_DEVICE_GET_REGION_INFO',
        baseSize: vfio_region_info.size,
        prepare: (b) => vfio_region_info.write(b, { index }),
      });
    } catch (err) {
      if (isSysError(err, 'EINVAL')) return undefined;
      throw err;
    }
    return new Region(this, buf, regionName(index, this.info.pci));
  }

  /** GET_IRQ_INFO; undefined for an index the device lacks (EINVAL, e.g. ERR without PCIe). */
  private queryIrq(index: number): IrqInfo | undefined {
    const buf = vfio_irq_info.encode({ argsz: vfio_irq_info.size, index });
    try {
      vfioIoctl(this.sys, this.fd, 'VFIO_DEVICE_GET_IRQ_INFO', buf);
    } catch (err) {
      if (isSysError(err, 'EINVAL')) return undefined;
      throw err;
    }
    return decodeIrqInfo(buf, this.info.pci);
  }

  private readPciId(): { vendor: number; device: number } | undefined {
    const config = this.regions.get(pciRegion.VFIO_PCI_CONFIG_REGION_INDEX);
    if (!this.info.pci || !config || config.size < 4) return undefined;
    try {
      const ids = config.read32(0);
      return { vendor: ids & 0xffff, device: ids >>> 16 };
    } catch {
      return undefined; // only for display; config.read*() reports the error to whoever asks
    }
  }

  [inspect.custom](): string {
    if (this.closed) return `Device ${this.name} (closed)`;
    const id = this.pciId ? ` [${hex(this.pciId.vendor, 4).slice(2)}:${hex(this.pciId.device, 4).slice(2)}]` : '';
    const kind = this.info.pci ? '' : ` flags ${hex(this.info.flags)}`;
    const shown = [...this.regions.values()].filter((r) => r.size > 0).map((r) => r.summary());
    const irqs = this.irqs.infos.filter((i) => i.count > 0).map((i) => `${i.name} ${i.count}${this.irqs.enabled(i.index) ? ' on' : ''}`);
    return `Device ${this.name}${id}${kind}${this.info.reset ? ' resettable' : ''} ${this.info.numRegions} regions: ${shown.join(', ')}; irqs: ${irqs.join(', ') || 'none'}`;
  }
}
