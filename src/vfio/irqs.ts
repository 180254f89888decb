// A device's interrupts: VFIO_DEVICE_SET_IRQS with eventfds, and listeners that watch
// those eventfds on the event loop. `device.irqs.enable(MSI)` then
// `device.irqs.on(MSI, 0, (count) => ...)`.
import { inspect } from 'node:util';
import type { FdWatcher, SysLayer } from '../sys/types.js';
import { isSysError, sysError } from '../addon/errors.js';
import { flags } from '../uapi/constants.js';
import { vfio_irq_info, vfio_irq_set } from '../uapi/structs.js';
import { vfioIoctl } from './ioctl.js';
import { irqName } from './names.js';

export interface IrqInfo {
  index: number;
  name: string;
  flags: number;
  /** Vectors the index offers (0: none). */
  count: number;
  eventfd: boolean;
  maskable: boolean;
  automasked: boolean;
  noresize: boolean;
}

export interface IrqEnableOptions {
  /** First vector to bind; default 0. */
  start?: number;
  /** Vectors to bind; default all the index offers (or eventfds.length). */
  count?: number;
  /** The caller's own eventfds (-1 leaves a vector unbound); they stay the caller's to close. */
  eventfds?: readonly number[];
}

export interface IrqListener {
  /** Stops this listener; the vector stays enabled. Idempotent. */
  close(): void;
  /** Keeps the process alive while listening (the default unless irqs.unref() was called). */
  ref(): void;
  /** Lets the process exit while listening. */
  unref(): void;
}

export type IrqCallback = (count: bigint) => void;

interface Vector {
  fd: number;
  /** We made the eventfd, so we close it. */
  owned: boolean;
  watcher: FdWatcher | undefined;
  listeners: Set<Listener>;
}

interface Listener {
  callback: IrqCallback;
  refed: boolean;
}

/** What Irqs needs from its device. */
export interface IrqHost {
  readonly sys: SysLayer;
  readonly fd: number;
}

/** Decodes VFIO_DEVICE_GET_IRQ_INFO's answer. */
export function decodeIrqInfo(buf: Uint8Array, pci: boolean): IrqInfo {
  const i = vfio_irq_info.decode(buf);
  return {
    index: i.index,
    name: irqName(i.index, pci),
    flags: i.flags,
    count: i.count,
    eventfd: (i.flags & flags.VFIO_IRQ_INFO_EVENTFD) !== 0,
    maskable: (i.flags & flags.VFIO_IRQ_INFO_MASKABLE) !== 0,
    automasked: (i.flags & flags.VFIO_IRQ_INFO_AUTOMASKED) !== 0,
    noresize: (i.flags & flags.VFIO_IRQ_INFO_NORESIZE) !== 0,
  };
}

export class Irqs {
  private readonly active = new Map<number, Map<number, Vector>>();
  private keepAlive = true;

  constructor(private readonly host: IrqHost, private readonly infoByIndex: ReadonlyMap<number, IrqInfo>) {}

  /** The indexes the kernel described (vfio-pci: INTx, MSI, MSI-X, ERR when PCIe, REQ). */
  get infos(): readonly IrqInfo[] {
    return [...this.infoByIndex.values()];
  }

  info(index: number): IrqInfo | undefined {
    return this.infoByIndex.get(index);
  }

  enabled(index: number): boolean {
    return this.active.has(index);
  }

  /** The eventfd bound to a vector, if enable() bound one. */
  eventfd(index: number, vector = 0): number | undefined {
    return this.active.get(index)?.get(vector)?.fd;
  }

  /**
   * SET_IRQS TRIGGER|EVENTFD: binds eventfds (made here through sys.eventfd unless
   * given) to vectors start..start+count-1, which enables the index. Returns the fds.
   */
  enable(index: number, options: IrqEnableOptions = {}): readonly number[] {
    const start = options.start ?? 0;
    const given = options.eventfds;
    const count = given ? given.length : options.count ?? this.infoByIndex.get(index)?.count ?? 0;
    const fds = given ? [...given] : [];
    try {
      if (!given) for (let i = 0; i < count; i++) fds.push(this.host.sys.eventfd());
      this.setIrqs(index, flags.VFIO_IRQ_SET_ACTION_TRIGGER | flags.VFIO_IRQ_SET_DATA_EVENTFD, start, count, fds);
    } catch (err) {
      if (!given) for (const fd of fds) this.host.sys.close(fd);
      throw err;
    }
    const vectors = this.active.get(index) ?? new Map<number, Vector>();
    this.active.set(index, vectors);
    fds.forEach((fd, i) => {
      const old = vectors.get(start + i);
      const listeners = new Set<Listener>(old?.listeners); // release() below clears the old set
      if (old) this.release(old);
      if (fd < 0) {
        vectors.delete(start + i);
        return;
      }
      const vector: Vector = { fd, owned: !given, watcher: undefined, listeners };
      vectors.set(start + i, vector);
      this.rewatch(index, start + i, vector);
    });
    return fds;
  }

  /** SET_IRQS TRIGGER|NONE with count 0: disables the index and drops its eventfds and listeners. */
  disable(index: number): void {
    this.setIrqs(index, flags.VFIO_IRQ_SET_ACTION_TRIGGER | flags.VFIO_IRQ_SET_DATA_NONE, 0, 0);
    this.forget(index);
  }

  /** SET_IRQS MASK|NONE (INTx is the maskable one on vfio-pci). */
  mask(index: number, start = 0, count = 1): void {
    this.setIrqs(index, flags.VFIO_IRQ_SET_ACTION_MASK | flags.VFIO_IRQ_SET_DATA_NONE, start, count);
  }

  /** SET_IRQS UNMASK|NONE: lets an automasked INTx fire again. */
  unmask(index: number, start = 0, count = 1): void {
    this.setIrqs(index, flags.VFIO_IRQ_SET_ACTION_UNMASK | flags.VFIO_IRQ_SET_DATA_NONE, start, count);
  }

  /** SET_IRQS TRIGGER|NONE on one vector: the kernel fires it now (loopback). */
  trigger(index: number, vector = 0): void {
    this.setIrqs(index, flags.VFIO_IRQ_SET_ACTION_TRIGGER | flags.VFIO_IRQ_SET_DATA_NONE, vector, 1);
  }

  /**
   * Calls back on the event loop each time the vector fires, with the eventfd count
   * (how many interrupts since the last call). The vector must be enabled.
   */
  on(index: number, vector: number, callback: IrqCallback): IrqListener {
    const state = this.active.get(index)?.get(vector);
    if (!state) {
      throw sysError('EINVAL', 'watch', undefined, `${irqName(index)} vector ${vector} has no eventfd: call irqs.enable(${index}) first`);
    }
    const listener: Listener = { callback, refed: this.keepAlive };
    state.listeners.add(listener);
    this.rewatch(index, vector, state);
    const update = (): void => {
      const current = this.active.get(index)?.get(vector);
      if (current?.listeners.has(listener)) this.rewatch(index, vector, current);
    };
    return {
      close: () => {
        const current = this.active.get(index)?.get(vector);
        if (current?.listeners.delete(listener)) this.rewatch(index, vector, current);
      },
      ref: () => { listener.refed = true; update(); },
      unref: () => { listener.refed = false; update(); },
    };
  }

  /** Resolves with the count at the vector's next interrupt; rejects with ETIMEDOUT after timeoutMs. */
  once(index: number, vector = 0, timeoutMs?: number): Promise<bigint> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const listener = this.on(index, vector, (count) => {
        if (timer) clearTimeout(timer);
        listener.close();
        resolve(count);
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          listener.close();
          reject(sysError('ETIMEDOUT', 'watch', undefined, `no ${irqName(index)} vector ${vector} interrupt within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** From now on listeners do not keep the process alive (a REPL or a script can exit). */
  unref(): void {
    this.keepAlive = false;
    for (const [index, vectors] of this.active) {
      for (const [vector, state] of vectors) {
        for (const l of state.listeners) l.refed = false;
        this.rewatch(index, vector, state);
      }
    }
  }

  /** Stops every watcher, disables what is enabled, closes the eventfds made here. */
  close(): void {
    for (const vectors of this.active.values()) for (const v of vectors.values()) this.stopWatching(v);
    for (const index of [...this.active.keys()]) {
      try {
        this.setIrqs(index, flags.VFIO_IRQ_SET_ACTION_TRIGGER | flags.VFIO_IRQ_SET_DATA_NONE, 0, 0);
      } catch {
        // The kernel disables everything when the device fd closes, which comes next.
      }
      this.forget(index);
    }
  }

  private setIrqs(index: number, flagBits: number, start: number, count: number, fds?: readonly number[]): void {
    const payload = fds ? fds.length * 4 : 0;
    const arg = vfio_irq_set.encode({ argsz: vfio_irq_set.size + payload, flags: flagBits, index, start, count }, vfio_irq_set.size + payload);
    if (fds) {
      const dv = new DataView(arg.buffer);
      fds.forEach((fd, i) => dv.setInt32(vfio_irq_set.size + i * 4, fd, true));
    }
    vfioIoctl(this.host.sys, this.host.fd, 'VFIO_DEVICE_SET_IRQS', arg);
  }

  private forget(index: number): void {
    const vectors = this.active.get(index);
    if (!vectors) return;
    this.active.delete(index);
    for (const v of vectors.values()) this.release(v);
  }

  private release(v: Vector): void {
    this.stopWatching(v);
    v.listeners.clear();
    if (v.owned) this.host.sys.close(v.fd);
  }

  private stopWatching(v: Vector): void {
    v.watcher?.close();
    v.watcher = undefined;
  }

  /** One watcher per vector while it has listeners, ref'd while any listener is. */
  private rewatch(index: number, vector: number, v: Vector): void {
    if (v.listeners.size === 0) {
      this.stopWatching(v);
      return;
    }
    v.watcher ??= this.host.sys.watch(v.fd, () => this.fire(index, vector, v));
    if ([...v.listeners].some((l) => l.refed)) v.watcher.ref();
    else v.watcher.unref();
  }

  private fire(index: number, vector: number, v: Vector): void {
    let count: bigint;
    try {
      count = this.host.sys.eventfdRead(v.fd);
    } catch (err) {
      if (isSysError(err, 'EAGAIN')) return; // another reader took the count first
      this.stopWatching(v);
      process.emitWarning(`stopped listening to ${irqName(index)} vector ${vector}: ${(err as Error).message}`);
      return;
    }
    for (const l of [...v.listeners]) l.callback(count);
  }

  [inspect.custom](): string {
    const parts = this.infos.map((i) => {
      const on = this.active.get(i.index);
      return `${i.name} ${i.count}${on ? ` (enabled, ${on.size} bound)` : ''}`;
    });
    return `Irqs ${parts.join(', ')}`;
  }
}
