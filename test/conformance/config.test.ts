// Conformance: PCI config space through the CONFIG region (vfio_pci_config.c) of QEMU's
// edu: ids 1234:11e8, revision 0x10, class 0x00ff00, subsystem 1af4:1100, a 1 MiB
// 32-bit MMIO BAR0, pin A, one capability (MSI, 64-bit, 1 vector) at 0x40.
import { pciRegion } from '../../src/uapi/index.js';
import type { SysLayer } from '../../src/sys/types.js';
import { cfgRead, cfgWrite, fromLe, readAt, regionOffset, writeAt, le } from './abi.js';
import { conformanceCase, fails, hex, ok } from './outcome.js';
import { setupFile, withSession } from './target.js';

const t = setupFile();

const configBase = (sys: SysLayer, device: number) => regionOffset(sys, device, pciRegion.VFIO_PCI_CONFIG_REGION_INDEX);

/** pread of config space at `offset` as the case under test: outcome and bytes (hex). */
const readCase = (name: string, offset: number, length: number, expected: unknown) =>
  conformanceCase(t, `config: ${name}`, expected, () => withSession(t, (s) => {
    const { device } = s.open();
    const { outcome, bytes } = readAt(s.sys, device, configBase(s.sys, device) + BigInt(offset), length);
    return 'ret' in outcome && outcome.ret === length && length > 0 && length <= 4 ? { outcome, value: fromLe(bytes) } : { outcome };
  }));

/** A config register's value, as a number. */
const valueCase = (name: string, offset: number, width: 1 | 2 | 4, expected: number) =>
  conformanceCase(t, `config: ${name}`, expected, () => withSession(t, (s) => cfgRead(s.sys, s.open().device, offset, width)));

readCase('vendor id reads 0x1234', 0x00, 2, { outcome: ok(2), value: 0x1234 });
readCase('device id reads 0x11e8', 0x02, 2, { outcome: ok(2), value: 0x11e8 });
readCase('a 4-byte read at 0 is device << 16 | vendor', 0x00, 4, { outcome: ok(4), value: 0x11e81234 });
readCase('a read of length 0 returns 0', 0x00, 0, { outcome: ok(0) });
readCase('a read starting at the end (256) is EFAULT', 0x100, 4, { outcome: fails('EFAULT') });
readCase('a read crossing the end (4 bytes at 254) is EFAULT', 0xfe, 4, { outcome: fails('EFAULT') });
readCase('a 1-byte read of the last byte works', 0xff, 1, { outcome: ok(1), value: 0 });

// vfio_config_do_rw splits an access into naturally aligned pieces (1, 2, 1 here).
conformanceCase(t, 'config: a 3-byte read at offset 1 returns the id bytes', { outcome: ok(3), bytes: '12e811' }, () => withSession(t, (s) => {
  const { device } = s.open();
  const { outcome, bytes } = readAt(s.sys, device, configBase(s.sys, device) + 1n, 3);
  return { outcome, bytes: hex(bytes) };
}));

conformanceCase(t, 'config: reading all 256 bytes works', { outcome: ok(256), ids: 0x11e81234 }, () => withSession(t, (s) => {
  const { device } = s.open();
  const { outcome, bytes } = readAt(s.sys, device, configBase(s.sys, device), 256);
  return { outcome, ids: fromLe(bytes.subarray(0, 4)) };
}));

conformanceCase(t, 'config: a write starting at the end is EFAULT', fails('EFAULT'), () => withSession(t, (s) => {
  const { device } = s.open();
  return writeAt(s.sys, device, configBase(s.sys, device) + 0x100n, le(0, 4));
}));

conformanceCase(t, 'config: a write to the read-only vendor id returns its length and changes nothing',
  { outcome: ok(2), after: 0x1234 }, () => withSession(t, (s) => {
    const { device } = s.open();
    const outcome = cfgWrite(s.sys, device, 0x00, 2, 0xffff);
    return { outcome, after: cfgRead(s.sys, device, 0x00, 2) };
  }));

conformanceCase(t, 'config: a write to the read-only device id changes nothing',
  { outcome: ok(2), after: 0x11e8 }, () => withSession(t, (s) => {
    const { device } = s.open();
    const outcome = cfgWrite(s.sys, device, 0x02, 2, 0x0000);
    return { outcome, after: cfgRead(s.sys, device, 0x02, 2) };
  }));

// QEMU's class_id 0x00ff: base class 0x00, subclass 0xff (lspci: "Unclassified device [00ff]").
valueCase('revision 0x10 and class code 0x00ff00 read 0x00ff0010', 0x08, 4, 0x00ff0010);

conformanceCase(t, 'config: a write to the read-only revision changes nothing', { outcome: ok(1), after: 0x10 }, () => withSession(t, (s) => {
  const { device } = s.open();
  const outcome = cfgWrite(s.sys, device, 0x08, 1, 0xff);
  return { outcome, after: cfgRead(s.sys, device, 0x08, 1) };
}));

valueCase('subsystem vendor/device read 0x11001af4', 0x2c, 4, 0x11001af4);
valueCase('header type is 0 (single-function type 0)', 0x0e, 1, 0x00);

conformanceCase(t, 'config: STATUS has the capability-list bit', 0x10, () => withSession(t, (s) => {
  return cfgRead(s.sys, s.open().device, 0x06, 2) & 0x10;
}));

valueCase('the capability pointer is 0x40', 0x34, 1, 0x40);

conformanceCase(t, 'config: the capability at 0x40 is MSI (id 5), last in the list', { id: 0x05, next: 0x00 }, () => withSession(t, (s) => {
  const { device } = s.open();
  return { id: cfgRead(s.sys, device, 0x40, 1), next: cfgRead(s.sys, device, 0x41, 1) };
}));

// QEMU's msi_init(dev, 0, 1 vector, 64-bit, no per-vector mask): flags 0x0080; MSI stays
// disabled until SET_IRQS enables it.
valueCase('MSI message control is 64-bit, 1 vector, disabled (0x0080)', 0x42, 2, 0x0080);
valueCase('interrupt pin is 1 (INTA)', 0x3d, 1, 0x01);

// The firmware's value (SeaBIOS routes 00:04.0 INTA on q35 to PIRQA, IRQ 10), read through
// vfio-pci's virtual config space, which starts as a copy of the device's (vfio_config_init).
valueCase('interrupt line reads 10, as the firmware set it', 0x3c, 1, 0x0a);

conformanceCase(t, 'config: interrupt line is writable (virtualized)', { outcome: ok(1), after: 0x0b }, () => withSession(t, (s) => {
  const { device } = s.open();
  const original = cfgRead(s.sys, device, 0x3c, 1);
  const outcome = cfgWrite(s.sys, device, 0x3c, 1, 0x0b);
  const after = cfgRead(s.sys, device, 0x3c, 1);
  cfgWrite(s.sys, device, 0x3c, 1, original);
  return { outcome, after };
}));

conformanceCase(t, 'config: a write to interrupt pin changes nothing', { outcome: ok(1), after: 0x01 }, () => withSession(t, (s) => {
  const { device } = s.open();
  const outcome = cfgWrite(s.sys, device, 0x3d, 1, 0x00);
  return { outcome, after: cfgRead(s.sys, device, 0x3d, 1) };
}));

// The virtual BAR reads back value & ~(size - 1) | its type bits (vfio_bar_fixup).
conformanceCase(t, 'config: BAR0 sizing reads 0xfff00000 for a 1 MiB 32-bit memory BAR',
  { outcome: ok(4), sized: 0xfff00000, restored: true }, () => withSession(t, (s) => {
    const { device } = s.open();
    const original = cfgRead(s.sys, device, 0x10, 4);
    const outcome = cfgWrite(s.sys, device, 0x10, 4, 0xffffffff);
    const sized = cfgRead(s.sys, device, 0x10, 4);
    cfgWrite(s.sys, device, 0x10, 4, original);
    return { outcome, sized, restored: cfgRead(s.sys, device, 0x10, 4) === original };
  }));

conformanceCase(t, 'config: BAR0 type bits are 32-bit non-prefetchable memory', { typeBits: 0, aligned: true }, () => withSession(t, (s) => {
  const bar = cfgRead(s.sys, s.open().device, 0x10, 4);
  return { typeBits: bar & 0xf, aligned: (bar & 0x000ffff0) === 0 };
}));

conformanceCase(t, 'config: BAR1..BAR5 (unimplemented) read 0', [0, 0, 0, 0, 0], () => withSession(t, (s) => {
  const { device } = s.open();
  return [0x14, 0x18, 0x1c, 0x20, 0x24].map((off) => cfgRead(s.sys, device, off, 4));
}));

conformanceCase(t, 'config: sizing an unimplemented BAR1 reads 0', { outcome: ok(4), sized: 0 }, () => withSession(t, (s) => {
  const { device } = s.open();
  const outcome = cfgWrite(s.sys, device, 0x14, 4, 0xffffffff);
  const sized = cfgRead(s.sys, device, 0x14, 4);
  cfgWrite(s.sys, device, 0x14, 4, 0);
  return { outcome, sized };
}));

conformanceCase(t, 'config: the expansion ROM BAR (none) reads 0, also after sizing', { before: 0, sized: 0 }, () => withSession(t, (s) => {
  const { device } = s.open();
  const before = cfgRead(s.sys, device, 0x30, 4);
  cfgWrite(s.sys, device, 0x30, 4, 0xfffff800);
  const sized = cfgRead(s.sys, device, 0x30, 4);
  cfgWrite(s.sys, device, 0x30, 4, 0);
  return { before, sized };
}));

// With COMMAND's memory-enable bit clear, vfio-pci refuses BAR accesses (EIO).
conformanceCase(t, 'config: BAR0 reads are EIO while COMMAND memory enable is clear',
  { whileDisabled: fails('EIO'), afterRestore: { outcome: ok(4), id: 0x010000ed } }, () => withSession(t, (s) => {
    const { device } = s.open();
    const bar0 = regionOffset(s.sys, device, pciRegion.VFIO_PCI_BAR0_REGION_INDEX);
    const command = cfgRead(s.sys, device, 0x04, 2);
    cfgWrite(s.sys, device, 0x04, 2, command & ~0x0002);
    const whileDisabled = readAt(s.sys, device, bar0, 4).outcome;
    cfgWrite(s.sys, device, 0x04, 2, command);
    const r = readAt(s.sys, device, bar0, 4);
    return { whileDisabled, afterRestore: { outcome: r.outcome, id: fromLe(r.bytes) } };
  }));

conformanceCase(t, 'config: COMMAND memory enable is set when the device is opened', 0x0002, () => withSession(t, (s) => {
  return cfgRead(s.sys, s.open().device, 0x04, 2) & 0x0002;
}));
