// The mock kernel's file table. Every mock fd is a real fd number: mock files
// (containers, groups, devices) hold a reservation made by opening /dev/null, so their
// numbers never collide with real fds, EMFILE is real, and a leak shows in
// /proc/self/fd. Real fds the mock layer made itself (eventfds, host files) are kept
// under their own numbers.
import { addon } from '../../addon/addon.js';
import { sysError } from '../../addon/errors.js';
import type { Mapping } from '../types.js';
import { O_CLOEXEC, O_RDONLY } from '../types.js';

export type MockFileKind = 'container' | 'group' | 'device' | 'eventfd' | 'host' | 'migration';

/** What an open mock fd refers to: the mock's struct file_operations. */
export interface MockFile {
  readonly kind: MockFileKind;
  ioctl(request: number, arg: number | Uint8Array | undefined): number;
  pread(buf: Uint8Array, offset: bigint): number;
  pwrite(buf: Uint8Array, offset: bigint): number;
  mmap(offset: bigint, length: number, prot: number): Mapping;
  /** read(2)/write(2) at the file position; absent: EINVAL (the file has no read/write op without an offset here). */
  read?(buf: Uint8Array): number;
  write?(buf: Uint8Array): number;
  /** The last close of the fd (the kernel's release). Must not throw. */
  release(): void;
}

export class FdTable {
  private readonly files = new Map<number, MockFile>();

  /** Gives a mock file a fresh fd number, reserved by a real open of /dev/null. */
  install(file: MockFile): number {
    return this.installWith(() => file);
  }

  /**
   * Reserves the fd number first (so EMFILE comes before any side effect, as
   * get_unused_fd_flags does), then makes the file; if that throws, frees the number.
   */
  installWith(create: (fd: number) => MockFile): number {
    const fd = addon().open('/dev/null', O_RDONLY | O_CLOEXEC);
    let file: MockFile;
    try {
      file = create(fd);
    } catch (err) {
      addon().close(fd);
      throw err;
    }
    this.files.set(fd, file);
    return fd;
  }

  /** Records a real fd this layer made (an eventfd, a host file) under its own number. */
  adopt(fd: number, file: MockFile): void {
    if (this.files.has(fd)) throw new Error(`fd ${fd} is already in the mock fd table`);
    this.files.set(fd, file);
  }

  get(fd: number): MockFile | undefined {
    return Number.isInteger(fd) ? this.files.get(fd) : undefined;
  }

  /** The file behind fd, or EBADF like any system call given an fd that is not open. */
  lookup(fd: number, syscall: string): MockFile {
    const file = this.get(fd);
    if (!file) throw sysError('EBADF', syscall, undefined, `fd ${fd} is not open in the mock kernel`);
    return file;
  }

  /** close(2): releases the file and frees the real fd number. EBADF for an unknown fd. */
  close(fd: number): void {
    const file = this.lookup(fd, 'close');
    this.files.delete(fd);
    try {
      file.release();
    } finally {
      addon().close(fd);
    }
  }

  get size(): number {
    return this.files.size;
  }

  /** Open fds, lowest first (for diagnostics and leak checks). */
  fds(): number[] {
    return [...this.files.keys()].sort((a, b) => a - b);
  }
}
