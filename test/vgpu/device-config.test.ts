// The vGPU's emulated config space through the client's CONFIG region: the header as
// lspci would show it, the capability chain, BAR sizing with 64-bit pairs, COMMAND and
// STATUS masks, MSI/MSI-X Enable that only SET_IRQS sets, PM, PCIe FLR, 4 KiB extended
// space, and power-on values at each open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPciDevice } from '../../src/vfio/index.js';
import { openVgpu, withVgpu, assertErrno, UUID } from './fixtures/device-rig.js';
import { IDENTITY } from './fixtures/test-model.js';

const MSI = 1;
const MSIX = 2;

test('header: identity, COMMAND as after pci_enable_device, STATUS with the capability list, BAR type bits, pin 1', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    assert.deepEqual(c.header(), {
      vendorId: IDENTITY.vendor, deviceId: IDENTITY.device, command: 0x0003, status: 0x0010,
      revisionId: 1, classCode: 0x030000, headerType: 0,
      bars: [0x0, 0x0, 0xc, 0x0, 0x0, 0x1],
      subsystemVendorId: IDENTITY.subsystemVendor, subsystemId: IDENTITY.subsystemDevice,
      romAddress: 0, capabilitiesPointer: 0x90, interruptLine: 0, interruptPin: 1,
    });
  });
});

test('capability chain: MSI -> MSI-X -> PM -> PCIe, no extended capabilities', () => {
  withVgpu(({ device }) => {
    const caps = device.config.capabilities().map((c) => [c.name, c.offset, c.extended]);
    assert.deepEqual(caps, [['MSI', 0x90, false], ['MSIX', 0x84, false], ['PM', 0x7c, false], ['EXP', 0x40, false]]);
    const c = device.config;
    assert.equal(c.read16(0x92), 0x0184, 'MSI: 4 vectors (QMASK 2), 64-bit, per-vector mask');
    assert.deepEqual([c.read16(0x86), c.read32(0x88), c.read32(0x8c)], [7, 0x4, 0x804], 'MSI-X: 8 vectors, table BAR4+0, PBA BAR4+0x800');
    assert.deepEqual([c.read16(0x7e), c.read16(0x80)], [0x0003, 0x0008], 'PM version 3, D0, No_Soft_Reset');
    assert.deepEqual([c.read16(0x42), c.read32(0x44), c.read16(0x48)], [0x0002, 0x10000000, 0], 'PCIe v2 endpoint with FLR');
  });
});

test('BAR sizing: all ones reads the size mask with the type bits; 64-bit pairs; unimplemented BARs and ROM read 0', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    for (let i = 0; i < 6; i++) c.write32(0x10 + 4 * i, 0xffffffff);
    c.write32(0x30, 0xffffffff);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => c.read32(0x10 + 4 * i) >>> 0), [
      0xffffe000, 0, 0xffff000c, 0xffffffff, 0xffffc000, 0xffffffe1,
    ]);
    assert.equal(c.read32(0x30), 0);
    // Programming addresses keeps only what the size allows.
    c.write32(0x10, 0xfebf1234);
    c.write32(0x18, 0xe0000000);
    c.write32(0x1c, 0x00000001);
    assert.deepEqual([c.read32(0x10) >>> 0, c.read32(0x18) >>> 0, c.read32(0x1c)], [0xfebf0000, 0xe000000c, 1]);
  });
});

test('COMMAND: only IO, MEMORY, MASTER, SERR and INTx Disable are writable; ids, pin and class are read-only; line is rw', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    c.write16(0x04, 0xffff);
    assert.equal(c.read16(0x04), 0x0507);
    c.write16(0x04, 0x0003);
    c.write32(0x00, 0x12345678);
    c.write8(0x3d, 4);
    c.write8(0x3c, 0x0b);
    c.write32(0x08, 0);
    assert.deepEqual([c.read32(0x00), c.read8(0x3d), c.read8(0x3c), c.read32(0x08) >>> 8], [
      (IDENTITY.device << 16 | IDENTITY.vendor) >>> 0, 1, 0x0b, 0x030000,
    ]);
  });
});

test('STATUS: error bits are write-1-to-clear, the rest read-only', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    // A register access the vendor fails signals Target Abort.
    assertErrno(() => device.bar(0).read32(0x10), 'EIO');
    assert.equal(c.read16(0x06), 0x0810);
    c.write16(0x06, 0x0000);
    assert.equal(c.read16(0x06), 0x0810, 'writing 0 clears nothing');
    c.write16(0x06, 0xf7ff);
    assert.equal(c.read16(0x06), 0x0810, 'writing 1 elsewhere changes nothing');
    c.write16(0x06, 0x0800);
    assert.equal(c.read16(0x06), 0x0010);
  });
});

test('MSI and MSI-X Enable follow SET_IRQS only; QSIZE is capped at what was enabled; MSI-X Function Mask is writable', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    c.write16(0x92, 0x0185 | (2 << 4));
    assert.equal(c.read16(0x92), 0x0184, 'Enable and QSIZE stay 0 before any SET_IRQS');
    device.irqs.enable(MSI, { count: 2 });
    assert.equal(c.read16(0x92), 0x0195, 'enabled with 2 vectors: QSIZE 1');
    c.write16(0x92, 0x0184 | (2 << 4));
    assert.equal(c.read16(0x92), 0x0195, 'the user cannot clear Enable nor raise QSIZE');
    device.irqs.disable(MSI);
    assert.equal(c.read16(0x92), 0x0184);
    c.write16(0x86, 0xc000);
    assert.equal(c.read16(0x86), 0x4007, 'Function Mask set, Enable not');
    device.irqs.enable(MSIX);
    assert.equal(c.read16(0x86), 0xc007);
    device.irqs.disable(MSIX);
    assert.equal(c.read16(0x86), 0x4007);
  });
});

test('MSI address, data and mask are rw; pending bits are read-only', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    c.write32(0x94, 0xfee0100f);
    c.write32(0x98, 0x1);
    c.write16(0x9c, 0x4041);
    c.write32(0xa0, 0xffffffff);
    c.write32(0xa4, 0xffffffff);
    assert.deepEqual([c.read32(0x94) >>> 0, c.read32(0x98), c.read16(0x9c), c.read32(0xa0), c.read32(0xa4)], [
      0xfee0100c, 1, 0x4041, 0xf, 0,
    ]);
  });
});

test('PM: the power state is writable, the rest read-only', () => {
  withVgpu(({ device }) => {
    const c = device.config;
    c.write16(0x80, 0xffff);
    assert.equal(c.read16(0x80), 0x000b);
    c.write16(0x7e, 0);
    assert.equal(c.read16(0x7e), 3);
  });
});

test('PCIe Initiate FLR resets the function (vendor reset, interrupts off) and reads back 0', () => {
  withVgpu(({ device, model }) => {
    const c = device.config;
    device.irqs.enable(MSI, { count: 1 });
    c.write8(0x3c, 0x0a);
    c.write16(0x48, 0x8000);
    assert.equal(model.calls.filter((x) => x === 'reset').length, 1);
    assert.equal(c.read16(0x48), 0);
    assert.equal(c.read16(0x92) & 1, 0, 'MSI disabled by the reset');
    assert.equal(c.read8(0x3c), 0x0a, 'the header stays as programmed');
  });
});

test('extended config space: 4 KiB, reads 0 past the capabilities, ignores writes; past the end is EFAULT', () => {
  withVgpu(({ device, sys }) => {
    const region = device.region(7);
    assert.equal(region.size, 4096);
    region.write32(0x100, 0x12345678);
    region.write32(0xffc, 0xffffffff);
    assert.deepEqual([region.read32(0x100), region.read32(0xffc)], [0, 0]);
    const cfg = region.offset;
    assertErrno(() => sys.pread(device.fd, new Uint8Array(8), cfg + 4092n), 'EFAULT');
    assertErrno(() => sys.pread(device.fd, new Uint8Array(1), cfg + 4096n), 'EFAULT');
    assertErrno(() => sys.pwrite(device.fd, new Uint8Array(4), cfg + 4096n), 'EFAULT');
  });
});

test('unaligned and bulk config reads are split like vfio-pci and give the same bytes', () => {
  withVgpu(({ device }) => {
    const region = device.region(7);
    const whole = region.read(0, 64);
    const odd = region.read(1, 7);
    assert.deepEqual([...odd], [...whole.subarray(1, 8)]);
    assert.equal(region.read16(0x0a), 0x0300);
  });
});

test('a conventional function: 256 bytes, PM absent when not asked, no PCIe', () => {
  withVgpu(({ device }) => {
    assert.deepEqual(device.config.capabilities().map((c) => c.name), ['MSI']);
    assert.equal(device.region(7).size, 256);
  }, { express: false, powerManagement: false, msix: false });
});

test('every open starts from power-on config', () => {
  const rig = openVgpu();
  try {
    rig.device.config.write8(0x3c, 0x0b);
    rig.device.config.write32(0x10, 0xfebf0000);
    rig.handle.close();
    rig.handle = openPciDevice(rig.sys, UUID, { group: rig.group });
    assert.deepEqual([rig.device.config.read8(0x3c), rig.device.config.read32(0x10)], [0, 0]);
  } finally {
    rig.close();
  }
});

test('the session shows COMMAND Bus Master Enable live: clear at open, as the user sets it, false once released', () => {
  const rig = openVgpu();
  try {
    const session = rig.model.session!;
    assert.equal(session.busMaster, false, 'a new open starts without Bus Master');
    rig.device.config.enable(0x4);
    assert.equal(session.busMaster, true);
    rig.device.config.command = rig.device.config.command & ~0x4;
    assert.equal(session.busMaster, false);
    rig.device.config.write8(0x04, 0x06); // a 1-byte write of COMMAND's low byte
    assert.equal(session.busMaster, true);
    rig.device.reset();
    assert.equal(session.busMaster, true, 'VFIO_DEVICE_RESET leaves the header as the user programmed it');
    rig.handle.close();
    assert.equal(session.busMaster, false, 'a session that ended sees no Bus Master');
    rig.handle = openPciDevice(rig.sys, UUID, { group: rig.group });
    assert.equal(rig.model.session!.busMaster, false, 'the next open starts clear again');
  } finally {
    rig.close();
  }
});
