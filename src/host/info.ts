// `vgpu info UUID|BDF|SOCKET`: what can honestly be read about one device: its VFIO
// regions and interrupts, its config space decoded the way `lspci -vv` shows it, and the
// DMA mappings of the container it is in. A device served over vfio-user is read the
// same way through the vfio-user client (describeVfioUser).
//
// A device nobody holds is opened through the ordinary VFIO client (container, group,
// device), read, and closed again. A device in use cannot be opened a second time (its
// group is busy: EBUSY), so then the report says so and shows what is known without
// it: for one of our vGPUs the vendor's model (BARs, interrupts, PCI identity); on the
// mock kernel, the live DMA mappings of the user's container, which the kernel knows.
// Config space is not shown for a device in use: reading it would need the user's fd.
import { isSysError } from '../addon/errors.js';
import type { MockSysLayer } from '../sys/mock.js';
import { DeviceFile } from '../sys/mock/device-file.js';
import type { DmaMapping } from '../sys/mock/dma-store.js';
import { GroupFile, type MockGroup } from '../sys/mock/group.js';
import type { SysLayer } from '../sys/types.js';
import {
  formatSize, openPciDevice, openVfioUserDevice, type Device, type OpenVfioUserOptions, type PciDeviceHandle, type Region,
  type VfioUserDeviceHandle,
} from '../vfio/index.js';
import type { Vgpu } from '../vgpu/registry.js';
import type { DeviceReport } from './api.js';
import type { Host } from './host.js';
import { hostError } from './host.js';
import { isUuid } from './names.js';
import { decodeConfig, pciClassName } from './lspci.js';

const BDF = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])$/;

/** "0000:00:04.0" for "00:04.0" or "0000:00:04.0" (lower case), or undefined. */
export function parseBdf(text: string): string | undefined {
  const m = BDF.exec(text);
  if (!m) return undefined;
  return `${(m[1] ?? '0000').toLowerCase()}:${m[2]!.toLowerCase()}:${m[3]!.toLowerCase()}.${m[4]}`;
}

/** The report for a vGPU or kernel mdev (by UUID) or a PCI function bound to vfio-pci (by address). */
export function describeTarget(host: Host, target: string): DeviceReport {
  if (typeof target !== 'string' || target === '') throw hostError('EINVAL', 'info needs a UUID or a PCI address (like 0000:00:04.0)');
  if (isUuid(target)) return describeMdev(host, target.toLowerCase());
  const bdf = parseBdf(target);
  if (bdf === undefined) throw hostError('EINVAL', `not a UUID or a PCI address: ${JSON.stringify(target)}`);
  return describePci(host.sys, bdf);
}

function describeMdev(host: Host, uuid: string): DeviceReport {
  const live = host.liveDevice(uuid);
  if (!live) throw hostError('ENODEV', `device ${uuid} is not running`);
  const lines = [`${uuid}: ${live.type} on ${live.parent}, IOMMU group ${live.group < 0 ? 'none' : live.group}`];
  if (live.vfioUser) lines.push(`  vfio-user socket ${live.vfioUser.socket}${live.vfioUser.attached ? ' (a client is attached)' : ''}`);
  const vgpu = host.registry.get(uuid);
  if (vgpu && !host.mdevBus) {
    // A simulated parent on a real kernel: no bus serves it here yet.
    lines.push('  not reachable through VFIO in this process (no mdev bus): the model only');
    lines.push(...modelLines(vgpu));
    return { name: uuid, lines };
  }
  lines.push(...liveLines(host.sys, uuid, live.group, vgpu ? modelLines(vgpu) : []));
  return { name: uuid, lines };
}

/**
 * A device nobody holds is opened, read through VFIO and closed again; one in use
 * cannot be opened twice, so the report says why and shows what is known without it
 * (`fallback`, then the live DMA mappings of its user's container).
 */
function liveLines(sys: SysLayer, name: string, group: number, fallback: readonly string[]): string[] {
  const opened = tryOpen(sys, name);
  if (opened.handle) {
    try {
      return [...deviceLines(opened.handle.device), 'DMA mappings: none (nobody has the device open)'];
    } finally {
      opened.handle.close();
    }
  }
  return [`  ${opened.reason}`, ...fallback, ...dmaLines(sys, group)];
}

function describePci(sys: SysLayer, bdf: string): DeviceReport {
  const dir = `/sys/bus/pci/devices/${bdf}`;
  if (!sys.sysfs.exists(dir)) throw hostError('ENODEV', `no PCI device ${bdf}`);
  const attr = (name: string): number | undefined => {
    try {
      return Number.parseInt(sys.sysfs.read(`${dir}/${name}`), 16);
    } catch {
      return undefined;
    }
  };
  let group = -1;
  try {
    group = Number(sys.sysfs.readlink(`${dir}/iommu_group`).split('/').pop());
  } catch {
    // Not in an IOMMU group: VFIO cannot open it.
  }
  const vendor = attr('vendor');
  const device = attr('device');
  const cls = attr('class');
  const id = vendor !== undefined && device !== undefined ? ` ${hex4(vendor)}:${hex4(device)}` : '';
  const lines = [`${bdf}:${id}${cls !== undefined ? ` ${pciClassName(cls)}` : ''}, IOMMU group ${group < 0 ? 'none' : group}`];
  lines.push(...liveLines(sys, bdf, group, []));
  return { name: bdf, lines };
}

/** Opens a device for reading, or says why it cannot be (EBUSY: someone holds its group). */
function tryOpen(sys: SysLayer, name: string): { handle?: PciDeviceHandle; reason?: string } {
  try {
    return { handle: openPciDevice(sys, name) };
  } catch (err) {
    if (isSysError(err, 'EBUSY')) return { reason: 'in use: its IOMMU group is open by another user (EBUSY); config space is not read while another user holds the device' };
    if (isSysError(err)) return { reason: `not opened here (${err.code}: ${err.message}): regions and config space unknown` };
    throw err;
  }
}

/**
 * The report for a device served over vfio-user at `socketPath`: connected to, read
 * through the client as a VFIO device is, and disconnected again. Call it in the
 * client's process, never in the server's: the client blocks while it waits.
 */
export function describeVfioUser(socketPath: string, options: OpenVfioUserOptions = {}): DeviceReport {
  let handle: VfioUserDeviceHandle;
  try {
    handle = openVfioUserDevice(socketPath, options);
  } catch (err) {
    if (isSysError(err, 'ENOENT')) throw hostError('ENOENT', `no vfio-user socket at ${socketPath}`, err);
    if (isSysError(err, 'ECONNREFUSED')) throw hostError('ECONNREFUSED', `nobody serves ${socketPath}`, err);
    if (isSysError(err, 'EBUSY')) throw hostError('EBUSY', `${socketPath}: the device is in use by another client`, err);
    throw err;
  }
  try {
    const n = handle.connection.negotiated;
    const lines = [`${socketPath}: vfio-user ${n.major}.${n.minor}, up to ${formatSize(n.xferSize)} a transfer, ` +
      `DMA pages ${formatSize(n.dmaPageSize)}, ${n.maxDmaMaps} DMA mappings, ${n.sendFds} fds a message`];
    const where = (region: Region): string => {
      const source = handle.sys.serverRegion(region.index);
      return source ? ` (server offset 0x${source.offset.toString(16)}${source.fd ? ', fd' : ''})` : '';
    };
    lines.push(...deviceLines(handle.device, where), 'DMA mappings: none (this client mapped none)');
    return { name: socketPath, lines };
  } finally {
    handle.close();
  }
}

/** Regions, interrupts and config space, through an open device; `where` adds to a region's line. */
function deviceLines(device: Device, where: (region: Region) => string = () => ''): string[] {
  const lines: string[] = [];
  const flags = [device.info.pci ? 'PCI' : undefined, device.info.reset ? 'RESET' : undefined].filter(Boolean).join('|');
  lines.push(`VFIO device: ${flags || 'no flags'}, ${device.info.numRegions} regions, ${device.info.numIrqs} interrupt indexes`);
  lines.push('Regions:');
  for (const region of device.regions.values()) {
    if (region.size === 0) continue;
    lines.push(`  ${region.summary()} at offset 0x${region.offset.toString(16)}${where(region)}`);
    for (const area of region.sparseAreas ?? []) lines.push(`    mmap area 0x${area.offset.toString(16)} ${formatSize(area.size)}`);
  }
  lines.push('Interrupts:');
  for (const irq of device.irqs.infos) {
    const flags = [irq.eventfd && 'eventfd', irq.maskable && 'maskable', irq.automasked && 'automasked', irq.noresize && 'noresize'].filter(Boolean).join(' ');
    lines.push(`  ${irq.name}: ${irq.count} vector${irq.count === 1 ? '' : 's'}${flags ? ` (${flags})` : ''}`);
  }
  if (device.info.pci && device.regions.has(7)) {
    lines.push('Config space:');
    const barSizes = [0, 1, 2, 3, 4, 5].map((n) => device.regions.get(n)?.size ?? 0);
    lines.push(...decodeConfig(device.config, barSizes).map((l) => `  ${l}`));
  }
  return lines;
}

/** What the vendor's model says, for a vGPU that cannot be opened here. */
function modelLines(vgpu: Vgpu): string[] {
  const { pci, bars } = vgpu.model;
  const id = pci.identity;
  const lines = [`Model: ${hex4(id.vendor)}:${hex4(id.device)} ${pciClassName(id.classCode)} (rev ${id.revision.toString(16).padStart(2, '0')}), subsystem ${hex4(id.subsystemVendor)}:${hex4(id.subsystemDevice)}`];
  for (const bar of bars) lines.push(`  BAR${bar.index} ${formatSize(bar.size)} ${bar.kind}${bar.prefetchable ? ' prefetchable' : ''}, ${bar.areas.map((a) => `${a.kind} ${formatSize(a.size)} at 0x${a.offset.toString(16)}`).join(', ')}`);
  const irqs = [pci.interruptPin ? 'INTx' : undefined, pci.msiVectors ? `MSI ${pci.msiVectors}` : undefined, pci.msix ? `MSI-X ${pci.msix.vectors}` : undefined].filter(Boolean);
  lines.push(`  interrupts: ${irqs.length > 0 ? irqs.join(', ') : 'none'}`);
  return lines;
}

/** The mappings of the container a group is in, as the mock kernel knows them. */
function dmaLines(sys: SysLayer, group: number): string[] {
  if (sys.kind !== 'mock') return ['DMA mappings: only the kernel knows them (not shown on a real host)'];
  const mappings = containerMappings(sys as MockSysLayer, group);
  if (mappings === undefined) return ['DMA mappings: none (no container with an IOMMU set)'];
  if (mappings.length === 0) return ['DMA mappings: none'];
  const lines = [`DMA mappings (${mappings.length}):`];
  for (const m of mappings) {
    const prot = `${m.prot & 1 ? 'r' : '-'}${m.prot & 2 ? 'w' : '-'}`;
    const pinned = m.pins ? m.pins.size : 0;
    lines.push(`  iova 0x${m.iova.toString(16).padStart(12, '0')}-0x${(m.iova + m.size - 1n).toString(16).padStart(12, '0')} ${formatSize(m.size).padStart(9)} ${prot} vaddr 0x${m.vaddr.toString(16)}${pinned > 0 ? `, ${pinned} page${pinned === 1 ? '' : 's'} pinned` : ''}`);
  }
  return lines;
}

/** Finds the group among the open fds (its group fd, or a device fd that holds it). */
function containerMappings(sys: MockSysLayer, groupNumber: number): DmaMapping[] | undefined {
  const { fds } = sys.kernel;
  let group: MockGroup | undefined;
  for (const fd of fds.fds()) {
    const file = fds.get(fd);
    const g = file instanceof GroupFile ? file.group : file instanceof DeviceFile ? file.node.group : undefined;
    if (g && g.id === groupNumber) {
      group = g;
      break;
    }
  }
  const iommu = group?.container?.iommu;
  return iommu ? [...iommu.store.values()] : undefined;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
