// Real memory for the mock kernel: shared memory a simulated device can map into the
// user's address space (a memfd, like a BAR's backing pages), and Mappings over the
// ArrayBuffers the addon's mmap returns. Everything here is real mmap'd memory, so
// a Mapping's address is a true process address the TYPE1 IOMMU can look up.
import { addon } from '../addon.js';
import { sysError } from '../errors.js';
import type { Mapping } from '../types.js';
import { PROT_READ, PROT_WRITE } from '../types.js';

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

export interface SharedMemory {
  /** The memfd behind it (close-on-exec). */
  readonly fd: number;
  readonly size: number;
  /** The owner's own read-write view of the whole memory. */
  readonly bytes: Uint8Array;
  /** A new MAP_SHARED mapping of part of it; `offset` must be page-aligned. */
  map(offset: number, length: number, prot: number): Mapping;
  /** Closes the memfd and the owner's view; mappings made by map() stay valid until unmapped. Idempotent. */
  close(): void;
}

/** A memfd of `size` bytes (rounded up to pages inside), mapped read-write for its owner. */
export function createSharedMemory(name: string, size: number): SharedMemory {
  const a = addon();
  if (!Number.isSafeInteger(size) || size <= 0) throw sysError('EINVAL', 'memfd_create', undefined, `size ${size}`);
  const fd = a.memfdCreate(name, libcConstant('MFD_CLOEXEC'));
  let own: ArrayBuffer;
  try {
    // Whole pages, so a mapping of the last partial page never raises SIGBUS.
    a.ftruncate(fd, BigInt(pageAlign(size, a.pageSize)));
    own = a.mmap(fd, 0n, size, PROT_READ | PROT_WRITE, libcConstant('MAP_SHARED'));
  } catch (err) {
    a.close(fd);
    throw err;
  }
  const bytes = new Uint8Array(own);
  let closed = false;
  return {
    fd,
    size,
    bytes,
    map(offset, length, prot) {
      if (closed) throw sysError('EBADF', 'mmap', undefined, `shared memory ${name} is closed`);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset % a.pageSize !== 0 ||
          !Number.isSafeInteger(length) || length <= 0 || offset + length > pageAlign(size, a.pageSize)) {
        throw sysError('EINVAL', 'mmap', undefined, `offset ${offset} length ${length} of ${size} bytes`);
      }
      return mappingFromBuffer(a.mmap(fd, BigInt(offset), length, prot, libcConstant('MAP_SHARED')), prot);
    },
    close() {
      if (closed) return;
      closed = true;
      a.munmap(own);
      a.close(fd);
    },
  };
}
