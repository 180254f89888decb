// Config space of the simulated edu through the vfio-pci config region (index 7):
// virtualization, BAR sizing, access splitting and bounds, as vfio_pci_config.c does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertErrno, cfgRead, cfgWrite, CONFIG, openEdu, bar0Read } from './pci-helpers.js';

test('identity registers read as QEMU builds edu', () => {
  const rig = openEdu();
  try {
    assert.equal(cfgRead(rig, 0x00, 4), 0x11e81234);
    assert.equal(cfgRead(rig, 0x08, 4), 0x00ff0010); // class 00ff00, revision 0x10
    assert.equal(cfgRead(rig, 0x2c, 4), 0x11001af4); // subsystem 1af4:1100
    assert.equal(cfgRead(rig, 0x0e, 1), 0); // header type 0
    assert.equal(cfgRead(rig, 0x3d, 1), 1); // INTA#
    assert.equal(cfgRead(rig, 0x34, 1), 0x40); // capability list
    assert.equal(cfgRead(rig, 0x06, 2) & 0x10, 0x10); // status: capability list
  } finally {
    rig.close();
  }
});

test('the MSI capability: 64-bit, one vector, no masking, at 0x40, last in the chain', () => {
  const rig = openEdu();
  try {
    assert.equal(cfgRead(rig, 0x40, 4), 0x00800005);
    assert.equal(cfgRead(rig, 0x44, 4), 0);
    assert.equal(cfgRead(rig, 0x48, 4), 0);
    assert.equal(cfgRead(rig, 0x4c, 2), 0);
  } finally {
    rig.close();
  }
});

test('vendor and device ids are read-only: the write succeeds and changes nothing', () => {
  const rig = openEdu();
  try {
    const buf = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    assert.equal(rig.sys.pwrite(rig.fd, buf, CONFIG), 4);
    assert.equal(cfgRead(rig, 0x00, 4), 0x11e81234);
    cfgWrite(rig, 0x08, 4, 0);
    assert.equal(cfgRead(rig, 0x08, 4), 0x00ff0010);
    cfgWrite(rig, 0x3d, 1, 0);
    assert.equal(cfgRead(rig, 0x3d, 1), 1); // pin is read-only
    cfgWrite(rig, 0x34, 1, 0x80);
    assert.equal(cfgRead(rig, 0x34, 1), 0x40);
    cfgWrite(rig, 0x06, 2, 0xffff); // status: nothing writable
    assert.equal(cfgRead(rig, 0x06, 2) & 0xfff7, 0x0010);
  } finally {
    rig.close();
  }
});

test('accesses split into aligned pieces; odd lengths and offsets work', () => {
  const rig = openEdu();
  try {
    const three = new Uint8Array(3);
    assert.equal(rig.sys.pread(rig.fd, three, CONFIG + 1n), 3);
    assert.deepEqual([...three], [0x12, 0xe8, 0x11]);
    const all = new Uint8Array(256);
    assert.equal(rig.sys.pread(rig.fd, all, CONFIG), 256);
    assert.deepEqual([...all.subarray(0, 4)], [0x34, 0x12, 0xe8, 0x11]);
    assert.equal(all[0x40], 0x05);
    const seven = new Uint8Array(7);
    assert.equal(rig.sys.pread(rig.fd, seven, CONFIG + 0x3bn), 7);
    assert.deepEqual([...seven.subarray(1, 6)], [10, 1, 0, 0, 0x05]); // line, pin, min_gnt, max_lat, MSI id
  } finally {
    rig.close();
  }
});

test('config space is 256 bytes: any byte past it is EFAULT, length 0 returns 0', () => {
  const rig = openEdu();
  try {
    assert.equal(rig.sys.pread(rig.fd, new Uint8Array(1), CONFIG + 255n), 1);
    assertErrno(() => rig.sys.pread(rig.fd, new Uint8Array(2), CONFIG + 255n), 'EFAULT');
    assertErrno(() => rig.sys.pread(rig.fd, new Uint8Array(1), CONFIG + 256n), 'EFAULT');
    assertErrno(() => rig.sys.pread(rig.fd, new Uint8Array(8), CONFIG + 252n), 'EFAULT');
    // A write crossing the end is refused whole: the first bytes are not written.
    assertErrno(() => rig.sys.pwrite(rig.fd, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), CONFIG + 0xfcn), 'EFAULT');
    assert.equal(cfgRead(rig, 0xfc, 4), 0);
    assert.equal(rig.sys.pread(rig.fd, new Uint8Array(0), CONFIG + 4096n), 0);
    assert.equal(rig.sys.pwrite(rig.fd, new Uint8Array(0), CONFIG), 0);
  } finally {
    rig.close();
  }
});

test('BAR sizing: 0xffffffff reads back the size mask; unimplemented BARs and the ROM read 0', () => {
  const rig = openEdu();
  try {
    const orig = cfgRead(rig, 0x10, 4);
    assert.equal(orig & 0xfffff, 0, 'BAR0 is 1 MiB aligned, 32-bit memory, not prefetchable');
    assert.notEqual(orig, 0);
    cfgWrite(rig, 0x10, 4, 0xffffffff);
    assert.equal(cfgRead(rig, 0x10, 4), 0xfff00000);
    cfgWrite(rig, 0x10, 4, orig);
    assert.equal(cfgRead(rig, 0x10, 4), orig);
    for (let bar = 0x14; bar <= 0x24; bar += 4) {
      cfgWrite(rig, bar, 4, 0xffffffff);
      assert.equal(cfgRead(rig, bar, 4), 0, `BAR at 0x${bar.toString(16)}`);
    }
    cfgWrite(rig, 0x30, 4, 0xffffffff);
    assert.equal(cfgRead(rig, 0x30, 4), 0);
    // A byte write to a BAR still reads back through the size mask.
    cfgWrite(rig, 0x13, 1, 0x12);
    assert.equal(cfgRead(rig, 0x10, 4), ((orig & 0x00ffffff) | 0x12000000) >>> 0 & 0xfff00000);
    // Sizing is virtual: the device's own BAR is untouched.
    assert.equal(rig.model.config.get32(0x10), 0xfea00000);
  } finally {
    rig.close();
  }
});

test('COMMAND: INTx Disable is virtual, the other bits reach the device under its write mask', () => {
  const rig = openEdu();
  try {
    const cmd = cfgRead(rig, 0x04, 2);
    assert.equal(cmd & 0x2, 0x2, 'memory decoding is on after open');
    cfgWrite(rig, 0x04, 2, cmd | 0x400);
    assert.equal(cfgRead(rig, 0x04, 2), cmd | 0x400);
    assert.equal(rig.model.config.get16(0x04) & 0x400, 0, 'the real INTx Disable bit is vfio-pci\'s');
    cfgWrite(rig, 0x04, 2, 0xffff);
    // QEMU lets IO, MEMORY, MASTER, INTX_DISABLE and SERR be written; INTx Disable is virtual.
    assert.equal(cfgRead(rig, 0x04, 2), 0x0507);
    assert.equal(rig.model.config.get16(0x04), 0x0107);
    cfgWrite(rig, 0x04, 2, 0);
    assert.equal(cfgRead(rig, 0x04, 2), 0);
  } finally {
    rig.close();
  }
});

test('clearing Memory Space Enable makes BAR accesses EIO until it is set again', () => {
  const rig = openEdu();
  try {
    const cmd = cfgRead(rig, 0x04, 2);
    cfgWrite(rig, 0x04, 2, cmd & ~0x2);
    assertErrno(() => rig.sys.pread(rig.fd, new Uint8Array(4), 0n), 'EIO');
    assertErrno(() => rig.sys.pwrite(rig.fd, new Uint8Array(4), 4n), 'EIO');
    cfgWrite(rig, 0x04, 2, cmd);
    assert.equal(bar0Read(rig, 0), 0x010000ed);
  } finally {
    rig.close();
  }
});

test('interrupt line is virtual and writable; cache line reaches the device; latency timer is read-only in QEMU', () => {
  const rig = openEdu();
  try {
    cfgWrite(rig, 0x3c, 1, 0x5a);
    assert.equal(cfgRead(rig, 0x3c, 1), 0x5a);
    assert.equal(rig.model.config.get8(0x3c), 10);
    cfgWrite(rig, 0x0c, 1, 0x10);
    assert.equal(cfgRead(rig, 0x0c, 1), 0x10);
    cfgWrite(rig, 0x0d, 1, 0x40);
    assert.equal(cfgRead(rig, 0x0d, 1), 0);
  } finally {
    rig.close();
  }
});

test('MSI: enable only through SET_IRQS; address and data are virtual', () => {
  const rig = openEdu();
  try {
    cfgWrite(rig, 0x42, 2, 0x0081);
    assert.equal(cfgRead(rig, 0x42, 2), 0x0080);
    assert.equal(rig.model.config.msiEnabled(), false);
    cfgWrite(rig, 0x44, 4, 0xfee01004);
    cfgWrite(rig, 0x48, 4, 0x12345678);
    cfgWrite(rig, 0x4c, 2, 0x4021);
    assert.equal(cfgRead(rig, 0x44, 4), 0xfee01004);
    assert.equal(cfgRead(rig, 0x48, 4), 0x12345678);
    assert.equal(cfgRead(rig, 0x4c, 2), 0x4021);
    assert.equal(rig.model.config.get32(0x44), 0, 'the device keeps the host\'s address');
    cfgWrite(rig, 0x40, 2, 0xffff); // id and next: read-only
    assert.equal(cfgRead(rig, 0x40, 2), 0x0005);
  } finally {
    rig.close();
  }
});

test('bytes no capability claims go straight to the device (QEMU leaves them writable)', () => {
  const rig = openEdu();
  try {
    cfgWrite(rig, 0x80, 4, 0xdeadbeef);
    assert.equal(cfgRead(rig, 0x80, 4), 0xdeadbeef);
    assert.equal(rig.model.config.get32(0x80), 0xdeadbeef);
    cfgWrite(rig, 0x4e, 2, 0xabcd); // past the 14-byte MSI capability
    assert.equal(cfgRead(rig, 0x4c, 4), 0xabcd0000);
  } finally {
    rig.close();
  }
});

test('virtual state is rebuilt from the device at the next open', () => {
  const rig = openEdu();
  try {
    const bar = cfgRead(rig, 0x10, 4);
    cfgWrite(rig, 0x10, 4, 0xffffffff);
    cfgWrite(rig, 0x3c, 1, 0x5a);
    cfgWrite(rig, 0x04, 2, cfgRead(rig, 0x04, 2) | 0x4);
    rig.reopen();
    assert.equal(cfgRead(rig, 0x10, 4), bar);
    assert.equal(cfgRead(rig, 0x3c, 1), 10);
    assert.equal(cfgRead(rig, 0x04, 2) & 0x4, 0, 'closing the device clears Bus Master');
  } finally {
    rig.close();
  }
});
