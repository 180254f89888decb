// The mock kernel holds a reference to every eventfd SET_IRQS binds, as the kernel's
// eventfd_ctx_fdget does: closing the user's fd does not stop delivery, a new file that
// reuses the fd number never gets the old binding's signals, and every reference is
// dropped when the binding ends. (A closed fd's counter cannot be read: the test keeps
// its own dup of the eventfd and reads that.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addon } from '../../src/addon/addon.js';
import { ioctls } from '../../src/uapi/index.js';
import { openFdCount } from './mock-helpers.js';
import { bar0Write, drain, IRQ, irqSet, openEdu, SET } from './pci-helpers.js';

const RAISE = 0x60;
const SET_IRQS = ioctls.VFIO_DEVICE_SET_IRQS;

function readDup(fd: number): bigint {
  try {
    return addon().eventfdRead(fd);
  } catch (err) {
    if ((err as { code?: string }).code === 'EAGAIN') return 0n;
    throw err;
  }
}

test('MSI keeps signalling an eventfd whose fd the user closed, and never the file that reuses the number', () => {
  const rig = openEdu();
  const efd = rig.sys.eventfd();
  const mine = addon().dup(efd);
  try {
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 1, [efd]));
    rig.sys.close(efd);
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 1)); // loopback
    assert.equal(readDup(mine), 1n);
    const reused = rig.sys.eventfd();
    assert.equal(reused, efd, 'the number is free again and the next eventfd takes it');
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.BOOL, IRQ.MSI, 0, 1, [1]));
    bar0Write(rig, RAISE, 0x1); // and from the device side: edu sends its MSI
    assert.equal(readDup(mine), 2n);
    assert.equal(drain(rig.sys, reused), 0n, 'the new file got nothing');
    rig.sys.close(reused);
  } finally {
    addon().close(mine);
    rig.close();
  }
});

test('REQ too; the references go when the bindings end, and with the device', () => {
  const rig = openEdu();
  const before = openFdCount();
  const msi = rig.sys.eventfd();
  const req = rig.sys.eventfd();
  const mine = addon().dup(req);
  try {
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 1, [msi]));
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.REQ, 0, 1, [req]));
    assert.equal(rig.sys.kernel.eventfds.references, 2);
    rig.sys.close(req);
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.NONE, IRQ.REQ, 0, 1));
    assert.equal(readDup(mine), 1n);
    rig.sys.ioctl(rig.fd, SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.REQ, 0, 1, [-1]));
    assert.equal(rig.sys.kernel.eventfds.references, 1, 'unbinding REQ dropped its reference');
    rig.sys.close(msi);
    assert.equal(rig.sys.kernel.eventfds.references, 1, 'closing the user\'s fd does not');
    rig.reopen(); // the last device fd closes: vfio_pci_core_disable drops every trigger
    assert.equal(rig.sys.kernel.eventfds.references, 0);
    assert.equal(openFdCount(), before + 1, 'only the test\'s own dup is left');
  } finally {
    addon().close(mine);
    rig.close();
  }
});
