// Conformance: VFIO_DEVICE_SET_IRQS on vfio-pci (vfio_set_irqs_validate_and_prepare in
// vfio_main.c, then vfio_pci_set_irqs_ioctl in vfio_pci_intrs.c) for edu: INTx 1, MSI 1,
// MSI-X 0, ERR none (not PCI Express), REQ 1. Interrupts are observed with loopback
// triggers (DATA_NONE / DATA_BOOL), never by making the device raise one.
import { flags as F, pciIrq } from '../../src/uapi/index.js';
import {
  eventCount, MASK_NONE, setIrqs, TRIGGER_BOOL, TRIGGER_EVENTFD, TRIGGER_NONE, UNMASK_NONE,
} from './abi.js';
import { conformanceCase, fails, ok } from './outcome.js';
import { setupFile, withSession, type Session } from './target.js';

const t = setupFile();

const INTX = pciIrq.VFIO_PCI_INTX_IRQ_INDEX;
const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
const MSIX = pciIrq.VFIO_PCI_MSIX_IRQ_INDEX;
const ERR = pciIrq.VFIO_PCI_ERR_IRQ_INDEX;
const REQ = pciIrq.VFIO_PCI_REQ_IRQ_INDEX;

/** Opens the device and enables `index` with one fresh eventfd on vector 0. */
function enabled(s: Session, index: number): { device: number; group: number; container: number; efd: number } {
  const { device, group, container } = s.open();
  const efd = s.eventfd();
  const o = setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index, start: 0, count: 1, data: [efd] });
  if (!('ret' in o)) throw new Error(`enabling irq index ${index} failed: ${o.errno}`);
  return { device, group, container, efd };
}

const irqCase = (name: string, expected: unknown, observe: (s: Session) => unknown) =>
  conformanceCase(t, `irq: ${name}`, expected, () => withSession(t, observe));

// --- validation (vfio_set_irqs_validate_and_prepare): all EINVAL ---------------------

irqCase('SET_IRQS with argsz 19 is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 0, argsz: 19 }));

irqCase('SET_IRQS at index 5 is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: 5, start: 0, count: 0 }));

irqCase('SET_IRQS with an unknown flag bit is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE | (1 << 6), index: MSI, start: 0, count: 1 }));

irqCase('SET_IRQS with start past the vectors is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: MSI, start: 1, count: 1 }));

irqCase('SET_IRQS with start + count past the vectors is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 2, data: [-1, -1] }));

irqCase('SET_IRQS with count >= U32_MAX - start is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 0xffffffff }));

irqCase('SET_IRQS on MSI-X (0 vectors on edu) is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: MSIX, start: 0, count: 0 }));

irqCase('SET_IRQS on ERR (not PCI Express) is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_EVENTFD, index: ERR, start: 0, count: 1, data: [-1] }));

irqCase('SET_IRQS with two data types is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: F.VFIO_IRQ_SET_ACTION_TRIGGER | F.VFIO_IRQ_SET_DATA_NONE | F.VFIO_IRQ_SET_DATA_BOOL, index: MSI, start: 0, count: 1 }));

irqCase('SET_IRQS with no data type is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: F.VFIO_IRQ_SET_ACTION_TRIGGER, index: MSI, start: 0, count: 1 }));

irqCase('SET_IRQS with an eventfd payload shorter than count is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [-1], argsz: 20 }));

irqCase('SET_IRQS with a bool payload shorter than count is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_BOOL, index: INTX, start: 0, count: 1, data: [1], argsz: 20 }));

// --- dispatch (vfio_pci_set_irqs_ioctl): no handler is ENOTTY ------------------------

irqCase('SET_IRQS with no action is ENOTTY', fails('ENOTTY'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: F.VFIO_IRQ_SET_DATA_NONE, index: INTX, start: 0, count: 1 }));

irqCase('SET_IRQS with two actions is ENOTTY', fails('ENOTTY'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: F.VFIO_IRQ_SET_ACTION_MASK | F.VFIO_IRQ_SET_ACTION_UNMASK | F.VFIO_IRQ_SET_DATA_NONE, index: INTX, start: 0, count: 1 }));

irqCase('MSI MASK is ENOTTY', fails('ENOTTY'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: MASK_NONE, index: MSI, start: 0, count: 1 }));

irqCase('MSI UNMASK is ENOTTY', fails('ENOTTY'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: UNMASK_NONE, index: MSI, start: 0, count: 1 }));

irqCase('REQ MASK is ENOTTY', fails('ENOTTY'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: MASK_NONE, index: REQ, start: 0, count: 1 }));

// --- INTx --------------------------------------------------------------------------

irqCase('INTx MASK while INTx is off is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: MASK_NONE, index: INTX, start: 0, count: 1 }));

irqCase('INTx UNMASK while INTx is off is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: UNMASK_NONE, index: INTX, start: 0, count: 1 }));

irqCase('INTx disable (TRIGGER|NONE count 0) while INTx is off is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: INTX, start: 0, count: 0 }));

irqCase('INTx loopback while INTx is off is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: INTX, start: 0, count: 1 }));

irqCase('INTx enable with an eventfd returns 0', ok(0), (s) => {
  const { device } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: INTX, start: 0, count: 1, data: [s.eventfd()] });
});

irqCase('INTx enable with an fd that is not an eventfd is EINVAL', fails('EINVAL'), (s) => {
  const { device, container } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: INTX, start: 0, count: 1, data: [container] });
});

irqCase('INTx enable with a closed fd is EBADF', fails('EBADF'), (s) => {
  const { device } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: INTX, start: 0, count: 1, data: [s.closedFd()] });
});

irqCase('INTx loopback TRIGGER|NONE signals the eventfd once', { outcome: ok(0), count: 1 }, (s) => {
  const { device, efd } = enabled(s, INTX);
  const outcome = setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: INTX, start: 0, count: 1 });
  return { outcome, count: eventCount(s.sys, efd) };
});

irqCase('INTx loopback TRIGGER|BOOL 0 does not signal', { outcome: ok(0), count: 'EAGAIN' }, (s) => {
  const { device, efd } = enabled(s, INTX);
  const outcome = setIrqs(s.sys, device, { flags: TRIGGER_BOOL, index: INTX, start: 0, count: 1, data: [0] });
  return { outcome, count: eventCount(s.sys, efd) };
});

irqCase('INTx MASK, UNMASK and MASK|BOOL while enabled return 0',
  { mask: ok(0), unmask: ok(0), maskBool: ok(0), unmaskBool: ok(0) }, (s) => {
    const { device } = enabled(s, INTX);
    return {
      mask: setIrqs(s.sys, device, { flags: MASK_NONE, index: INTX, start: 0, count: 1 }),
      unmask: setIrqs(s.sys, device, { flags: UNMASK_NONE, index: INTX, start: 0, count: 1 }),
      maskBool: setIrqs(s.sys, device, { flags: F.VFIO_IRQ_SET_ACTION_MASK | F.VFIO_IRQ_SET_DATA_BOOL, index: INTX, start: 0, count: 1, data: [1] }),
      unmaskBool: setIrqs(s.sys, device, { flags: F.VFIO_IRQ_SET_ACTION_UNMASK | F.VFIO_IRQ_SET_DATA_BOOL, index: INTX, start: 0, count: 1, data: [1] }),
    };
  });

irqCase('INTx MASK with count 0 is EINVAL', fails('EINVAL'), (s) => {
  const { device } = enabled(s, INTX);
  return setIrqs(s.sys, device, { flags: MASK_NONE, index: INTX, start: 0, count: 0 });
});

irqCase('INTx MASK with an eventfd is ENOTTY', fails('ENOTTY'), (s) => {
  const { device, efd } = enabled(s, INTX);
  return setIrqs(s.sys, device, { flags: F.VFIO_IRQ_SET_ACTION_MASK | F.VFIO_IRQ_SET_DATA_EVENTFD, index: INTX, start: 0, count: 1, data: [efd] });
});

irqCase('INTx UNMASK with an eventfd registers it, -1 removes it', { add: ok(0), remove: ok(0) }, (s) => {
  const { device } = enabled(s, INTX);
  const unmaskFd = s.eventfd();
  const flags = F.VFIO_IRQ_SET_ACTION_UNMASK | F.VFIO_IRQ_SET_DATA_EVENTFD;
  return {
    add: setIrqs(s.sys, device, { flags, index: INTX, start: 0, count: 1, data: [unmaskFd] }),
    remove: setIrqs(s.sys, device, { flags, index: INTX, start: 0, count: 1, data: [-1] }),
  };
});

irqCase('INTx disable returns 0, then MASK is EINVAL', { disable: ok(0), mask: fails('EINVAL') }, (s) => {
  const { device } = enabled(s, INTX);
  return {
    disable: setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: INTX, start: 0, count: 0 }),
    mask: setIrqs(s.sys, device, { flags: MASK_NONE, index: INTX, start: 0, count: 1 }),
  };
});

irqCase('MSI enable while INTx is enabled is EINVAL', fails('EINVAL'), (s) => {
  const { device } = enabled(s, INTX);
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [s.eventfd()] });
});

// --- MSI ---------------------------------------------------------------------------

irqCase('MSI enable with an eventfd returns 0', ok(0), (s) => {
  const { device } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [s.eventfd()] });
});

irqCase('MSI loopback TRIGGER|NONE delivers a count of 1', { outcome: ok(0), count: 1 }, (s) => {
  const { device, efd } = enabled(s, MSI);
  const outcome = setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 });
  return { outcome, count: eventCount(s.sys, efd) };
});

irqCase('MSI loopback TRIGGER|BOOL 0 does not signal, 1 does',
  { zero: ok(0), afterZero: 'EAGAIN', one: ok(0), afterOne: 1 }, (s) => {
    const { device, efd } = enabled(s, MSI);
    const zero = setIrqs(s.sys, device, { flags: TRIGGER_BOOL, index: MSI, start: 0, count: 1, data: [0] });
    const afterZero = eventCount(s.sys, efd);
    const one = setIrqs(s.sys, device, { flags: TRIGGER_BOOL, index: MSI, start: 0, count: 1, data: [1] });
    return { zero, afterZero, one, afterOne: eventCount(s.sys, efd) };
  });

irqCase('MSI loopback while MSI is off is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 }));

irqCase('MSI disable (TRIGGER|NONE count 0) while MSI is off is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 0 }));

// vfio_msi_enable asks pci_alloc_irq_vectors for 1..0 vectors: ERANGE.
irqCase('MSI enable with count 0 is ERANGE', fails('ERANGE'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 0 }));

irqCase('MSI enable with an fd that is not an eventfd is EINVAL', fails('EINVAL'), (s) => {
  const { device, container } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [container] });
});

irqCase('MSI enable with a closed fd is EBADF', fails('EBADF'), (s) => {
  const { device } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [s.closedFd()] });
});

irqCase('MSI stays off after a failed enable', fails('EINVAL'), (s) => {
  const { device } = s.open();
  setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [s.closedFd()] });
  return setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 });
});

irqCase('MSI enable with fd -1 (vector left unbound) returns 0, loopback then returns 0',
  { enable: ok(0), loopback: ok(0) }, (s) => {
    const { device } = s.open();
    return {
      enable: setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [-1] }),
      loopback: setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 }),
    };
  });

irqCase('MSI rebinding vector 0 to another eventfd moves delivery',
  { rebind: ok(0), old: 'EAGAIN', new: 1 }, (s) => {
    const { device, efd } = enabled(s, MSI);
    const other = s.eventfd();
    const rebind = setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [other] });
    setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 });
    return { rebind, old: eventCount(s.sys, efd), new: eventCount(s.sys, other) };
  });

irqCase('MSI disable returns 0, then loopback is EINVAL', { disable: ok(0), loopback: fails('EINVAL') }, (s) => {
  const { device } = enabled(s, MSI);
  return {
    disable: setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 0 }),
    loopback: setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 }),
  };
});

irqCase('INTx enable while MSI is enabled is EINVAL', fails('EINVAL'), (s) => {
  const { device } = enabled(s, MSI);
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: INTX, start: 0, count: 1, data: [s.eventfd()] });
});

irqCase('MSI is off again after the device fd is closed and reopened', fails('EINVAL'), (s) => {
  const { device, group } = enabled(s, MSI);
  s.close(device);
  const again = s.getDeviceFd(group);
  return setIrqs(s.sys, again, { flags: TRIGGER_NONE, index: MSI, start: 0, count: 1 });
});

// --- REQ (vfio_pci_set_req_trigger -> vfio_pci_set_ctx_trigger_single) ----------------

irqCase('REQ bind an eventfd, loopback signals it once', { bind: ok(0), loopback: ok(0), count: 1 }, (s) => {
  const { device } = s.open();
  const efd = s.eventfd();
  const bind = setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: REQ, start: 0, count: 1, data: [efd] });
  const loopback = setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: REQ, start: 0, count: 1 });
  return { bind, loopback, count: eventCount(s.sys, efd) };
});

irqCase('REQ loopback with no eventfd bound is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_NONE, index: REQ, start: 0, count: 1 }));

irqCase('REQ unbind with -1 returns 0, then loopback is EINVAL', { unbind: ok(0), loopback: fails('EINVAL') }, (s) => {
  const { device } = enabled(s, REQ);
  return {
    unbind: setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: REQ, start: 0, count: 1, data: [-1] }),
    loopback: setIrqs(s.sys, device, { flags: TRIGGER_NONE, index: REQ, start: 0, count: 1 }),
  };
});

irqCase('REQ with start 1 is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_EVENTFD, index: REQ, start: 1, count: 1, data: [-1] }));

irqCase('REQ TRIGGER|EVENTFD with count 0 is EINVAL', fails('EINVAL'), (s) =>
  setIrqs(s.sys, s.open().device, { flags: TRIGGER_EVENTFD, index: REQ, start: 0, count: 0 }));

irqCase('REQ bind with an fd that is not an eventfd is EINVAL', fails('EINVAL'), (s) => {
  const { device, container } = s.open();
  return setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: REQ, start: 0, count: 1, data: [container] });
});

irqCase('REQ and MSI can be enabled together', { req: ok(0), msi: ok(0) }, (s) => {
  const { device } = s.open();
  return {
    req: setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: REQ, start: 0, count: 1, data: [s.eventfd()] }),
    msi: setIrqs(s.sys, device, { flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1, data: [s.eventfd()] }),
  };
});
