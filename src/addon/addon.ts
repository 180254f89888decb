// The C++ addon (native/), loaded with `bindings`, and the typed shape of what it
// exports. The addon only makes system calls; all VFIO policy lives in TypeScript.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type bindings from 'bindings';

export interface AddonWatcher {
  close(): void;
  ref(): void;
  unref(): void;
}

/** What recvmsg() received: `bytes` 0 means the peer closed its end. */
export interface AddonReceived {
  bytes: number;
  /** Close-on-exec fds, now the caller's to close. */
  fds: number[];
}

/** sizeof() and offsetof() of one struct of <linux/vfio.h>, as the compiler saw them. */
export interface AddonStructLayout {
  size: number;
  fields: Record<string, number>;
}

export interface Addon {
  /** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds the lock. */
  tryLockExclusive(fd: number): boolean;
  /** open(2): returns the fd. */
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  /** dup(2), close-on-exec (F_DUPFD_CLOEXEC): a new fd for the same open file. */
  dup(fd: number): number;
  /** ioctl(2): an integer arg by value, a Buffer/TypedArray/DataView by pointer. */
  ioctl(fd: number, request: number, arg?: number | ArrayBufferView): number;
  pread(fd: number, buf: ArrayBufferView, offset: bigint): number;
  pwrite(fd: number, buf: ArrayBufferView, offset: bigint): number;
  /** read(2) at the file position (stream files: a migration data fd). */
  read(fd: number, buf: ArrayBufferView): number;
  /** write(2) at the file position. */
  write(fd: number, buf: ArrayBufferView): number;
  /** lseek(2): the new offset. With constants.SEEK_DATA / SEEK_HOLE on a memfd: where written data starts / ends (ENXIO past the last). */
  lseek(fd: number, offset: bigint, whence: number): bigint;
  /** mmap(2) (fd -1 with MAP_ANONYMOUS): an ArrayBuffer over the mapping. */
  mmap(fd: number, offset: bigint, length: number, prot: number, flags: number): ArrayBuffer;
  /** munmap(2) of a buffer from mmap(); detaches it. A second call is a no-op. */
  munmap(buffer: ArrayBuffer): void;
  /** The virtual address of the first byte of a buffer or view. */
  addressOf(target: ArrayBuffer | ArrayBufferView): bigint;
  eventfd(initval: number, flags: number): number;
  eventfdRead(fd: number): bigint;
  eventfdWrite(fd: number, value: bigint): void;
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: bigint): void;
  /**
   * Calls `onReady` on the event loop while fd is ready (uv_poll, level-triggered):
   * `events` 1 = readable (the default), 2 = writable, 3 = either. `onReady` gets the
   * ready bits. On POLLERR the watcher gets every watched bit once, then stops firing.
   */
  watch(fd: number, onReady: (ready: number) => void, events?: number): AddonWatcher;
  /** socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC). */
  socket(): number;
  /** socketpair(2) of two connected sockets, flagged like socket()'s. */
  socketpair(): [number, number];
  /**
   * bind(2) to a filesystem path. ENAMETOOLONG if it does not fit sun_path (107 bytes of
   * UTF-8), ENOENT for ''. An existing path is EADDRINUSE: unlinking it is the caller's call.
   */
  bind(fd: number, path: string): void;
  /** listen(2); the kernel caps the backlog at net.core.somaxconn. */
  listen(fd: number, backlog: number): void;
  /** accept4(2), the new fd non-blocking and close-on-exec; null when nobody waits (EAGAIN). */
  accept(fd: number): number | null;
  /**
   * connect(2) to a path. On a non-blocking unix stream socket this completes at once,
   * or fails with EAGAIN when the listener's backlog is full (never EINPROGRESS).
   */
  connect(fd: number, path: string): void;
  /** shutdown(2) with constants.SHUT_RD, SHUT_WR or SHUT_RDWR. */
  shutdown(fd: number, how: number): void;
  /**
   * sendmsg(2), never blocking (EAGAIN when the socket buffer is full) and never raising
   * SIGPIPE (EPIPE instead). Returns the bytes sent, possibly fewer than data's length.
   * `fds` (at most 253) go as one SCM_RIGHTS message with the first byte, so they are all
   * sent once any byte is; data must then not be empty. The caller still owns its fds.
   */
  sendmsg(fd: number, data: ArrayBufferView, fds?: readonly number[]): number;
  /**
   * recvmsg(2) into buf (not empty), never blocking: null when nothing waits (EAGAIN, the
   * usual answer on a non-blocking socket, so no exception), taking at most maxFds
   * (0..253) fds. If more fds came, all of them are closed and it throws a SysError with
   * code 'EMSGSIZE' whose `bytes` says how much data did land in buf.
   */
  recvmsg(fd: number, buf: ArrayBufferView, maxFds: number): AddonReceived | null;
  /**
   * One poll(2) of one fd, blocking the thread up to timeoutMs (-1: no limit): returns
   * revents (constants.POLLIN, ...), 0 on timeout. EBADF for a negative or closed fd.
   */
  poll(fd: number, events: number, timeoutMs: number): number;
  /** getsockopt(SO_PEERCRED) of a connected unix socket: the peer's pid, uid and gid. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  readonly pageSize: number;
  /** O_*, PROT_*, MAP_*, EFD_*, MFD_*, FIONREAD, SHUT_*, POLL* as the C library defines them. */
  readonly constants: Readonly<Record<string, number>>;
  /** Taken from <linux/vfio.h> at compile time, for test/uapi/layout.test.ts. */
  readonly vfio: {
    readonly ioctls: Readonly<Record<string, number>>;
    readonly constants: Readonly<Record<string, number>>;
    readonly structs: Readonly<Record<string, AddonStructLayout>>;
  };
}

const require = createRequire(import.meta.url);
let loaded: Addon | undefined;

/** The addon's own exports: its ioctl answers undefined for 0 (native/ioctl.cc says why). */
type RawAddon = Omit<Addon, 'ioctl'> & {
  ioctl(fd: number, request: number, arg?: number | ArrayBufferView): number | undefined;
};

/** The package's folder (dist/src/addon/addon.js and src/addon/addon.ts are three below it). */
const packageRoot = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The addon, loaded on first use: build/Release/vfio_vgpu.node, else build/Debug. Told
 * its root and the two places node-gyp builds to, `bindings` neither walks a stack trace
 * to find the caller nor tries a dozen other folders (every daemon command loads it).
 */
export function addon(): Addon {
  loaded ??= fromRaw((require('bindings') as (options: bindings.Options) => RawAddon)({
    bindings: 'vfio_vgpu',
    module_root: packageRoot,
    try: [['module_root', 'build', 'Release', 'bindings'], ['module_root', 'build', 'Debug', 'bindings']],
  }));
  return loaded;
}

/**
 * The Addon over the raw exports, in a new object laid out at once: V8 keeps an object
 * that was given its properties one by one, as the raw exports are, in a hash table
 * from the 20th on, and looking `ioctl` up there cost ~5 ns of every call
 * (bench/ioctl.ts's loop). ioctl's wrapper, which V8 inlines into its callers, gives back the
 * 0 the addon leaves out; it holds the raw function itself, not the raw object.
 */
function fromRaw(raw: RawAddon): Addon {
  const { ioctl, ...rest } = raw;
  return { ...rest, ioctl: (fd, request, arg) => ioctl(fd, request, arg) ?? 0 };
}
