// The simulated QEMU edu's BAR0 registers through the vfio-pci device fd: identity,
// liveness, the factorial unit (asynchronous, with its computing bit and interrupt),
// interrupt raise/acknowledge, and the DMA registers' access rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eduFactorial } from '../../src/sys/mock/devices/edu.js';
import { ioctls } from '../../src/uapi/index.js';
import { bar0Read, bar0Write, drain, EDU_ADDRESS, IRQ, irqSet, openEdu, SET, waitFor } from './pci-helpers.js';

test('sysfs shows edu\'s identity the way the real kernel formats it', () => {
  const rig = openEdu();
  try {
    const dir = `/sys/bus/pci/devices/${EDU_ADDRESS}`;
    assert.deepEqual(['vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'revision'].map((a) => rig.sys.sysfs.read(`${dir}/${a}`)),
      ['0x1234', '0x11e8', '0x1af4', '0x1100', '0x00ff00', '0x10']);
  } finally {
    rig.close();
  }
});

test('identification and liveness registers', () => {
  const rig = openEdu();
  try {
    assert.equal(bar0Read(rig, 0x00), 0x010000ed);
    bar0Write(rig, 0x00, 0); // read-only
    assert.equal(bar0Read(rig, 0x00), 0x010000ed);
    bar0Write(rig, 0x04, 0xa5a5a5a5);
    assert.equal(bar0Read(rig, 0x04), 0x5a5a5a5a);
    bar0Write(rig, 0x04, 0);
    assert.equal(bar0Read(rig, 0x04), 0xffffffff);
  } finally {
    rig.close();
  }
});

test('eduFactorial is n! modulo 2^32 like edu\'s 32-bit loop', () => {
  assert.equal(eduFactorial(0), 1);
  assert.equal(eduFactorial(1), 1);
  assert.equal(eduFactorial(12), 479001600);
  assert.equal(eduFactorial(13), 1932053504); // 6227020800 mod 2^32
  let slow = 1;
  for (let v = 33; v > 0; v--) slow = Math.imul(slow, v) >>> 0;
  assert.equal(eduFactorial(33), slow);
  assert.equal(eduFactorial(34), 0);
  assert.equal(eduFactorial(0xffffffff), 0);
});

test('factorial: computing bit while busy, writes ignored until done, then n!', async () => {
  const rig = openEdu();
  try {
    bar0Write(rig, 0x08, 5);
    assert.equal(bar0Read(rig, 0x20) & 0x1, 0x1);
    assert.equal(bar0Read(rig, 0x08), 5, 'reads the operand until the result is in');
    bar0Write(rig, 0x08, 6); // dropped: still computing
    await waitFor(() => (bar0Read(rig, 0x20) & 0x1) === 0);
    assert.equal(bar0Read(rig, 0x08), 120);
    assert.equal(bar0Read(rig, 0x24), 0, 'no interrupt unless status bit 7 asks for one');
  } finally {
    rig.close();
  }
});

test('factorial with status bit 7 raises interrupt 0x1 (INTx here)', async () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
    bar0Write(rig, 0x20, 0x81); // bit 0 (computing) is not writable
    assert.equal(bar0Read(rig, 0x20), 0x80);
    bar0Write(rig, 0x08, 4);
    await waitFor(() => bar0Read(rig, 0x24) === 0x1);
    assert.equal(bar0Read(rig, 0x08), 24);
    assert.equal(drain(rig.sys, efd), 1n);
    bar0Write(rig, 0x20, 0);
    assert.equal(bar0Read(rig, 0x20), 0);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('interrupt status: raise ORs bits in, acknowledge clears them', () => {
  const rig = openEdu();
  try {
    bar0Write(rig, 0x60, 0x5);
    bar0Write(rig, 0x60, 0x100);
    assert.equal(bar0Read(rig, 0x24), 0x105);
    bar0Write(rig, 0x64, 0x101);
    assert.equal(bar0Read(rig, 0x24), 0x4);
    bar0Write(rig, 0x64, 0xffffffff);
    assert.equal(bar0Read(rig, 0x24), 0);
    bar0Write(rig, 0x24, 0x7); // the status register itself is read-only
    assert.equal(bar0Read(rig, 0x24), 0);
  } finally {
    rig.close();
  }
});

test('DMA registers: 4-byte writes set the whole 64-bit register, the upper halves read ~0', () => {
  const rig = openEdu();
  try {
    bar0Write(rig, 0x80, 0x12345678);
    bar0Write(rig, 0x84, 0x9abcdef0); // no register at 0x84
    assert.equal(bar0Read(rig, 0x80), 0x12345678);
    assert.equal(bar0Read(rig, 0x84), 0xffffffff);
    bar0Write(rig, 0x88, 0x40000);
    bar0Write(rig, 0x90, 16);
    assert.equal(bar0Read(rig, 0x88), 0x40000);
    assert.equal(bar0Read(rig, 0x90), 16);
    bar0Write(rig, 0x98, 0x6); // no start bit: ignored, the command register keeps its value
    assert.equal(bar0Read(rig, 0x98), 0);
    const eight = new Uint8Array(8);
    rig.sys.pread(rig.fd, eight, 0x80n); // vfio-pci reads it as two 4-byte pieces
    assert.deepEqual([...eight], [0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff]);
  } finally {
    rig.close();
  }
});
