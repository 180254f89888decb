// The C++ addon (native/), loaded with `bindings`, and the typed shape of what it
// exports. The addon only makes system calls; all VFIO policy lives in TypeScript.
import { createRequire } from 'node:module';

export interface AddonWatcher {
  close(): void;
  ref(): void;
  unref(): void;
}

/** sizeof() and offsetof() of one struct of <linux/vfio.h>, as the compiler saw them. */
export interface AddonStructLayout {
  size: number;
  fields: Record<string, number>;
}

export interface Addon {
  /** open(2): returns the fd. */
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  /** dup(2), close-on-exec (F_DUPFD_CLOEXEC): a new fd for the same open file. */
  dup(fd: number): number;
  /** ioctl(2): an integer arg by value, a Buffer/TypedArray/DataView by pointer. */
  ioctl(fd: number, request: number, arg?: number | ArrayBufferView): number;
  pread(fd: number, buf: ArrayBufferView, offset: bigint): number;
  pwrite(fd: number, buf: ArrayBufferView, offset: bigint): number;
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
  /** Calls `onReadable` on the event loop whenever fd is readable (uv_poll). */
  watch(fd: number, onReadable: () => void): AddonWatcher;
  readonly pageSize: number;
  /** O_*, PROT_*, MAP_*, EFD_*, MFD_*, FIONREAD as the C library defines them. */
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

/** The addon, loaded on first use (build/Release/vfio_vgpu.node). */
export function addon(): Addon {
  loaded ??= (require('bindings') as (name: string) => Addon)('vfio_vgpu');
  return loaded;
}
