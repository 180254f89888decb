// Interrupt delivery from the simulated edu to real eventfds through vfio-pci: INTx
// (level, automasked, unmasked by ioctl, gated by the virtual INTx Disable bit, shown
// in STATUS) and MSI (one signal per message, INTx quiet).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ioctls } from '../../src/uapi/index.js';
import { bar0Write, cfgRead, cfgWrite, drain, IRQ, irqSet, openEdu, SET } from './pci-helpers.js';

const RAISE = 0x60;
const ACK = 0x64;

test('INTx: raised once, automasked until UNMASK, re-sent while still pending', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
    bar0Write(rig, RAISE, 0x10);
    assert.equal(drain(rig.sys, efd), 1n);
    assert.equal(cfgRead(rig, 0x06, 2) & 0x08, 0x08, 'STATUS shows the pending interrupt');
    bar0Write(rig, RAISE, 0x20); // the line is already high and masked
    assert.equal(drain(rig.sys, efd), 0n);
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.UNMASK | SET.NONE, IRQ.INTX, 0, 1));
    assert.equal(drain(rig.sys, efd), 1n, 'still asserted at unmask: sent again');
    bar0Write(rig, ACK, 0x30); // status 0: edu lowers its pin
    assert.equal(cfgRead(rig, 0x06, 2) & 0x08, 0);
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.UNMASK | SET.NONE, IRQ.INTX, 0, 1));
    assert.equal(drain(rig.sys, efd), 0n);
    bar0Write(rig, RAISE, 0x1);
    assert.equal(drain(rig.sys, efd), 1n);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('INTx: MASK by ioctl holds a new interrupt back until UNMASK', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.MASK | SET.BOOL, IRQ.INTX, 0, 1, [1]));
    bar0Write(rig, RAISE, 0x1);
    assert.equal(drain(rig.sys, efd), 0n);
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.UNMASK | SET.NONE, IRQ.INTX, 0, 1));
    assert.equal(drain(rig.sys, efd), 1n);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('INTx: the virtual INTx Disable bit in COMMAND masks delivery; clearing it delivers what is pending', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
    const cmd = cfgRead(rig, 0x04, 2);
    cfgWrite(rig, 0x04, 2, cmd | 0x400);
    bar0Write(rig, RAISE, 0x1);
    assert.equal(drain(rig.sys, efd), 0n);
    cfgWrite(rig, 0x05, 1, (cmd >> 8) & ~0x04); // a byte write to COMMAND's upper half
    assert.equal(drain(rig.sys, efd), 1n);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('INTx: enabling while edu already asserts its pin delivers at once', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    bar0Write(rig, RAISE, 0x1);
    assert.equal(drain(rig.sys, efd), 0n);
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
    assert.equal(drain(rig.sys, efd), 1n);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('MSI: each raise is one message to the eventfd; no automask; INTx stays quiet', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 1, [efd]));
    assert.equal(rig.model.config.msiEnabled(), true, 'the PCI core enabled MSI in the device');
    bar0Write(rig, RAISE, 0x1);
    bar0Write(rig, RAISE, 0x2);
    assert.equal(drain(rig.sys, efd), 2n);
    assert.equal(cfgRead(rig, 0x06, 2) & 0x08, 0);
    // The user's view of the MSI enable bit is its own until it writes it.
    assert.equal(cfgRead(rig, 0x42, 2), 0x0080);
    cfgWrite(rig, 0x42, 2, 0x0081);
    assert.equal(cfgRead(rig, 0x42, 2), 0x0081);
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 0));
    assert.equal(rig.model.config.msiEnabled(), false);
    bar0Write(rig, RAISE, 0x4); // back on INTx, which nobody enabled
    assert.equal(drain(rig.sys, efd), 0n);
    assert.equal(cfgRead(rig, 0x06, 2) & 0x08, 0x08);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});

test('closing the device drops every trigger and turns MSI off', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  try {
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 1, [efd]));
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.REQ, 0, 1, [efd]));
    rig.reopen();
    assert.equal(rig.model.config.msiEnabled(), false);
    assert.equal(rig.edu.requestRelease(), false);
    bar0Write(rig, RAISE, 0x1);
    assert.equal(drain(rig.sys, efd), 0n);
  } finally {
    rig.sys.close(efd);
    rig.close();
  }
});
