import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openPciDevice } from '../../src/vfio/index.js';
import { pciIrq } from '../../src/uapi/constants.js';
import { EDU, fdCount, ioctlError, mockSys } from './helpers.js';

const { EINVAL, ENOTTY } = constants.errno;
const INTX = pciIrq.VFIO_PCI_INTX_IRQ_INDEX;
const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
const MSIX = pciIrq.VFIO_PCI_MSIX_IRQ_INDEX;

test('MSI: enable binds an eventfd, a loopback trigger reaches the listener with the count', async () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { irqs } = handle.device;
    const fds = irqs.enable(MSI);
    assert.equal(fds.length, 1);
    assert.equal(irqs.eventfd(MSI, 0), fds[0]);
    assert.equal(irqs.enabled(MSI), true);
    const seen: bigint[] = [];
    const listener = irqs.on(MSI, 0, (count) => seen.push(count));
    const next = irqs.once(MSI, 0, 2000);
    irqs.trigger(MSI, 0);
    irqs.trigger(MSI, 0);
    assert.equal(await next, 2n, 'two interrupts before the loop ran: one callback, count 2');
    assert.deepEqual(seen, [2n]);
    listener.close();
    listener.close();
    irqs.trigger(MSI, 0);
    assert.equal(await irqs.once(MSI, 0, 2000), 1n);
    assert.deepEqual(seen, [2n], 'a closed listener hears nothing');
  } finally {
    handle.close();
  }
});

test('SET_IRQS refusals come back named, and a failed enable leaks no eventfd', () => {
  const sys = mockSys();
  const handle = openPciDevice(sys, EDU);
  try {
    const { irqs } = handle.device;
    assert.throws(() => irqs.disable(MSI), ioctlError('EINVAL', EINVAL, 'VFIO_DEVICE_SET_IRQS'));
    assert.throws(() => irqs.enable(MSIX), ioctlError('EINVAL', EINVAL, 'VFIO_DEVICE_SET_IRQS'));
    assert.throws(() => irqs.on(MSI, 0, () => {}), { code: 'EINVAL' });
    irqs.enable(MSI);
    assert.throws(() => irqs.mask(MSI), ioctlError('ENOTTY', ENOTTY, 'VFIO_DEVICE_SET_IRQS'));
    const before = fdCount();
    assert.throws(() => irqs.enable(INTX), ioctlError('EINVAL', EINVAL, 'VFIO_DEVICE_SET_IRQS'), 'only one of INTx/MSI/MSI-X');
    assert.equal(fdCount(), before);
    assert.equal(irqs.enabled(INTX), false);
    irqs.disable(MSI);
    assert.equal(irqs.enabled(MSI), false);
    assert.equal(fdCount(), before - 1, 'the MSI eventfd made by enable() is closed');
  } finally {
    handle.close();
  }
});

test('INTx: enable, loopback, mask and unmask', async () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { irqs } = handle.device;
    irqs.enable(INTX);
    const fired = irqs.once(INTX, 0, 2000);
    irqs.trigger(INTX);
    assert.equal(await fired, 1n);
    irqs.mask(INTX);
    irqs.unmask(INTX);
    assert.throws(() => irqs.mask(INTX, 0, 2), ioctlError('EINVAL', EINVAL, 'VFIO_DEVICE_SET_IRQS'));
    irqs.disable(INTX);
  } finally {
    handle.close();
  }
});

test('once() rejects with ETIMEDOUT when nothing fires', async () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    handle.device.irqs.enable(MSI);
    await assert.rejects(handle.device.irqs.once(MSI, 0, 20), { code: 'ETIMEDOUT' });
  } finally {
    handle.close();
  }
});

test('eventfds given by the caller are bound but stay the caller\'s', () => {
  const sys = mockSys();
  const handle = openPciDevice(sys, EDU);
  const fd = sys.eventfd();
  try {
    const { irqs } = handle.device;
    assert.deepEqual(irqs.enable(MSI, { eventfds: [fd] }), [fd]);
    irqs.trigger(MSI);
    assert.equal(sys.eventfdRead(fd), 1n);
    irqs.disable(MSI);
    sys.eventfdWrite(fd, 5n);
    assert.equal(sys.eventfdRead(fd), 5n, 'still open after disable');
    irqs.enable(MSI, { eventfds: [fd] });
  } finally {
    handle.close();
  }
  sys.eventfdWrite(fd, 1n);
  assert.equal(sys.eventfdRead(fd), 1n, 'still open after the device closed');
  sys.close(fd);
});

test('re-enabling a vector keeps its listeners on the new eventfd', async () => {
  const handle = openPciDevice(mockSys(), EDU);
  try {
    const { irqs } = handle.device;
    const [first] = irqs.enable(MSI);
    const seen: bigint[] = [];
    irqs.on(MSI, 0, (n) => seen.push(n));
    const [second] = irqs.enable(MSI);
    assert.notEqual(irqs.eventfd(MSI), undefined);
    assert.equal(irqs.eventfd(MSI), second);
    assert.ok(first !== undefined && second !== undefined);
    const fired = irqs.once(MSI, 0, 2000);
    irqs.trigger(MSI);
    await fired;
    assert.deepEqual(seen, [1n]);
  } finally {
    handle.close();
  }
});

const child = fileURLToPath(new URL('./fixtures/irq-child.js', import.meta.url));

for (const mode of ['unref', 'irqs-unref'] as const) {
  test(`an unref'd listener lets the process exit (${mode})`, () => {
    const r = spawnSync(process.execPath, [child, mode], { timeout: 10_000, encoding: 'utf8' });
    assert.equal(r.stdout, 'listening\n');
    assert.equal(r.signal, null);
    assert.equal(r.status, 0, r.stderr);
  });
}

test('a ref\'d listener keeps the process alive', () => {
  const r = spawnSync(process.execPath, [child, 'ref'], { timeout: 1500, encoding: 'utf8' });
  assert.equal(r.stdout, 'listening\n');
  assert.equal(r.signal, 'SIGTERM', 'still running when the timeout killed it');
});
