// Conformance: BAR access through the device fd (vfio_pci_rdwr.c) and mmap
// (vfio_pci_core_mmap), on edu's BAR0: 0x00 id 0x010000ed, 0x04 liveness (reads the
// bitwise NOT of what was written), unimplemented registers read ~0. Only 4-byte
// accesses below 0x80: smaller ones are invalid for edu, 8-byte ones split differently
// between kernels.
import { pciRegion } from '../../src/uapi/index.js';
import { PROT_READ, PROT_WRITE } from '../../src/sys/types.js';
import type { SysLayer } from '../../src/sys/types.js';
import { fromLe, le, readAt, regionOffset, regionSize, writeAt } from './abi.js';
import { attempt, conformanceCase, fails, hex, ok } from './outcome.js';
import { setupFile, withSession } from './target.js';

const t = setupFile();

const bar0 = (sys: SysLayer, device: number) => regionOffset(sys, device, pciRegion.VFIO_PCI_BAR0_REGION_INDEX);
const EDU_ID = 0x010000ed;

conformanceCase(t, 'bar: pread of the edu id register', { outcome: ok(4), value: EDU_ID }, () => withSession(t, (s) => {
  const { device } = s.open();
  const { outcome, bytes } = readAt(s.sys, device, bar0(s.sys, device), 4);
  return { outcome, value: fromLe(bytes) };
}));

conformanceCase(t, 'bar: pwrite then pread of liveness returns the bitwise NOT',
  { write: ok(4), read: ok(4), value: 0xedcba987 }, () => withSession(t, (s) => {
    const { device } = s.open();
    const write = writeAt(s.sys, device, bar0(s.sys, device) + 4n, le(0x12345678, 4));
    const { outcome, bytes } = readAt(s.sys, device, bar0(s.sys, device) + 4n, 4);
    return { write, read: outcome, value: fromLe(bytes) };
  }));

conformanceCase(t, 'bar: an unimplemented edu register reads 0xffffffff', { outcome: ok(4), value: 0xffffffff }, () => withSession(t, (s) => {
  const { device } = s.open();
  const { outcome, bytes } = readAt(s.sys, device, bar0(s.sys, device) + 0x400n, 4);
  return { outcome, value: fromLe(bytes) };
}));

// vfio_pci_bar_rw trims a read that crosses the end of the BAR.
conformanceCase(t, 'bar: an 8-byte read at size - 4 is short (4 bytes)', { outcome: ok(4), bytes: 'ffffffff00000000' }, () => withSession(t, (s) => {
  const { device } = s.open();
  const size = regionSize(s.sys, device, 0);
  const { outcome, bytes } = readAt(s.sys, device, bar0(s.sys, device) + size - 4n, 8);
  return { outcome, bytes: hex(bytes) };
}));

conformanceCase(t, 'bar: an 8-byte write at size - 4 is short (4 bytes)', ok(4), () => withSession(t, (s) => {
  const { device } = s.open();
  const size = regionSize(s.sys, device, 0);
  return writeAt(s.sys, device, bar0(s.sys, device) + size - 4n, new Uint8Array(8));
}));

conformanceCase(t, 'bar: a read at the end of the BAR is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return readAt(s.sys, device, bar0(s.sys, device) + regionSize(s.sys, device, 0), 4).outcome;
}));

conformanceCase(t, 'bar: a read past the end of the BAR is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return readAt(s.sys, device, bar0(s.sys, device) + regionSize(s.sys, device, 0) + 0x1000n, 4).outcome;
}));

conformanceCase(t, 'bar: a write at the end of the BAR is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return writeAt(s.sys, device, bar0(s.sys, device) + regionSize(s.sys, device, 0), le(0, 4));
}));

// vfio_pci_bar_rw: a BAR with no resource (and no shadow ROM) is EINVAL.
conformanceCase(t, 'bar: a read of unimplemented BAR1 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return readAt(s.sys, device, regionOffset(s.sys, device, 1), 4).outcome;
}));

conformanceCase(t, 'bar: a read of the ROM region (no ROM) is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return readAt(s.sys, device, regionOffset(s.sys, device, pciRegion.VFIO_PCI_ROM_REGION_INDEX), 4).outcome;
}));

// VGA region info is EINVAL, so its offset is not asked: 8 << 40 is vfio-pci's.
conformanceCase(t, 'bar: a read of the VGA region offset on a device without VGA is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return readAt(s.sys, device, 8n << 40n, 4).outcome;
}));

conformanceCase(t, 'bar: a read at region index 9 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return readAt(s.sys, device, 9n << 40n, 4).outcome;
}));

// --- mmap ---------------------------------------------------------------------------

/**
 * 32-bit lanes over a BAR mapping. MMIO needs naturally sized accesses: a Uint32Array
 * element is one 4-byte load or store, while DataView.getUint32 may be done byte by
 * byte, which edu (like much real hardware) ignores.
 */
const mmio32 = (buffer: ArrayBuffer): Uint32Array => new Uint32Array(buffer);

conformanceCase(t, 'bar: the id register reads 0x010000ed through an mmap of BAR0', EDU_ID, () => withSession(t, (s) => {
  const { device } = s.open();
  const m = s.mmap(device, bar0(s.sys, device), Number(regionSize(s.sys, device, 0)));
  return mmio32(m.buffer)[0];
}));

conformanceCase(t, 'bar: a store to liveness through the mmap is seen by pread', 0xfedcba98, () => withSession(t, (s) => {
  const { device } = s.open();
  const m = s.mmap(device, bar0(s.sys, device), s.sys.pageSize);
  mmio32(m.buffer)[1] = 0x01234567;
  return fromLe(readAt(s.sys, device, bar0(s.sys, device) + 4n, 4).bytes);
}));

conformanceCase(t, 'bar: mmap of the last page of BAR0 works and reads ~0', 0xffffffff, () => withSession(t, (s) => {
  const { device } = s.open();
  const size = regionSize(s.sys, device, 0);
  const m = s.mmap(device, bar0(s.sys, device) + size - BigInt(s.sys.pageSize), s.sys.pageSize, PROT_READ);
  return mmio32(m.buffer)[0];
}));

/** mmap as the case under test: 'mapped' (and unmapped again) or the errno. */
const tryMmap = (sys: SysLayer, fd: number, offset: bigint, length: number): string => {
  const o = attempt(() => {
    const m = sys.mmap(fd, offset, length, PROT_READ | PROT_WRITE);
    sys.munmap(m);
    return 0;
  });
  return 'errno' in o ? o.errno : 'mapped';
};

conformanceCase(t, 'bar: mmap of the CONFIG region is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  return tryMmap(s.sys, device, regionOffset(s.sys, device, pciRegion.VFIO_PCI_CONFIG_REGION_INDEX), s.sys.pageSize);
}));

conformanceCase(t, 'bar: mmap of the ROM region is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  return tryMmap(s.sys, device, regionOffset(s.sys, device, pciRegion.VFIO_PCI_ROM_REGION_INDEX), s.sys.pageSize);
}));

conformanceCase(t, 'bar: mmap of unimplemented BAR1 is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  return tryMmap(s.sys, device, regionOffset(s.sys, device, 1), s.sys.pageSize);
}));

conformanceCase(t, 'bar: mmap of twice the BAR size is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  return tryMmap(s.sys, device, bar0(s.sys, device), 2 * Number(regionSize(s.sys, device, 0)));
}));

conformanceCase(t, 'bar: mmap of a page starting at the end of BAR0 is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  return tryMmap(s.sys, device, bar0(s.sys, device) + regionSize(s.sys, device, 0), s.sys.pageSize);
}));

conformanceCase(t, 'bar: mmap of two pages from the last page of BAR0 is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  const size = regionSize(s.sys, device, 0);
  return tryMmap(s.sys, device, bar0(s.sys, device) + size - BigInt(s.sys.pageSize), 2 * s.sys.pageSize);
}));

conformanceCase(t, 'bar: mmap at region index 9 is EINVAL', 'EINVAL', () => withSession(t, (s) => {
  const { device } = s.open();
  return tryMmap(s.sys, device, 9n << 40n, s.sys.pageSize);
}));
