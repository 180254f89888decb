// The fd layer: the one interface through which everything above src/sys reaches a
// kernel. Two implementations: native (the C++ addon against the real /dev/vfio) and
// mock (an in-process kernel). Upper layers never touch /dev or /sys directly.
//
// Every call is synchronous, like the system call it stands for, and throws a
// SysError (see src/addon/errors.ts) with the errno the kernel gives.

export type { Mapping } from '../addon/mapping.js';
export { PROT_READ, PROT_WRITE } from '../addon/mapping.js';
import type { Mapping } from '../addon/mapping.js';

/** Calls back when an fd becomes readable (an interrupt eventfd), without blocking. */
export interface FdWatcher {
  /** Stops watching; the fd itself stays open. Idempotent. */
  close(): void;
  /** Keeps the process alive while watching (the default). */
  ref(): void;
  /** Lets the process exit even while watching (REPL, scripts). */
  unref(): void;
}

/** The parts of /sys the upper layers read. Paths are absolute ("/sys/bus/pci/..."). */
export interface Sysfs {
  exists(path: string): boolean;
  /** Entry names of a directory, sorted. ENOENT / ENOTDIR like readdir. */
  list(path: string): string[];
  /** An attribute's text with its trailing newline removed. */
  read(path: string): string;
  /** Writes an attribute (for example an mdev `create`); errors carry the errno the kernel gives. */
  write(path: string, value: string): void;
  /** Where a symlink points (relative, as readlink gives it). */
  readlink(path: string): string;
}

export type SysKind = 'native' | 'mock';

export interface SysLayer {
  readonly kind: SysKind;
  readonly pageSize: number;
  /** open(2); flags default to O_RDWR | O_CLOEXEC. */
  open(path: string, flags?: number): number;
  close(fd: number): void;
  /**
   * ioctl(2). An integer `arg` is passed by value; a Uint8Array is passed by pointer
   * and the kernel reads and writes it in place. Returns the ioctl's return value.
   */
  ioctl(fd: number, request: number, arg?: number | Uint8Array): number;
  pread(fd: number, buf: Uint8Array, offset: bigint): number;
  pwrite(fd: number, buf: Uint8Array, offset: bigint): number;
  /**
   * read(2) and write(2) at the file position, for stream fds without offsets (a
   * migration data fd, where pread/pwrite are ESPIPE). Absent on fd layers that have no
   * such files.
   */
  read?(fd: number, buf: Uint8Array): number;
  write?(fd: number, buf: Uint8Array): number;
  /** mmap(2) of a device fd region, MAP_SHARED; prot is PROT_READ|PROT_WRITE bits. */
  mmap(fd: number, offset: bigint, length: number, prot: number): Mapping;
  /** Page-aligned anonymous read-write memory, for DMA buffers. */
  allocate(length: number): Mapping;
  /** Unmaps a Mapping from mmap() or allocate(); its buffer is detached. Idempotent. */
  munmap(mapping: Mapping): void;
  /** eventfd(2), always EFD_CLOEXEC | EFD_NONBLOCK. */
  eventfd(initval?: number): number;
  /** Reads and resets the counter; EAGAIN when it is zero. */
  eventfdRead(fd: number): bigint;
  eventfdWrite(fd: number, value: bigint): void;
  watch(fd: number, onReadable: () => void): FdWatcher;
  readonly sysfs: Sysfs;
}

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
