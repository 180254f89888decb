// A SysLayer that forwards to another and records the calls the client makes, so
// tests can check ioctl sequences (argsz retries) and close order.
import type { FdWatcher, Mapping, SysLayer, Sysfs } from '../../src/sys/types.js';

export interface IoctlCall {
  fd: number;
  request: number;
  /** argsz (the first u32) of a buffer argument as passed in, and after the kernel answered. */
  argszIn?: number;
  argszOut?: number;
}

export interface SpySys extends SysLayer {
  readonly ioctls: IoctlCall[];
  /** Every fd closed, in order. */
  readonly closed: number[];
  /** Every call by name, in order ("open", "ioctl", "close", ...). */
  readonly calls: string[];
  reset(): void;
}

function argsz(arg: Uint8Array): number | undefined {
  return arg.byteLength >= 4 ? new DataView(arg.buffer, arg.byteOffset, 4).getUint32(0, true) : undefined;
}

export function spySys(inner: SysLayer): SpySys {
  const ioctls: IoctlCall[] = [];
  const closed: number[] = [];
  const calls: string[] = [];
  const spy: SpySys = {
    get kind() { return inner.kind; },
    get pageSize() { return inner.pageSize; },
    get sysfs(): Sysfs { return inner.sysfs; },
    ioctls,
    closed,
    calls,
    reset() {
      ioctls.length = 0;
      closed.length = 0;
      calls.length = 0;
    },
    open(path: string, flags?: number): number {
      calls.push('open');
      return inner.open(path, flags);
    },
    close(fd: number): void {
      calls.push('close');
      closed.push(fd);
      inner.close(fd);
    },
    ioctl(fd: number, request: number, arg?: number | Uint8Array): number {
      calls.push('ioctl');
      const call: IoctlCall = { fd, request };
      if (arg instanceof Uint8Array) call.argszIn = argsz(arg);
      ioctls.push(call);
      const result = inner.ioctl(fd, request, arg);
      if (arg instanceof Uint8Array) call.argszOut = argsz(arg);
      return result;
    },
    pread(fd: number, buf: Uint8Array, offset: bigint): number {
      calls.push('pread');
      return inner.pread(fd, buf, offset);
    },
    pwrite(fd: number, buf: Uint8Array, offset: bigint): number {
      calls.push('pwrite');
      return inner.pwrite(fd, buf, offset);
    },
    mmap(fd: number, offset: bigint, length: number, prot: number): Mapping {
      calls.push('mmap');
      return inner.mmap(fd, offset, length, prot);
    },
    allocate(length: number): Mapping {
      calls.push('allocate');
      return inner.allocate(length);
    },
    munmap(mapping: Mapping): void {
      calls.push('munmap');
      inner.munmap(mapping);
    },
    eventfd(initval?: number): number {
      calls.push('eventfd');
      return inner.eventfd(initval);
    },
    eventfdRead(fd: number): bigint {
      calls.push('eventfdRead');
      return inner.eventfdRead(fd);
    },
    eventfdWrite(fd: number, value: bigint): void {
      calls.push('eventfdWrite');
      inner.eventfdWrite(fd, value);
    },
    watch(fd: number, onReadable: () => void): FdWatcher {
      calls.push('watch');
      return inner.watch(fd, onReadable);
    },
  };
  return spy;
}
