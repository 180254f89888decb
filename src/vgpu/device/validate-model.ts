// Checks a vendor's VgpuModel before the core builds a device from it, so a broken model
// fails vGPU creation (the registry reports it as a vendor failure) instead of
// misbehaving later. Throws an Error naming the first problem.
import type { VgpuBar, VgpuModel } from '../vendor.js';
import { checkDeviceRegions } from './device-regions.js';
import { MSIX_ENTRY_SIZE, pbaSize } from './msix-table.js';

const MSI_VECTOR_COUNTS = new Set([0, 1, 2, 4, 8, 16, 32]);

function fail(what: string): never {
  throw new Error(`invalid vGPU model: ${what}`);
}

function isPowerOfTwo(n: number): boolean {
  // Math.log2 is exact on powers of two; bit tricks would break above 2^31.
  return Number.isSafeInteger(n) && n > 0 && Number.isInteger(Math.log2(n));
}

function checkBar(bar: VgpuBar, pageSize: number): void {
  const name = `BAR${bar.index}`;
  const min = bar.kind === 'io' ? 4 : 16;
  if (!isPowerOfTwo(bar.size) || bar.size < min) fail(`${name} size ${bar.size} is not a power of two >= ${min}`);
  if (bar.kind === 'memory32' && bar.size > 2 ** 31) fail(`${name} is too large for a 32-bit BAR`);
  if (bar.kind === 'io' && bar.size > 256) fail(`${name}: I/O BARs are at most 256 bytes`);
  let end = 0;
  for (const area of bar.areas) {
    const where = `${name} area at 0x${Number(area.offset).toString(16)}`;
    if (!Number.isSafeInteger(area.offset) || !Number.isSafeInteger(area.size) || area.offset < 0 || area.size <= 0) {
      fail(`${where} has a bad offset or size`);
    }
    if (area.offset < end) fail(`${where} overlaps the area before it or is out of order`);
    if (area.offset + area.size > bar.size) fail(`${where} runs past the BAR`);
    end = area.offset + area.size;
    if (area.kind === 'trapped') {
      if (area.offset % 4 !== 0) fail(`${where}: trapped areas start on a 4-byte boundary`);
      if (typeof area.handler?.read !== 'function' || typeof area.handler.write !== 'function') fail(`${where} has no handler`);
    } else if (area.kind === 'mapped') {
      if (bar.kind === 'io') fail(`${where}: I/O BARs cannot be mapped`);
      if (area.offset % pageSize !== 0 || area.size % pageSize !== 0) fail(`${where}: mapped areas are whole pages`);
      const memory = area.memory;
      if (!memory || typeof memory.read !== 'function' || typeof memory.write !== 'function' ||
          typeof memory.map !== 'function' || typeof memory.unmap !== 'function') {
        fail(`${where} has no memory (read, write, map and unmap)`);
      }
      if (!(memory.size >= area.size)) fail(`${where}: its memory is smaller than the area`);
    } else {
      fail(`${where} has an unknown kind`);
    }
  }
}

/** Throws when the model cannot be served as a VFIO PCI device. */
export function validateModel(model: VgpuModel, pageSize: number): void {
  const { pci, bars } = model;
  if (!pci || !Array.isArray(bars)) fail('pci and bars are required');
  const id = pci.identity;
  for (const [name, value, max] of [
    ['vendor', id.vendor, 0xffff], ['device', id.device, 0xffff], ['subsystemVendor', id.subsystemVendor, 0xffff],
    ['subsystemDevice', id.subsystemDevice, 0xffff], ['classCode', id.classCode, 0xffffff], ['revision', id.revision, 0xff],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) fail(`identity.${name} ${value} is out of range`);
  }
  if (!Number.isInteger(pci.interruptPin) || pci.interruptPin < 0 || pci.interruptPin > 4) fail(`interruptPin ${pci.interruptPin}`);
  if (!MSI_VECTOR_COUNTS.has(pci.msiVectors)) fail(`msiVectors ${pci.msiVectors} is not 0, 1, 2, 4, 8, 16 or 32`);
  const slots = new Set<number>();
  for (const bar of bars) {
    const taken = bar.kind === 'memory64' ? [bar.index, bar.index + 1] : [bar.index];
    for (const s of taken) {
      if (!Number.isInteger(s) || s < 0 || s > 5 || slots.has(s)) fail(`BAR${bar.index}: slot ${s} is invalid or taken`);
      slots.add(s);
    }
    checkBar(bar, pageSize);
  }
  if (model.regions !== undefined) {
    if (!Array.isArray(model.regions)) fail('regions must be an array');
    checkDeviceRegions(model.regions, fail);
  }
  const msix = pci.msix;
  if (msix) {
    if (!Number.isInteger(msix.vectors) || msix.vectors < 1 || msix.vectors > 2048) fail(`MSI-X vectors ${msix.vectors} is not 1..2048`);
    const bar = bars.find((b) => b.index === msix.bar);
    if (!bar || bar.kind === 'io') fail(`MSI-X BAR${msix.bar} is not a memory BAR of the model`);
    const ranges: [string, number, number][] = [
      ['table', msix.tableOffset, msix.vectors * MSIX_ENTRY_SIZE],
      ['PBA', msix.pbaOffset, pbaSize(msix.vectors)],
    ];
    for (const [what, offset, size] of ranges) {
      if (!Number.isSafeInteger(offset) || offset < 0 || offset % 8 !== 0 || offset + size > bar.size) {
        fail(`MSI-X ${what} at 0x${Number(offset).toString(16)} is not 8-byte aligned inside BAR${msix.bar}`);
      }
      for (const area of bar.areas) {
        if (offset < area.offset + area.size && area.offset < offset + size) fail(`MSI-X ${what} overlaps a vendor area of BAR${msix.bar}`);
      }
    }
    const [t, p] = ranges;
    if (t![1] < p![1] + p![2] && p![1] < t![1] + t![2]) fail('the MSI-X table and PBA overlap');
  }
}
