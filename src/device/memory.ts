// Real memory for the mock kernel: shared memory a simulated device can map into the
// user's address space (a memfd, like a BAR's backing pages), and Mappings over the
// ArrayBuffers the addon's mmap returns. Everything here is real mmap'd memory, so
// a Mapping's address is a true process address the TYPE1 IOMMU can look up.
import { constants as bufferConstants } from 'node:buffer';
import { addon } from '../addon/addon.js';
import { sysError } from '../addon/errors.js';
import type { Mapping } from '../addon/mapping.js';
import { PROT_READ, PROT_WRITE } from '../addon/mapping.js';

/** Linux values, used only if the addon's table lacks a name. */
const fallback: Readonly<Record<string, number>> = { MAP_SHARED: 0x01, MAP_PRIVATE: 0x02, MAP_ANONYMOUS: 0x20, MFD_CLOEXEC: 0x01 };

export function libcConstant(name: string): number {
  const value = addon().constants[name] ?? fallback[name];
  if (value === undefined) throw new Error(`the addon does not export ${name}`);
  return value;
}

/** A Mapping that also remembers the protection it was made with. */
export interface ProtectedMapping extends Mapping {
  readonly prot: number;
}

/** Makes a Mapping of an ArrayBuffer that came from addon().mmap(). */
export function mappingFromBuffer(buffer: ArrayBuffer, prot: number = PROT_READ | PROT_WRITE): ProtectedMapping {
  const address = addon().addressOf(buffer);
  return { buffer, address, length: buffer.byteLength, prot };
}

export function pageAlign(n: number, pageSize: number = addon().pageSize): number {
  return Math.ceil(n / pageSize) * pageSize;
}

/** Page-aligned anonymous memory (MAP_PRIVATE|MAP_ANONYMOUS), like a DMA buffer. */
export function allocateAnonymous(length: number, prot: number = PROT_READ | PROT_WRITE): ProtectedMapping {
  if (!Number.isSafeInteger(length) || length <= 0) throw sysError('EINVAL', 'mmap', undefined, `length ${length}`);
  const buffer = addon().mmap(-1, 0n, length, prot, libcConstant('MAP_PRIVATE') | libcConstant('MAP_ANONYMOUS'));
  return mappingFromBuffer(buffer, prot);
}

/**
 * A memfd and what its owner does with it. Any size the memfd allows (well past the
 * 4 GiB a Node 20 ArrayBuffer holds): read and write reach any offset through
 * pread/pwrite, and map() makes windows. Pages are allocated only when written, so a
 * large memory nobody touches costs nothing. It is a vGPU MemoryBacking as it stands.
 */
export interface SharedMemory {
  /** The memfd behind it (close-on-exec). */
  readonly fd: number;
  /** The memfd as a file to hand out (a MemoryBacking's `file`): offset 0; undefined once closed. */
  readonly file: { readonly fd: number; readonly offset: number } | undefined;
  readonly size: number;
  /**
   * The owner's read-write view of the whole memory, mapped on first use (it costs
   * address space only). A RangeError when the memory is larger than one ArrayBuffer
   * may be (4 GiB on Node 20): use read/write or map() there. EBADF once closed.
   */
  readonly bytes: Uint8Array;
  /** Copies [offset, offset + dst.byteLength) into dst (pread on the memfd). EINVAL past the end. */
  read(offset: number, dst: Uint8Array): void;
  /** Copies src to [offset, offset + src.byteLength) (pwrite on the memfd). EINVAL past the end. */
  write(offset: number, src: Uint8Array): void;
  /** A new MAP_SHARED mapping of part of it; `offset` must be page-aligned. */
  map(offset: number, length: number, prot: number): Mapping;
  /** munmap of a mapping map() made (also after close). Idempotent; EINVAL for any other mapping. */
  unmap(mapping: Mapping): void;
  /** Closes the memfd and the owner's view; mappings made by map() stay valid until unmapped. Idempotent. */
  close(): void;
}

/** A memfd of `size` bytes (rounded up to pages inside); nothing is mapped until asked. */
export function createSharedMemory(name: string, size: number): SharedMemory {
  const a = addon();
  if (!Number.isSafeInteger(size) || size <= 0) throw sysError('EINVAL', 'memfd_create', undefined, `size ${size}`);
  const fd = a.memfdCreate(name, libcConstant('MFD_CLOEXEC'));
  try {
    // Whole pages, so a mapping of the last partial page never raises SIGBUS.
    a.ftruncate(fd, BigInt(pageAlign(size, a.pageSize)));
  } catch (err) {
    a.close(fd);
    throw err;
  }
  let own: ArrayBuffer | undefined;
  let view: Uint8Array | undefined;
  let closed = false;
  const made = new WeakSet<Mapping>();
  const requireOpen = (syscall: string): void => {
    if (closed) throw sysError('EBADF', syscall, undefined, `shared memory ${name} is closed`);
  };
  /** Checks [offset, offset + length) lies in the memory. */
  const checkRange = (syscall: string, offset: number, length: number): void => {
    requireOpen(syscall);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > size) {
      throw sysError('EINVAL', syscall, undefined, `${length} bytes at offset ${offset} of ${name}'s ${size} bytes`);
    }
  };
  /** pread/pwrite until every byte is done: one call moves at most about 2 GiB. */
  const transfer = (syscall: 'pread' | 'pwrite', offset: number, buf: Uint8Array): void => {
    checkRange(syscall, offset, buf.byteLength);
    let done = 0;
    while (done < buf.byteLength) {
      const piece = done === 0 ? buf : buf.subarray(done);
      const n = syscall === 'pread' ? a.pread(fd, piece, BigInt(offset + done)) : a.pwrite(fd, piece, BigInt(offset + done));
      if (n <= 0) throw sysError('EIO', syscall, undefined, `${name}: no progress at offset ${offset + done}`);
      done += n;
    }
  };
  const file = { fd, offset: 0 } as const;
  return {
    fd,
    size,
    get file() {
      return closed ? undefined : file;
    },
    get bytes(): Uint8Array {
      if (view) return view;
      requireOpen('mmap');
      if (size > bufferConstants.MAX_LENGTH) {
        throw new RangeError(`shared memory ${name} is ${size} bytes, more than one ArrayBuffer holds on this Node ` +
          `(${bufferConstants.MAX_LENGTH / 2 ** 30} GiB): use read/write or map() a window`);
      }
      own = a.mmap(fd, 0n, size, PROT_READ | PROT_WRITE, libcConstant('MAP_SHARED'));
      view = new Uint8Array(own);
      return view;
    },
    read(offset, dst) {
      transfer('pread', offset, dst);
    },
    write(offset, src) {
      transfer('pwrite', offset, src);
    },
    map(offset, length, prot) {
      requireOpen('mmap');
      if (!Number.isSafeInteger(offset) || offset < 0 || offset % a.pageSize !== 0 ||
          !Number.isSafeInteger(length) || length <= 0 || offset + length > pageAlign(size, a.pageSize)) {
        throw sysError('EINVAL', 'mmap', undefined, `offset ${offset} length ${length} of ${size} bytes`);
      }
      const mapping = mappingFromBuffer(a.mmap(fd, BigInt(offset), length, prot, libcConstant('MAP_SHARED')), prot);
      made.add(mapping);
      return mapping;
    },
    unmap(mapping) {
      if (!made.has(mapping)) throw sysError('EINVAL', 'munmap', undefined, `not a mapping of shared memory ${name}`);
      a.munmap(mapping.buffer);
    },
    close() {
      if (closed) return;
      closed = true;
      if (own) a.munmap(own);
      own = undefined;
      view = undefined;
      a.close(fd);
    },
  };
}
