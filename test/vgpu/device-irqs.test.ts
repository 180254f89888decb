// Interrupts of a vGPU: vfio-pci's SET_IRQS rules errno by errno, and the vendor's
// raise(vector) reaching the user's eventfds with the masks honoured (MSI mask bits and
// pending bits, MSI-X vector and function masks with the PBA, INTx automask with the
// line held until the user's unmask), ERR and REQ, and everything off after release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ioctls } from '../../src/uapi/index.js';
import { openVgpu, withVgpu, assertErrno, drain, type VgpuRig } from './fixtures/device-rig.js';
import { REG } from './fixtures/test-model.js';
import { IRQ, SET, irqSet } from '../sys/pci-helpers.js';

/** The vendor raises `vector` (its doorbell register calls session.raise). */
const ring = (rig: VgpuRig, vector: number): void => rig.device.bar(0).write32(REG.DOORBELL, vector);

test('SET_IRQS on a vGPU: every refusal class of vfio-pci', () => {
  withVgpu((rig) => {
    const { sys } = rig;
    const fd = rig.device.fd;
    const set = (buf: Uint8Array): number => sys.ioctl(fd, ioctls.VFIO_DEVICE_SET_IRQS, buf);
    const T = SET.TRIGGER;
    const efd = sys.eventfd();
    const notEventfd = sys.open('/dev/null');
    try {
      const einval: [string, Uint8Array][] = [
        ['argsz < 20', irqSet(T | SET.NONE, IRQ.INTX, 0, 1, [], 19)],
        ['index 5', irqSet(T | SET.NONE, 5, 0, 0)],
        ['unknown flag', irqSet(T | SET.NONE | 0x40, IRQ.INTX, 0, 1)],
        ['start past the vectors', irqSet(T | SET.EVENTFD, IRQ.MSI, 4, 1, [efd])],
        ['start + count past the vectors', irqSet(T | SET.EVENTFD, IRQ.MSI, 2, 3, [efd, efd, efd])],
        ['no data type', irqSet(T, IRQ.INTX, 0, 1)],
        ['payload shorter than count', irqSet(T | SET.EVENTFD, IRQ.MSI, 0, 2, [efd, efd], 24)],
        ['an open fd that is not an eventfd', irqSet(T | SET.EVENTFD, IRQ.MSI, 0, 1, [notEventfd])],
        ['INTx mask while INTx is off', irqSet(SET.MASK | SET.NONE, IRQ.INTX, 0, 1)],
        ['loopback on MSI while MSI is off', irqSet(T | SET.NONE, IRQ.MSI, 0, 1)],
        ['REQ with count 2', irqSet(T | SET.EVENTFD, IRQ.REQ, 0, 2, [efd, efd])],
        ['REQ NONE with nothing bound', irqSet(T | SET.NONE, IRQ.REQ, 0, 1)],
      ];
      for (const [what, buf] of einval) assertErrno(() => set(buf), 'EINVAL', what);
      assertErrno(() => set(irqSet(SET.MASK | SET.NONE, IRQ.MSI, 0, 1)), 'ENOTTY', 'MSI cannot be masked by SET_IRQS');
      assertErrno(() => set(irqSet(SET.UNMASK | SET.NONE, IRQ.MSIX, 0, 1)), 'ENOTTY', 'nor MSI-X unmasked');
      assertErrno(() => set(irqSet(SET.MASK | SET.NONE, IRQ.REQ, 0, 1)), 'ENOTTY', 'REQ has only TRIGGER');
      assertErrno(() => set(irqSet(T | SET.MASK | SET.NONE, IRQ.INTX, 0, 1)), 'ENOTTY', 'two actions at once');
      assertErrno(() => set(irqSet(T | SET.EVENTFD, IRQ.MSI, 0, 1, [9999])), 'EBADF', 'a closed fd');
      assertErrno(() => set(irqSet(T | SET.EVENTFD, IRQ.MSI, 0, 0)), 'ERANGE', 'MSI enable with no vectors');
      assertErrno(() => sys.ioctl(fd, ioctls.VFIO_DEVICE_SET_IRQS, new Uint8Array(12)), 'EFAULT', 'shorter than the header');
      // One type at a time.
      set(irqSet(T | SET.EVENTFD, IRQ.MSI, 0, 1, [efd]));
      assertErrno(() => set(irqSet(T | SET.EVENTFD, IRQ.INTX, 0, 1, [efd])), 'EINVAL', 'INTx while MSI is on');
      assertErrno(() => set(irqSet(T | SET.EVENTFD, IRQ.MSIX, 0, 1, [efd])), 'EINVAL', 'MSI-X while MSI is on');
      set(irqSet(T | SET.NONE, IRQ.MSI, 0, 0));
      set(irqSet(T | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
      set(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [efd]));
      assertErrno(() => set(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [efd])), 'EBUSY', 'a second unmask eventfd');
      assertErrno(() => set(irqSet(SET.MASK | SET.EVENTFD, IRQ.INTX, 0, 1, [efd])), 'ENOTTY', 'masking by eventfd');
    } finally {
      sys.close(efd);
      sys.close(notEventfd);
    }
  });
});

test('ERR exists only on PCI Express: EINVAL on a conventional vGPU', () => {
  withVgpu((rig) => {
    const efd = rig.sys.eventfd();
    try {
      assertErrno(() => rig.sys.ioctl(rig.device.fd, ioctls.VFIO_DEVICE_SET_IRQS, irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.ERR, 0, 1, [efd])), 'EINVAL');
    } finally {
      rig.sys.close(efd);
    }
  }, { express: false });
});

test('MSI: raise reaches the vector\'s eventfd; a masked vector is pending until unmasked', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    device.config.write32(0xa0, 0xf);
    const [v0, v1] = device.irqs.enable(IRQ.MSI, { count: 2 }) as number[];
    assert.equal(device.config.read32(0xa0), 0xc, 'enabling unmasks the enabled vectors, as requesting their irqs does');
    ring(rig, 1);
    ring(rig, 1);
    assert.deepEqual([drain(sys, v0!), drain(sys, v1!)], [0n, 2n]);
    ring(rig, 2);
    ring(rig, 31);
    assert.deepEqual([drain(sys, v0!), drain(sys, v1!)], [0n, 0n], 'vectors not enabled are dropped');
    const c = device.config;
    c.write32(0xa0, 0x1);
    ring(rig, 0);
    assert.deepEqual([drain(sys, v0!), c.read32(0xa4)], [0n, 0x1], 'masked: pending bit set, nothing sent');
    c.write32(0xa0, 0x0);
    assert.deepEqual([drain(sys, v0!), c.read32(0xa4)], [1n, 0], 'unmasked: sent, pending cleared');
  });
});

test('MSI-X: enabling unmasks the enabled vectors as the host kernel does; a vector the user masks is pending in the PBA until unmasked; the function mask holds all', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    const bar4 = device.bar(4);
    const ctrl = (v: number): number => bar4.read32(v * 16 + 12);
    assert.deepEqual([ctrl(0), ctrl(7)], [1, 1], 'masked before any enable');
    device.irqs.enable(IRQ.MSIX, { count: 4 });
    assert.deepEqual([0, 3, 4, 7].map(ctrl), [0, 0, 1, 1], 'the four enabled vectors are unmasked');
    device.irqs.disable(IRQ.MSIX);
    assert.deepEqual([0, 3].map(ctrl), [1, 1], 'disabling masks them again');
    const fds = device.irqs.enable(IRQ.MSIX) as number[];
    assert.equal(fds.length, 8);
    ring(rig, 3);
    assert.deepEqual([drain(sys, fds[3]!), bar4.read32(0x800)], [1n, 0]);
    bar4.write32(3 * 16 + 12, 1);
    ring(rig, 3);
    assert.deepEqual([drain(sys, fds[3]!), bar4.read32(0x800)], [0n, 1 << 3]);
    bar4.write32(3 * 16 + 12, 0);
    assert.deepEqual([drain(sys, fds[3]!), bar4.read32(0x800)], [1n, 0]);
    ring(rig, 3);
    assert.equal(drain(sys, fds[3]!), 1n);
    device.config.write16(0x86, 0x4000); // Function Mask
    ring(rig, 3);
    assert.deepEqual([drain(sys, fds[3]!), bar4.read32(0x800)], [0n, 1 << 3]);
    device.config.write16(0x86, 0);
    assert.deepEqual([drain(sys, fds[3]!), bar4.read32(0x800)], [1n, 0]);
    ring(rig, 8);
    assert.deepEqual(fds.map((f) => drain(sys, f)), fds.map(() => 0n), 'vector 8 does not exist');
  });
});

test('INTx: sent and automasked; the line stays up (Interrupt Status) until the user unmasks; a raise meanwhile is sent at the unmask', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    const [efd] = device.irqs.enable(IRQ.INTX) as number[];
    const status = (): number => device.config.status & 0x08;
    ring(rig, 0);
    assert.deepEqual([drain(sys, efd!), status()], [1n, 0x08]);
    ring(rig, 0);
    assert.equal(drain(sys, efd!), 0n, 'automasked');
    device.irqs.unmask(IRQ.INTX);
    assert.deepEqual([drain(sys, efd!), status()], [1n, 0x08], 'the held raise is sent at the unmask');
    device.irqs.unmask(IRQ.INTX);
    assert.deepEqual([drain(sys, efd!), status()], [0n, 0], 'acknowledged: the line drops');
    device.irqs.unmask(IRQ.INTX);
    assert.equal(drain(sys, efd!), 0n);
    ring(rig, 0);
    assert.equal(drain(sys, efd!), 1n);
    device.irqs.unmask(IRQ.INTX);
    // A MASK from the user holds a raise until the unmask.
    device.irqs.mask(IRQ.INTX);
    ring(rig, 0);
    assert.deepEqual([drain(sys, efd!), status()], [0n, 0x08]);
    device.irqs.unmask(IRQ.INTX);
    assert.equal(drain(sys, efd!), 1n);
    device.irqs.unmask(IRQ.INTX);
    assert.equal(status(), 0);
  });
});

test('INTx: COMMAND INTx Disable masks it; clearing it sends what is held', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    const [efd] = device.irqs.enable(IRQ.INTX) as number[];
    device.config.command = 0x0403;
    ring(rig, 0);
    assert.equal(drain(sys, efd!), 0n);
    device.config.command = 0x0003;
    assert.equal(drain(sys, efd!), 1n);
    device.irqs.unmask(IRQ.INTX);
    assert.equal(device.config.status & 0x08, 0);
  });
});

test('raise with nothing enabled sends nothing; INTx raised then enabled is sent at the enable', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    ring(rig, 0);
    ring(rig, 1);
    const [efd] = device.irqs.enable(IRQ.INTX) as number[];
    assert.equal(drain(sys, efd!), 1n);
  });
});

test('MSI enabled while INTx is up: the line drops, raises go to MSI', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    ring(rig, 0);
    assert.equal(device.config.status & 0x08, 0x08);
    const [m0] = device.irqs.enable(IRQ.MSI, { count: 1 }) as number[];
    assert.equal(device.config.status & 0x08, 0);
    ring(rig, 0);
    assert.equal(drain(sys, m0!), 1n);
  });
});

test('ERR and REQ: loopback triggers, requestRelease signals REQ; both survive a reset', () => {
  withVgpu((rig) => {
    const { sys, device, vgpu } = rig;
    assert.equal(vgpu.requestRelease(), false, 'nobody listens yet');
    const [err] = device.irqs.enable(IRQ.ERR) as number[];
    const [req] = device.irqs.enable(IRQ.REQ) as number[];
    device.irqs.trigger(IRQ.ERR);
    assert.equal(drain(sys, err!), 1n);
    assert.equal(vgpu.requestRelease(), true);
    assert.equal(drain(sys, req!), 1n);
    device.reset();
    assert.equal(vgpu.requestRelease(), true);
    assert.equal(drain(sys, req!), 1n);
  });
});

test('reset: vendor reset runs, INTx/MSI/MSI-X are off and nothing stays pending', () => {
  withVgpu((rig) => {
    const { sys, device, model } = rig;
    const fds = device.irqs.enable(IRQ.MSIX) as number[];
    device.bar(4).write32(2 * 16 + 12, 1);
    ring(rig, 2);
    assert.equal(device.bar(4).read32(0x800), 1 << 2);
    device.reset();
    assert.equal(model.calls.at(-1), 'reset');
    assert.deepEqual([device.config.read16(0x86) & 0x8000, device.bar(4).read32(0x800)], [0, 0]);
    ring(rig, 2);
    assert.equal(drain(sys, fds[2]!), 0n);
    // The user can enable again after the reset.
    const [m0] = device.irqs.enable(IRQ.MSI, { count: 1 }) as number[];
    ring(rig, 0);
    assert.equal(drain(sys, m0!), 1n);
  });
});

test('after release the old session raises nothing and a new open starts with interrupts off', () => {
  const rig = openVgpu();
  try {
    const { sys, model } = rig;
    const session = model.session!;
    const efd = sys.eventfd();
    try {
      rig.device.irqs.enable(IRQ.MSI, { eventfds: [efd] });
      rig.handle.close();
      session.raise(0);
      assert.equal(drain(sys, efd), 0n);
      assertErrno(() => session.dma.pin(0n, 1, 3), 'EINVAL');
    } finally {
      sys.close(efd);
    }
  } finally {
    rig.model.dispose();
  }
});
