// vfio-pci's interrupt side (vfio_pci_intrs.c and the GET_IRQ_INFO/SET_IRQS ioctls of
// vfio_pci_core.c), as Linux 6.1 does it, for any device with vfio-pci's five indexes:
// INTx (level, automasked), MSI, MSI-X, ERR and REQ. One instance lives while the
// device is open; the device tells it its vector counts and hands it the EventfdSink,
// and drives it from the "hardware" side (INTx level, MSI messages, errors, requests).
// The vGPU core can use it as is for its virtual devices.
//
// A bound eventfd is held by reference (eventfd_ctx_fdget), so the user closing the fd
// does not stop delivery; every binding's reference is released when it ends.
import { isSysError, sysError, type ErrnoCode } from '../../addon/errors.js';
import { flags as F, pciIrq } from '../../uapi/constants.js';
import { vfio_irq_info, vfio_irq_set } from '../../uapi/structs.js';
import type { EventfdRef, EventfdSink } from '../backend.js';

const INTX = pciIrq.VFIO_PCI_INTX_IRQ_INDEX;
const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
const MSIX = pciIrq.VFIO_PCI_MSIX_IRQ_INDEX;
const ERR = pciIrq.VFIO_PCI_ERR_IRQ_INDEX;
const REQ = pciIrq.VFIO_PCI_REQ_IRQ_INDEX;
const NUM_IRQS = pciIrq.VFIO_PCI_NUM_IRQS;
/** irq_type when nothing is enabled (VFIO_PCI_NUM_IRQS in the kernel). */
const NONE = NUM_IRQS;
const U32_MAX = 0xffffffff;

/** How many vectors each index has (vfio_pci_get_irq_count). */
export interface IrqCounts {
  /** 1 when the function has an interrupt pin, else 0. */
  readonly intx: number;
  /** MSI vectors the function can send (0 without an MSI capability). */
  readonly msi: number;
  readonly msix: number;
  /** 1 for PCI Express functions: the ERR index exists only there. */
  readonly err: number;
  /** 1: every vfio-pci device has the REQ index. */
  readonly req: number;
}

/** What enabling and disabling interrupts does to the device (the PCI core's part). */
export interface IrqHardware {
  /**
   * pci_alloc_irq_vectors: MSI or MSI-X gets enabled in the device for `nvec` vectors
   * (for MSI, vfio-pci also records msi_qmax = log2 of nvec, rounded up, here).
   */
  enableMsi?(index: 1 | 2, nvec: number): void;
  /** pci_free_irq_vectors. */
  disableMsi?(index: 1 | 2): void;
  /**
   * The user unmasks INTx (vfio_pci_intx_unmask) while it is masked: called before the
   * line's level is looked at, so a device whose line is a latch the user acknowledges
   * by unmasking (the vGPU core's) can lower it here.
   */
  intxUnmasking?(): void;
  /** An INTx interrupt of the device reached the user's trigger eventfd (not a loopback). */
  intxSent?(): void;
}

export type IrqType = 'none' | 'intx' | 'msi' | 'msix';

const SETTABLE_FLAGS = F.VFIO_IRQ_SET_DATA_TYPE_MASK | F.VFIO_IRQ_SET_ACTION_TYPE_MASK;

function fail(code: ErrnoCode, detail: string): never {
  throw sysError(code, 'ioctl', 'VFIO_DEVICE_SET_IRQS', detail);
}

/** An eventfd bound to a vector: the fd number the user gave and the kernel's reference. */
interface Bound {
  readonly fd: number;
  readonly ref: EventfdRef;
}

function put(bound: Bound | undefined): undefined {
  bound?.ref.release();
  return undefined;
}

export class VfioPciIrqs {
  private irqType: number = NONE;
  /** Triggers of the active index, by vector (INTx uses vector 0). */
  private ctx: (Bound | undefined)[] = [];
  private numCtx = 0;
  private intxMasked = false;
  private intxLevel = false;
  private virqDisabled = false;
  private unmask: Bound | undefined;
  private errTrigger: Bound | undefined;
  private reqTrigger: Bound | undefined;

  constructor(readonly counts: IrqCounts, private readonly eventfds: EventfdSink, private readonly hw: IrqHardware = {}) {}

  /** The active interrupt type. */
  get type(): IrqType {
    return this.irqType === INTX ? 'intx' : this.irqType === MSI ? 'msi' : this.irqType === MSIX ? 'msix' : 'none';
  }

  /** Whether vfio-pci has INTx masked now (the automask or a MASK). */
  get intxIsMasked(): boolean {
    return this.intxMasked;
  }

  /** The fd (as the user gave it) bound to a vector of the active index, if any. */
  trigger(vector: number): number | undefined {
    return this.ctx[vector]?.fd;
  }

  /** Whether an unmask eventfd is registered (the mock never reads it: see README.md). */
  get hasUnmaskEventfd(): boolean {
    return this.unmask !== undefined;
  }

  count(index: number): number {
    switch (index) {
      case INTX: return this.counts.intx;
      case MSI: return this.counts.msi;
      case MSIX: return this.counts.msix;
      case ERR: return this.counts.err;
      case REQ: return this.counts.req;
      default: return 0;
    }
  }

  /** VFIO_DEVICE_GET_IRQ_INFO on a buffer holding struct vfio_irq_info. */
  getIrqInfo(buf: Uint8Array): number {
    const minsz = vfio_irq_info.size;
    if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', 'VFIO_DEVICE_GET_IRQ_INFO', 'buffer shorter than vfio_irq_info');
    const info = vfio_irq_info.decode(buf);
    if (info.argsz < minsz || info.index >= NUM_IRQS) throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_GET_IRQ_INFO');
    if (info.index === ERR && !this.counts.err) {
      throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_GET_IRQ_INFO', 'ERR exists only on PCI Express');
    }
    let flags = F.VFIO_IRQ_INFO_EVENTFD;
    if (info.index === INTX) flags |= F.VFIO_IRQ_INFO_MASKABLE | F.VFIO_IRQ_INFO_AUTOMASKED;
    else flags |= F.VFIO_IRQ_INFO_NORESIZE;
    vfio_irq_info.write(buf, { flags, count: this.count(info.index) });
    return 0;
  }

  /** VFIO_DEVICE_SET_IRQS on a buffer holding struct vfio_irq_set and its data. */
  setIrqs(buf: Uint8Array): number {
    const minsz = vfio_irq_set.size;
    if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', 'VFIO_DEVICE_SET_IRQS', 'buffer shorter than vfio_irq_set');
    const hdr = vfio_irq_set.decode(buf);
    const { flags, index, start, count } = hdr;
    // vfio_set_irqs_validate_and_prepare
    if (hdr.argsz < minsz || index >= NUM_IRQS || count >= U32_MAX - start || (flags & ~SETTABLE_FLAGS)) {
      fail('EINVAL', 'bad argsz, index, count or flags');
    }
    const max = this.count(index);
    if (start >= max || start + count > max) fail('EINVAL', `start ${start} count ${count} of ${max} vectors`);
    let size: number;
    switch (flags & F.VFIO_IRQ_SET_DATA_TYPE_MASK) {
      case F.VFIO_IRQ_SET_DATA_NONE: size = 0; break;
      case F.VFIO_IRQ_SET_DATA_BOOL: size = 1; break;
      case F.VFIO_IRQ_SET_DATA_EVENTFD: size = 4; break;
      default: fail('EINVAL', 'data type must be exactly one of NONE, BOOL, EVENTFD');
    }
    const dataSize = count * size;
    if (size && hdr.argsz - minsz < dataSize) fail('EINVAL', 'argsz too small for the data');
    if (minsz + dataSize > buf.byteLength) throw sysError('EFAULT', 'ioctl', 'VFIO_DEVICE_SET_IRQS', 'data runs past the buffer');
    const data = buf.subarray(minsz, minsz + dataSize);
    this.dispatch(flags, index, start, count, data);
    return 0;
  }

  // ---- the device side ----

  /** The INTx pin's level changed (or is re-stated): level-triggered delivery. */
  setIntxLevel(level: boolean): void {
    this.intxLevel = level;
    if (level) this.intxHandler();
  }

  /** The function sent MSI/MSI-X message `vector`: the bound eventfd is signalled. */
  signalMsi(vector: number): void {
    if (this.irqType !== MSI && this.irqType !== MSIX) return;
    this.signal(this.ctx[vector]);
  }

  /** An error was detected (AER): the ERR eventfd, if any, is signalled. */
  reportError(): void {
    this.signal(this.errTrigger);
  }

  /** The host asks the user to release the device: the REQ eventfd, if any. */
  requestRelease(): boolean {
    if (this.reqTrigger === undefined) return false;
    this.signal(this.reqTrigger);
    return true;
  }

  /**
   * The virtual COMMAND INTx Disable bit (from a config write). Setting it masks INTx;
   * clearing it unmasks, and a still-pending interrupt is re-sent.
   */
  setVirqDisabled(disabled: boolean): void {
    if (disabled && !this.virqDisabled) {
      this.virqDisabled = true;
      this.intxMask();
    } else if (!disabled && this.virqDisabled) {
      this.virqDisabled = false;
      this.intxUnmask();
    }
  }

  /** vfio_pci_core_disable: everything off, every eventfd dropped. */
  release(): void {
    this.disable();
    this.errTrigger = put(this.errTrigger);
    this.reqTrigger = put(this.reqTrigger);
    this.virqDisabled = false;
  }

  /**
   * INTx, MSI or MSI-X, whichever is active, disabled with its eventfds (as a function
   * reset leaves the function); the ERR and REQ eventfds stay bound.
   */
  disable(): void {
    if (this.irqType === INTX) this.intxDisable();
    else if (this.irqType === MSI || this.irqType === MSIX) this.msiDisable(this.irqType);
  }

  // ---- vfio_pci_set_irqs_ioctl ----

  private dispatch(flags: number, index: number, start: number, count: number, data: Uint8Array): void {
    const action = flags & F.VFIO_IRQ_SET_ACTION_TYPE_MASK;
    const isMask = action === F.VFIO_IRQ_SET_ACTION_MASK;
    const isUnmask = action === F.VFIO_IRQ_SET_ACTION_UNMASK;
    const isTrigger = action === F.VFIO_IRQ_SET_ACTION_TRIGGER;
    const notImplemented = (): never => fail('ENOTTY', 'no such action for this index');
    switch (index) {
      case INTX:
        if (isMask) return this.setIntxMask(start, count, flags, data);
        if (isUnmask) return this.setIntxUnmask(start, count, flags, data);
        if (isTrigger) return this.setIntxTrigger(start, count, flags, data);
        return notImplemented();
      case MSI:
      case MSIX:
        if (isTrigger) return this.setMsiTrigger(index, start, count, flags, data);
        return notImplemented();
      case ERR:
        if (isTrigger && this.counts.err) return this.setErrTrigger(start, count, flags, data);
        return notImplemented();
      case REQ:
        if (isTrigger) return this.setReqTrigger(start, count, flags, data);
        return notImplemented();
      default:
        return notImplemented();
    }
  }

  private setIntxMask(start: number, count: number, flags: number, data: Uint8Array): void {
    if (this.irqType !== INTX || start !== 0 || count !== 1) fail('EINVAL', 'INTx mask needs INTx enabled, start 0, count 1');
    if (flags & F.VFIO_IRQ_SET_DATA_NONE) this.intxMask();
    else if (flags & F.VFIO_IRQ_SET_DATA_BOOL) { if (data[0]) this.intxMask(); }
    else fail('ENOTTY', 'masking by eventfd is not implemented');
  }

  private setIntxUnmask(start: number, count: number, flags: number, data: Uint8Array): void {
    if (this.irqType !== INTX || start !== 0 || count !== 1) fail('EINVAL', 'INTx unmask needs INTx enabled, start 0, count 1');
    if (flags & F.VFIO_IRQ_SET_DATA_NONE) this.intxUnmask();
    else if (flags & F.VFIO_IRQ_SET_DATA_BOOL) { if (data[0]) this.intxUnmask(); }
    else {
      const fd = fdAt(data, 0);
      if (fd >= 0) {
        // vfio_virqfd_enable: the eventfd first, then "already registered" is EBUSY.
        const bound = this.bind(fd);
        if (this.unmask !== undefined) {
          put(bound);
          fail('EBUSY', 'an unmask eventfd is already registered');
        }
        this.unmask = bound;
      } else {
        this.unmask = put(this.unmask);
      }
    }
  }

  private setIntxTrigger(start: number, count: number, flags: number, data: Uint8Array): void {
    if (this.irqType === INTX && count === 0 && (flags & F.VFIO_IRQ_SET_DATA_NONE)) {
      this.intxDisable();
      return;
    }
    if (!(this.irqType === INTX || this.irqType === NONE) || start !== 0 || count !== 1) {
      fail('EINVAL', 'INTx trigger needs no other type active, start 0, count 1');
    }
    if (flags & F.VFIO_IRQ_SET_DATA_EVENTFD) {
      const fd = fdAt(data, 0);
      if (this.irqType === INTX) {
        this.intxSetSignal(fd);
        return;
      }
      this.intxEnable();
      try {
        this.intxSetSignal(fd);
      } catch (err) {
        this.intxDisable();
        throw err;
      }
      return;
    }
    if (this.irqType !== INTX) fail('EINVAL', 'INTx is not enabled');
    if ((flags & F.VFIO_IRQ_SET_DATA_NONE) || data[0]) this.sendIntxEventfd();
  }

  private setMsiTrigger(index: 1 | 2, start: number, count: number, flags: number, data: Uint8Array): void {
    if (this.irqType === index && count === 0 && (flags & F.VFIO_IRQ_SET_DATA_NONE)) {
      this.msiDisable(index);
      return;
    }
    if (!(this.irqType === index || this.irqType === NONE)) fail('EINVAL', 'another interrupt type is enabled');
    if (flags & F.VFIO_IRQ_SET_DATA_EVENTFD) {
      const fds = Array.from({ length: count }, (_, i) => fdAt(data, i));
      if (this.irqType === index) {
        this.msiSetBlock(start, count, fds);
        return;
      }
      this.msiEnable(index, start + count);
      try {
        this.msiSetBlock(start, count, fds);
      } catch (err) {
        this.msiDisable(index);
        throw err;
      }
      return;
    }
    if (this.irqType !== index || start + count > this.numCtx) fail('EINVAL', 'loopback needs the index enabled and in range');
    for (let i = start; i < start + count; i++) {
      if ((flags & F.VFIO_IRQ_SET_DATA_NONE) || data[i - start]) this.signal(this.ctx[i]);
    }
  }

  private setErrTrigger(start: number, count: number, flags: number, data: Uint8Array): void {
    if (start !== 0 || count > 1) fail('EINVAL', 'ERR takes start 0, count 0 or 1');
    this.errTrigger = this.ctxTriggerSingle(this.errTrigger, count, flags, data);
  }

  private setReqTrigger(start: number, count: number, flags: number, data: Uint8Array): void {
    if (start !== 0 || count > 1) fail('EINVAL', 'REQ takes start 0, count 0 or 1');
    this.reqTrigger = this.ctxTriggerSingle(this.reqTrigger, count, flags, data);
  }

  /** vfio_pci_set_ctx_trigger_single: returns the new trigger. */
  private ctxTriggerSingle(cur: Bound | undefined, count: number, flags: number, data: Uint8Array): Bound | undefined {
    if (flags & F.VFIO_IRQ_SET_DATA_NONE) {
      if (cur === undefined) fail('EINVAL', 'no eventfd is bound');
      if (count) {
        this.signal(cur);
        return cur;
      }
      return put(cur);
    }
    if (flags & F.VFIO_IRQ_SET_DATA_BOOL) {
      if (!count) fail('EINVAL', 'BOOL needs count 1');
      if (data[0]) this.signal(cur);
      return cur;
    }
    if (!count) fail('EINVAL', 'EVENTFD needs count 1');
    const fd = fdAt(data, 0);
    if (fd === -1) return put(cur);
    if (fd < 0) return cur;
    const bound = this.bind(fd);
    put(cur);
    return bound;
  }

  // ---- INTx (a PCI 2.3 device: masking uses its INTx Disable bit) ----

  private intxEnable(): void {
    if (this.irqType !== NONE) fail('EINVAL', 'another interrupt type is enabled');
    this.ctx = [undefined];
    this.numCtx = 1;
    this.intxMasked = this.virqDisabled;
    this.irqType = INTX;
  }

  /** vfio_intx_set_signal (6.1): the old trigger goes first, then the new one is looked up. */
  private intxSetSignal(fd: number): void {
    this.ctx[0] = put(this.ctx[0]);
    if (fd < 0) return;
    this.ctx[0] = this.bind(fd);
    // request_irq on a level interrupt that is already asserted runs the handler now.
    if (this.intxLevel) this.intxHandler();
  }

  private intxDisable(): void {
    this.unmask = put(this.unmask);
    this.ctx.forEach(put);
    this.ctx = [];
    this.numCtx = 0;
    this.intxMasked = false;
    this.irqType = NONE;
  }

  /** vfio_intx_handler: runs while the line is asserted, unmasked and a handler exists (6.1: a trigger). */
  private intxHandler(): void {
    if (this.irqType !== INTX || this.ctx[0] === undefined || this.intxMasked || !this.intxLevel) return;
    this.intxMasked = true;
    this.sendIntxEventfd();
    this.hw.intxSent?.();
  }

  private sendIntxEventfd(): void {
    if (this.irqType === INTX && !this.virqDisabled) this.signal(this.ctx[0]);
  }

  private intxMask(): void {
    if (this.irqType === INTX && !this.intxMasked) this.intxMasked = true;
  }

  /** vfio_pci_intx_unmask: a still-pending interrupt stays masked and is sent again. */
  private intxUnmask(): void {
    if (this.irqType !== INTX || !this.intxMasked || this.virqDisabled) return;
    this.hw.intxUnmasking?.();
    if (this.intxLevel) {
      this.sendIntxEventfd();
      if (this.ctx[0] !== undefined) this.hw.intxSent?.();
      return;
    }
    this.intxMasked = false;
  }

  // ---- MSI / MSI-X ----

  private msiEnable(index: 1 | 2, nvec: number): void {
    if (this.irqType !== NONE) fail('EINVAL', 'another interrupt type is enabled');
    // pci_alloc_irq_vectors(pdev, 1, nvec): fewer than one vector asked for is ERANGE.
    if (nvec < 1) fail('ERANGE', 'no vectors requested');
    this.hw.enableMsi?.(index, nvec);
    this.ctx = new Array<Bound | undefined>(nvec).fill(undefined);
    this.numCtx = nvec;
    this.irqType = index;
  }

  /** vfio_msi_set_block (6.1): binds fds[i] to start + i; on failure unbinds what it did. */
  private msiSetBlock(start: number, count: number, fds: readonly number[]): void {
    if (start >= this.numCtx || start + count > this.numCtx) fail('EINVAL', 'vectors past those enabled');
    let j = start;
    try {
      for (let i = 0; i < count; i++, j++) this.msiSetVectorSignal(j, fds[i]!);
    } catch (err) {
      for (let k = j; k >= start; k--) this.ctx[k] = put(this.ctx[k]);
      throw err;
    }
  }

  private msiSetVectorSignal(vector: number, fd: number): void {
    this.ctx[vector] = put(this.ctx[vector]);
    if (fd < 0) return;
    this.ctx[vector] = this.bind(fd);
  }

  private msiDisable(index: 1 | 2): void {
    this.ctx.forEach(put);
    this.ctx = [];
    this.numCtx = 0;
    this.hw.disableMsi?.(index);
    this.irqType = NONE;
  }

  // ---- eventfds ----

  /** eventfd_ctx_fdget: a closed fd is EBADF, an open fd that is not an eventfd EINVAL. */
  private bind(fd: number): Bound {
    try {
      return { fd, ref: this.eventfds.acquire(fd) };
    } catch (err) {
      if (isSysError(err)) fail(err.code, `fd ${fd}: ${err.message}`);
      throw err;
    }
  }

  /** eventfd_signal on a bound trigger, if there is one; it cannot fail. */
  private signal(bound: Bound | undefined): void {
    try {
      bound?.ref.signal();
    } catch {
      // eventfd_signal() has no failure to report to a device
    }
  }
}

function fdAt(data: Uint8Array, i: number): number {
  return new DataView(data.buffer, data.byteOffset + 4 * i, 4).getInt32(0, true);
}
