// VFIO_DEVICE_SET_IRQS and GET_IRQ_INFO as vfio-pci (6.1) answers them, on the reusable
// VfioPciIrqs with a fake eventfd sink: the validation table errno by errno, the
// dispatch rules, exclusivity of INTx/MSI/MSI-X, ERR/REQ, and multi-vector MSI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sysError } from '../../src/addon/errors.js';
import type { EventfdRef, EventfdSink } from '../../src/device/backend.js';
import { VfioPciIrqs, type IrqCounts } from '../../src/device/pci/irqs.js';
import { vfio_irq_info } from '../../src/uapi/index.js';
import { assertErrno, IRQ, irqSet, SET } from './pci-helpers.js';

/** Eventfds 100..109 exist; 50 is an open non-eventfd; everything else is closed. */
class FakeSink implements EventfdSink {
  readonly signals = new Map<number, number>();
  /** References taken and not released, by fd. */
  readonly live = new Map<number, number>();
  isEventfd(fd: number): boolean { return fd >= 100 && fd < 110; }
  isOpen(fd: number): boolean { return this.isEventfd(fd) || fd === 50; }
  acquire(fd: number): EventfdRef {
    if (!this.isOpen(fd)) throw sysError('EBADF', 'eventfd_ctx_fdget');
    if (!this.isEventfd(fd)) throw sysError('EINVAL', 'eventfd_ctx_fdget');
    this.live.set(fd, (this.live.get(fd) ?? 0) + 1);
    let held = true;
    return {
      signal: () => { if (held) this.signals.set(fd, (this.signals.get(fd) ?? 0) + 1); },
      release: () => {
        if (!held) return;
        held = false;
        const n = this.live.get(fd)! - 1;
        if (n) this.live.set(fd, n);
        else this.live.delete(fd);
      },
    };
  }
  take(fd: number): number {
    const n = this.signals.get(fd) ?? 0;
    this.signals.delete(fd);
    return n;
  }
}

const EDU: IrqCounts = { intx: 1, msi: 1, msix: 0, err: 0, req: 1 };
const PCIE4: IrqCounts = { intx: 1, msi: 4, msix: 8, err: 1, req: 1 };

function rig(counts: IrqCounts = EDU) {
  const sink = new FakeSink();
  const enabled: [number, number][] = [];
  const irqs = new VfioPciIrqs(counts, sink, {
    enableMsi: (index, nvec) => { enabled.push([index, nvec]); },
    disableMsi: (index) => { enabled.push([index, 0]); },
  });
  return { sink, irqs, enabled };
}

function info(irqs: VfioPciIrqs, index: number, argsz = 16): { flags: number; count: number } {
  const buf = vfio_irq_info.encode({ argsz, index });
  irqs.getIrqInfo(buf);
  return vfio_irq_info.decode(buf);
}

test('GET_IRQ_INFO: edu counts and flags; ERR is EINVAL on conventional PCI; index 5 EINVAL', () => {
  const { irqs } = rig();
  assert.deepEqual(info(irqs, IRQ.INTX), { argsz: 16, flags: 0x7, index: 0, count: 1 });
  assert.deepEqual(info(irqs, IRQ.MSI), { argsz: 16, flags: 0x9, index: 1, count: 1 });
  assert.deepEqual(info(irqs, IRQ.MSIX), { argsz: 16, flags: 0x9, index: 2, count: 0 });
  assert.deepEqual(info(irqs, IRQ.REQ), { argsz: 16, flags: 0x9, index: 4, count: 1 });
  assertErrno(() => info(irqs, IRQ.ERR), 'EINVAL');
  assertErrno(() => info(irqs, 5), 'EINVAL');
  assertErrno(() => info(irqs, IRQ.INTX, 15), 'EINVAL');
  assertErrno(() => irqs.getIrqInfo(new Uint8Array(12)), 'EFAULT');
  assert.deepEqual(info(rig(PCIE4).irqs, IRQ.ERR), { argsz: 16, flags: 0x9, index: 3, count: 1 });
});

test('SET_IRQS validation: every EINVAL of vfio_set_irqs_validate_and_prepare', () => {
  const { irqs } = rig();
  const T = SET.TRIGGER;
  const cases: [string, Uint8Array][] = [
    ['argsz < 20', irqSet(T | SET.NONE, IRQ.INTX, 0, 1, [], 19)],
    ['index 5', irqSet(T | SET.NONE, 5, 0, 0)],
    ['unknown flag bit', irqSet(T | SET.NONE | 0x40, IRQ.INTX, 0, 1)],
    ['count >= U32_MAX - start', irqSet(T | SET.NONE, IRQ.INTX, 1, 0xfffffffe)],
    ['start >= count of index', irqSet(T | SET.NONE, IRQ.INTX, 1, 0)],
    ['start + count > count of index', irqSet(T | SET.NONE, IRQ.INTX, 0, 2)],
    ['MSI-X with 0 vectors', irqSet(T | SET.NONE, IRQ.MSIX, 0, 0)],
    ['ERR on conventional PCI', irqSet(T | SET.EVENTFD, IRQ.ERR, 0, 1, [100])],
    ['no data type', irqSet(T, IRQ.INTX, 0, 1)],
    ['two data types', irqSet(T | SET.NONE | SET.BOOL, IRQ.INTX, 0, 1, [1])],
    ['payload shorter than count x 4', irqSet(T | SET.EVENTFD, IRQ.INTX, 0, 1, [100], 23)],
    ['payload shorter than count x 1', irqSet(T | SET.BOOL, IRQ.INTX, 0, 1, [1], 20)],
  ];
  for (const [what, buf] of cases) {
    assert.throws(() => irqs.setIrqs(buf), (err: unknown) => (err as { code?: string }).code === 'EINVAL', what);
  }
  // The kernel reads minsz, then the data argsz promises: a buffer shorter is EFAULT.
  assertErrno(() => irqs.setIrqs(new Uint8Array(16)), 'EFAULT');
  assertErrno(() => irqs.setIrqs(irqSet(T | SET.EVENTFD, IRQ.INTX, 0, 1, [], 24)), 'EFAULT');
  assert.equal(irqs.type, 'none');
});

test('SET_IRQS dispatch: bad actions ENOTTY, MASK/UNMASK only on INTx', () => {
  const { irqs } = rig(PCIE4);
  assertErrno(() => irqs.setIrqs(irqSet(SET.NONE, IRQ.INTX, 0, 1)), 'ENOTTY');
  assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.MASK | SET.UNMASK, IRQ.INTX, 0, 1)), 'ENOTTY');
  assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.MASK | SET.TRIGGER, IRQ.MSI, 0, 1)), 'ENOTTY');
  for (const index of [IRQ.MSI, IRQ.MSIX, IRQ.ERR, IRQ.REQ]) {
    assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.MASK, index, 0, 1)), 'ENOTTY');
    assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.UNMASK, index, 0, 1)), 'ENOTTY');
  }
  // INTx MASK/UNMASK need INTx enabled, start 0, count 1.
  assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.MASK, IRQ.INTX, 0, 1)), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.UNMASK, IRQ.INTX, 0, 1)), 'EINVAL');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  assertErrno(() => irqs.setIrqs(irqSet(SET.NONE | SET.MASK, IRQ.INTX, 0, 0)), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.EVENTFD | SET.MASK, IRQ.INTX, 0, 1, [101])), 'ENOTTY');
  assert.equal(irqs.setIrqs(irqSet(SET.NONE | SET.MASK, IRQ.INTX, 0, 1)), 0);
  assert.equal(irqs.intxIsMasked, true);
});

test('INTx trigger: enable, loopback, disable, and the EINVALs around them', () => {
  const { irqs, sink } = rig();
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 0)), 'EINVAL'); // disable while off
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 1)), 'EINVAL'); // loopback while off
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [7])), 'EBADF');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [50])), 'EINVAL');
  assert.equal(irqs.type, 'none');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  assert.equal(irqs.type, 'intx');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 1));
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.BOOL, IRQ.INTX, 0, 1, [0]));
  assert.equal(sink.take(100), 1);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.BOOL, IRQ.INTX, 0, 1, [1]));
  assert.equal(sink.take(100), 1);
  // A new fd replaces the old one; -1 leaves INTx enabled with none.
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [101]));
  assert.equal(irqs.trigger(0), 101);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [-1]));
  assert.equal(irqs.trigger(0), undefined);
  assert.equal(irqs.type, 'intx');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 0));
  assert.equal(irqs.type, 'none');
});

test('only one of INTx, MSI, MSI-X at a time', () => {
  const { irqs } = rig(PCIE4);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 1, [101])), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSIX, 0, 1, [101])), 'EINVAL');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 0));
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSIX, 0, 2, [101, 102]));
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100])), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 1, [100])), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 0)), 'EINVAL');
  assert.equal(irqs.type, 'msix');
});

test('MSI: count 0 while off is ERANGE; enable, loopback, rebinding, disable', () => {
  const { irqs, sink, enabled } = rig(PCIE4);
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 0)), 'ERANGE');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 0)), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 1)), 'EINVAL');
  // start 1 count 2 enables three vectors, vector 0 unbound.
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 1, 2, [101, 102]));
  assert.deepEqual(enabled, [[1, 3]]);
  assert.deepEqual([irqs.trigger(0), irqs.trigger(1), irqs.trigger(2)], [undefined, 101, 102]);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 3));
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.BOOL, IRQ.MSI, 1, 2, [0, 1]));
  assert.equal(sink.take(101), 1);
  assert.equal(sink.take(102), 2);
  // 6.1: vectors past those enabled are EINVAL (bind and loopback).
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 3, 1, [103])), 'EINVAL');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 2, 2)), 'EINVAL');
  // -1 unbinds one vector and leaves MSI on.
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 1, 1, [-1]));
  assert.equal(irqs.trigger(1), undefined);
  irqs.signalMsi(2);
  irqs.signalMsi(1);
  assert.equal(sink.take(102), 1);
  assert.equal(sink.take(101), 0);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSI, 0, 0));
  assert.equal(irqs.type, 'none');
  assert.deepEqual(enabled, [[1, 3], [1, 0]]);
});

test('MSI: a bad fd undoes the vectors of the call; a first enable is undone whole', () => {
  const { irqs } = rig(PCIE4);
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 2, [101, 7])), 'EBADF');
  assert.equal(irqs.type, 'none');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 0, 4, [100, 101, 102, 103]));
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSI, 1, 2, [104, 50])), 'EINVAL');
  assert.equal(irqs.type, 'msi');
  assert.deepEqual([0, 1, 2, 3].map((v) => irqs.trigger(v)), [100, undefined, undefined, 103]);
});

test('ERR and REQ: single trigger, loopback needs a bound fd, count 0 unbinds', () => {
  const { irqs, sink } = rig(PCIE4);
  for (const index of [IRQ.ERR, IRQ.REQ]) {
    assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, index, 0, 1)), 'EINVAL');
    assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, index, 0, 0)), 'EINVAL');
    assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.BOOL, index, 0, 0)), 'EINVAL');
    assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, index, 0, 0)), 'EINVAL');
    assert.equal(irqs.setIrqs(irqSet(SET.TRIGGER | SET.BOOL, index, 0, 1, [1])), 0); // nothing bound: no-op
    assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, index, 0, 1, [50])), 'EINVAL');
    irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, index, 0, 1, [105]));
    irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, index, 0, 1, [-2])); // ignored
    irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, index, 0, 1));
    irqs.setIrqs(irqSet(SET.TRIGGER | SET.BOOL, index, 0, 1, [1]));
    assert.equal(sink.take(105), 2);
    irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, index, 0, 0));
    assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, index, 0, 1)), 'EINVAL');
  }
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.REQ, 0, 1, [106]));
  assert.equal(irqs.requestRelease(), true);
  assert.equal(sink.take(106), 1);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.ERR, 0, 1, [107]));
  irqs.reportError();
  assert.equal(sink.take(107), 1);
});

test('INTx unmask eventfd: registered once (EBUSY after), removed by -1', () => {
  const { irqs } = rig();
  assertErrno(() => irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [101])), 'EINVAL');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  assertErrno(() => irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [7])), 'EBADF');
  assertErrno(() => irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [50])), 'EINVAL');
  irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [101]));
  assert.equal(irqs.hasUnmaskEventfd, true);
  assertErrno(() => irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [102])), 'EBUSY');
  irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [-1]));
  assert.equal(irqs.hasUnmaskEventfd, false);
});

test('INTx is level-triggered and automasked', () => {
  const { irqs, sink } = rig();
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  irqs.setIntxLevel(true);
  assert.equal(sink.take(100), 1);
  assert.equal(irqs.intxIsMasked, true);
  irqs.setIntxLevel(true); // still asserted, masked: nothing more
  assert.equal(sink.take(100), 0);
  // Unmasking while the line is still asserted sends it again and stays masked.
  irqs.setIrqs(irqSet(SET.UNMASK | SET.NONE, IRQ.INTX, 0, 1));
  assert.equal(sink.take(100), 1);
  assert.equal(irqs.intxIsMasked, true);
  irqs.setIntxLevel(false);
  irqs.setIrqs(irqSet(SET.UNMASK | SET.BOOL, IRQ.INTX, 0, 1, [1]));
  assert.equal(irqs.intxIsMasked, false);
  assert.equal(sink.take(100), 0);
  irqs.setIntxLevel(true);
  assert.equal(sink.take(100), 1);
  // The loopback fires even while masked.
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 1));
  assert.equal(sink.take(100), 1);
});

test('virtual INTx Disable masks INTx; clearing it re-sends a pending interrupt', () => {
  const { irqs, sink } = rig();
  irqs.setVirqDisabled(true);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  assert.equal(irqs.intxIsMasked, true, 'enabled masked while INTx Disable is set');
  irqs.setIntxLevel(true);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.INTX, 0, 1)); // loopback is dropped too
  assert.equal(sink.take(100), 0);
  irqs.setVirqDisabled(false);
  assert.equal(sink.take(100), 1);
});

test('binding a trigger while the line is already asserted delivers at once', () => {
  const { irqs, sink } = rig();
  irqs.setIntxLevel(true);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [100]));
  assert.equal(sink.take(100), 1);
  irqs.release();
  assert.equal(irqs.type, 'none');
});

test('bound eventfds are held by reference and released when rebound, unbound, disabled or released', () => {
  const { sink, irqs } = rig(PCIE4);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSIX, 0, 3, [100, 101, 102]));
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.ERR, 0, 1, [103]));
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.REQ, 0, 1, [104]));
  assert.deepEqual([...sink.live].sort(), [[100, 1], [101, 1], [102, 1], [103, 1], [104, 1]]);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.MSIX, 1, 2, [105, -1]));
  assert.deepEqual([...sink.live.keys()].sort(), [100, 103, 104, 105], '101 rebound to 105, 102 unbound');
  assertErrno(() => irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.ERR, 0, 1, [50])), 'EINVAL');
  assert.equal(sink.live.get(103), 1, 'a failed rebind keeps the old trigger');
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.ERR, 0, 1, [106]));
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.NONE, IRQ.MSIX, 0, 0));
  assert.deepEqual([...sink.live.keys()].sort(), [104, 106]);
  irqs.release();
  assert.deepEqual([...sink.live], []);
  irqs.setIrqs(irqSet(SET.TRIGGER | SET.EVENTFD, IRQ.INTX, 0, 1, [107]));
  irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [108]));
  assertErrno(() => irqs.setIrqs(irqSet(SET.UNMASK | SET.EVENTFD, IRQ.INTX, 0, 1, [109])), 'EBUSY');
  assert.deepEqual([...sink.live.keys()].sort(), [107, 108], 'the refused unmask eventfd is not kept');
  irqs.disable();
  assert.deepEqual([...sink.live], []);
});
