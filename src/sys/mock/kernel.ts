// The mock kernel: the fd table, the process's memory and locked-memory count, the
// eventfds, the IOMMU groups with their devices, /dev/vfio and a mock /sys. Devices
// and buses register here (vfio_register_group_dev); the kernel never imports them.
import { posix } from 'node:path';
import { sysError } from '../../addon/errors.js';
import type { Mapping } from '../types.js';
import { AddressSpace } from './address-space.js';
import { ContainerFile, MockContainer } from './container.js';
import type { DeviceBackend } from '../../device/backend.js';
import { IommuDmaSpace } from './dma-space.js';
import { EventfdRegistry } from './eventfd.js';
import { FdTable } from './fd-table.js';
import { MockGroup, type DeviceNode, type DeviceSession, type GroupHost } from './group.js';
import { LockedMemory } from './locked-memory.js';
import { resolveKernelOptions, type MockKernelOptions, type ResolvedKernelOptions } from './options.js';
import { MockSysfs } from './sysfs.js';
import type { Type1Context } from './type1.js';
import type { MockPciDevice } from './pci/model.js';

export interface RegisterDeviceOptions {
  /** The IOMMU group number; default: the lowest unused one. */
  group?: number;
  /** False for a group with no IOMMU behind it (mdev-style); default true. */
  iommuBacked?: boolean;
  /** The device's sysfs directory (absolute); default /sys/devices/virtual/mock/<name>. */
  sysfsPath?: string;
}

interface Registration {
  readonly device: DeviceBackend;
  readonly group: MockGroup;
  /** Sysfs entries made for it, removed on unregister (deepest last made, first removed). */
  readonly sysfsEntries: string[];
}

const VFIO_DEV = '/dev/vfio';
const IOMMU_GROUPS = '/sys/kernel/iommu_groups';
const PCI_DEVICES = '/sys/bus/pci/devices';
const VFIO_PCI_DRIVER = '/sys/bus/pci/drivers/vfio-pci';
const TYPE1_PARAMS = '/sys/module/vfio_iommu_type1/parameters';

export class MockKernel {
  readonly options: ResolvedKernelOptions;
  readonly fds = new FdTable();
  readonly mm = new AddressSpace();
  readonly locked: LockedMemory;
  readonly eventfds: EventfdRegistry;
  readonly sysfs = new MockSysfs();
  /** By number; a freed number keeps its key (undefined): see freeGroupNumber. */
  private readonly groups = new Map<number, MockGroup | undefined>();
  private readonly registrations = new Map<string, Registration>();
  /** vfio_iommu_type1's dma_entry_limit parameter: read by each new IOMMU. */
  private dmaEntryLimit: number;
  private readonly groupHost: GroupHost;
  /** Every group number below it is taken: the lowest free one is found without a scan from 0. */
  private groupSearchFrom = 0;

  constructor(options: MockKernelOptions = {}) {
    this.options = resolveKernelOptions(options);
    this.locked = new LockedMemory(this.options.memlockLimit, this.options.capIpcLock, this.options.pageSize);
    this.eventfds = new EventfdRegistry(this.fds);
    this.dmaEntryLimit = this.options.dmaEntryLimit;
    this.groupHost = {
      fds: this.fds,
      mm: this.mm,
      flavour: this.options.kernel,
      dirtyReports: this.options.dirtyReports,
      pageSize: this.options.pageSize,
      openSession: (node) => this.openSession(node),
      registerDeviceMapping: (mapping, prot) => this.registerDeviceMapping(mapping, prot),
    };
    this.buildSysfs();
  }

  get flavour(): ResolvedKernelOptions['kernel'] {
    return this.options.kernel;
  }

  // ---- registration ----

  /** A simulated PCI function bound to vfio-pci, with its sysfs nodes. Returns its group number. */
  registerPciDevice(device: MockPciDevice, options: { group?: number } = {}): number {
    const address = parsePciAddress(device.name);
    const dir = `/sys/devices/pci${address.domain}:${address.bus}/${device.name}`;
    const group = this.registerDevice(device, { ...options, iommuBacked: true, sysfsPath: dir });
    device.useFlavour?.(this.options.kernel);
    const reg = this.registrations.get(device.name)!;
    const hex = (width: number) => (value: number) => () => `0x${value.toString(16).padStart(width, '0')}\n`;
    const id = device.pci;
    const attrs: [string, () => string][] = [
      ['vendor', hex(4)(id.vendor)], ['device', hex(4)(id.device)],
      ['subsystem_vendor', hex(4)(id.subsystemVendor)], ['subsystem_device', hex(4)(id.subsystemDevice)],
      ['class', hex(6)(id.classCode)], ['revision', hex(2)(id.revision)],
    ];
    for (const [name, show] of attrs) this.sysfs.addAttribute(`${dir}/${name}`, { show });
    this.sysfs.addRelativeLink(`${dir}/driver`, VFIO_PCI_DRIVER);
    this.sysfs.addRelativeLink(`${PCI_DEVICES}/${device.name}`, dir);
    this.sysfs.addRelativeLink(`${VFIO_PCI_DRIVER}/${device.name}`, dir);
    reg.sysfsEntries.push(`${PCI_DEVICES}/${device.name}`, `${VFIO_PCI_DRIVER}/${device.name}`);
    return group;
  }

  /** Any device behind a VFIO device fd (a vGPU later). Returns its group number. */
  registerDevice(device: DeviceBackend, options: RegisterDeviceOptions = {}): number {
    const name = device.name;
    if (typeof name !== 'string' || name === '' || name.includes('\0') || name.includes('/')) {
      throw new TypeError(`a device needs a name usable as a path component, got ${JSON.stringify(name)}`);
    }
    if (this.registrations.has(name)) throw sysError('EEXIST', 'register', undefined, `device ${name} is already registered`);
    const iommuBacked = options.iommuBacked ?? true;
    let group = options.group === undefined ? undefined : this.groups.get(options.group);
    if (options.group !== undefined && (!Number.isInteger(options.group) || options.group < 0)) {
      throw new TypeError(`group must be a non-negative integer, got ${options.group}`);
    }
    if (group && group.iommuBacked !== iommuBacked) {
      throw new TypeError(`group ${group.id} is ${group.iommuBacked ? '' : 'not '}IOMMU-backed`);
    }
    if (!group) {
      const id = options.group ?? this.freeGroupNumber();
      group = new MockGroup(id, iommuBacked, this.groupHost);
      this.groups.set(id, group);
      this.sysfs.mkdir(`${IOMMU_GROUPS}/${id}/devices`);
      const reserved = iommuBacked ? this.options.platform.reserved : [];
      this.sysfs.addAttribute(`${IOMMU_GROUPS}/${id}/reserved_regions`, {
        show: () => reserved.map((r) => `0x${hex16(r.start)} 0x${hex16(r.end)} msi\n`).join(''),
      });
    }
    group.addDevice(device);
    const reg: Registration = { device, group, sysfsEntries: [] };
    this.registrations.set(name, reg);
    const dir = options.sysfsPath ?? `/sys/devices/virtual/mock/${name}`;
    this.sysfs.mkdir(dir);
    this.sysfs.addRelativeLink(`${dir}/iommu_group`, `${IOMMU_GROUPS}/${group.id}`);
    this.sysfs.addRelativeLink(`${IOMMU_GROUPS}/${group.id}/devices/${name}`, dir);
    reg.sysfsEntries.push(`${IOMMU_GROUPS}/${group.id}/devices/${name}`, dir);
    return group.id;
  }

  /** Hot unplug. For now refused (EBUSY) while the device's fds, or its group's, are open. */
  unregisterDevice(name: string): void {
    const reg = this.registrations.get(name);
    if (!reg) throw sysError('ENODEV', 'unregister', undefined, `no device ${name}`);
    const node = reg.group.devices.get(name)!;
    if (node.openCount > 0) throw sysError('EBUSY', 'unregister', undefined, `device ${name} is open`);
    if (reg.group.devices.size === 1 && reg.group.opened) throw sysError('EBUSY', 'unregister', undefined, `group ${reg.group.id} is open`);
    for (const path of [...reg.sysfsEntries].reverse()) this.sysfs.remove(path);
    reg.group.devices.delete(name);
    this.registrations.delete(name);
    if (reg.group.devices.size === 0) {
      this.groups.set(reg.group.id, undefined);
      if (reg.group.id < this.groupSearchFrom) this.groupSearchFrom = reg.group.id;
      this.sysfs.remove(`${IOMMU_GROUPS}/${reg.group.id}`);
    }
  }

  /** Registered device names. */
  deviceNames(): string[] {
    return [...this.registrations.keys()].sort();
  }

  groupOf(name: string): number | undefined {
    return this.registrations.get(name)?.group.id;
  }

  // ---- files ----

  /** open(2) of a path under /dev/vfio; ENOENT for what does not exist there. */
  openVfio(path: string): number {
    const normal = posix.normalize(path);
    if (normal === VFIO_DEV || normal === `${VFIO_DEV}/`) throw sysError('EISDIR', 'open', undefined, path);
    const rest = normal.startsWith(`${VFIO_DEV}/`) ? normal.slice(VFIO_DEV.length + 1) : undefined;
    if (rest === 'vfio') {
      return this.fds.install(new ContainerFile(new MockContainer(() => this.type1Context())));
    }
    const group = rest !== undefined && /^(0|[1-9][0-9]*)$/.test(rest) ? this.groups.get(Number(rest)) : undefined;
    if (!group) throw sysError('ENOENT', 'open', undefined, path);
    return this.fds.installWith(() => group.open());
  }

  /** Whether a path is the mock's to answer (everything else is opened for real). */
  ownsPath(path: string): boolean {
    const normal = posix.normalize(path);
    return normal === VFIO_DEV || normal.startsWith(`${VFIO_DEV}/`);
  }

  /** Remembers a Mapping a device fd's mmap returned (device memory: not counted when pinned). */
  registerDeviceMapping(mapping: Mapping, prot: number): void {
    this.mm.add(mapping, prot, false);
  }

  private type1Context(): Type1Context {
    return {
      mm: this.mm,
      locked: this.locked,
      pageSize: this.options.pageSize,
      flavour: this.options.kernel,
      dmaEntryLimit: this.dmaEntryLimit,
      platform: this.options.platform,
    };
  }

  /** A device's first open: its DmaSpace, and its place on the IOMMU's list of devices to notify. */
  private openSession(node: DeviceNode): DeviceSession {
    const group = node.group;
    const iommu = group.container?.iommu;
    const dma = new IommuDmaSpace(() => group.container?.iommu, this.mm, node, this.options.pageSize);
    iommu?.registerDevice(node);
    return {
      ctx: { dma, eventfds: this.eventfds },
      end: () => {
        dma.close();
        iommu?.unregisterDevice(node);
      },
    };
  }

  // The lowest free number, as the kernel's ida gives. Freed numbers are not deleted
  // from the Map: V8 slows down on a key deleted and re-added over and over.
  private freeGroupNumber(): number {
    let id = this.groupSearchFrom;
    while (this.groups.get(id) !== undefined) id++;
    this.groupSearchFrom = id;
    return id;
  }

  private buildSysfs(): void {
    this.sysfs.mkdir(IOMMU_GROUPS);
    this.sysfs.mkdir(PCI_DEVICES);
    this.sysfs.mkdir(VFIO_PCI_DRIVER);
    this.sysfs.addAttribute(`${TYPE1_PARAMS}/dma_entry_limit`, {
      mode: 0o644,
      show: () => `${this.dmaEntryLimit}\n`,
      store: (value) => {
        const text = value.trim();
        if (!/^[0-9]+$/.test(text) || Number(text) > 0xffff_ffff) throw sysError('EINVAL', 'write', undefined, `dma_entry_limit ${value}`);
        this.dmaEntryLimit = Number(text);
      },
    });
  }
}

function hex16(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

/** "DDDD:BB:DD.F" → its parts, as strings the way sysfs spells them. */
export function parsePciAddress(name: string): { domain: string; bus: string; device: string; fn: string } {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/.exec(name);
  if (!m) throw new TypeError(`not a PCI address (DDDD:BB:DD.F, lower-case hex): ${JSON.stringify(name)}`);
  return { domain: m[1]!, bus: m[2]!, device: m[3]!, fn: m[4]! };
}
