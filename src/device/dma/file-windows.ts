// A file someone else handed us (a vfio-user client's guest memory fd), mapped
// MAP_SHARED in windows: one ArrayBuffer cannot hold more than about 4 GiB on Node 20,
// and a guest's RAM is often larger. Windows are a whole number of pages, so a page
// never straddles two of them and a pinned page is always one view of one window.
import { constants as bufferConstants } from 'node:buffer';
import { fstatSync } from 'node:fs';
import { addon } from '../../addon/addon.js';
import { sysError } from '../../addon/errors.js';
import { PROT_READ, PROT_WRITE } from '../../addon/mapping.js';
import { libcConstant } from '../memory.js';

/** Default window: 1 GiB (well below one ArrayBuffer's limit, few windows for big guests). */
export const DEFAULT_WINDOW_SIZE = 1 << 30;

export interface FileWindows {
  readonly size: number;
  /** A view of [offset, offset + length) that lies inside one window (a page is one). */
  view(offset: number, length: number): Uint8Array;
  /** Copies [offset, offset + dst.byteLength) into dst, across windows. */
  read(offset: number, dst: Uint8Array): void;
  /** Copies src into [offset, offset + src.byteLength), across windows. */
  write(offset: number, src: Uint8Array): void;
  /** munmap of every window (views become detached, length 0). Idempotent. */
  unmap(): void;
}

/**
 * Maps [offset, offset + size) of `fd` with `prot` (PROT_READ | PROT_WRITE bits).
 * `offset` must be page aligned. A regular file (memfd, /dev/shm, hugetlbfs) must be
 * long enough: touching a page past its end would raise SIGBUS in this process, so a
 * short file is EINVAL here; other kinds of files (sockets, pipes, devices) are EINVAL
 * too. The fd stays the caller's.
 */
export function mapFileWindows(fd: number, offset: bigint, size: bigint, prot: number, windowSize = DEFAULT_WINDOW_SIZE): FileWindows {
  const a = addon();
  const page = a.pageSize;
  if (!Number.isSafeInteger(windowSize) || windowSize <= 0 || windowSize % page !== 0 || windowSize > bufferConstants.MAX_LENGTH) {
    throw new RangeError(`window size ${windowSize} must be a positive multiple of ${page} that one ArrayBuffer holds`);
  }
  if (offset < 0n || offset % BigInt(page) !== 0n) throw sysError('EINVAL', 'mmap', undefined, `file offset 0x${offset.toString(16)} is not page aligned`);
  if (size <= 0n || size > BigInt(Number.MAX_SAFE_INTEGER) || offset + size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw sysError('EINVAL', 'mmap', undefined, `${size} bytes at file offset ${offset} cannot be mapped`);
  }
  let stat;
  try {
    stat = fstatSync(fd, { bigint: true });
  } catch {
    throw sysError('EBADF', 'fstat', undefined, `fd ${fd} is not open`);
  }
  if (!stat.isFile()) throw sysError('EINVAL', 'mmap', undefined, `fd ${fd} is not a regular file (memfd, shm or hugetlbfs)`);
  if (offset + size > stat.size) {
    throw sysError('EINVAL', 'mmap', undefined, `the file is ${stat.size} bytes, the mapping needs ${offset + size}`);
  }
  let mmapProt = 0;
  if (prot & PROT_READ) mmapProt |= PROT_READ;
  if (prot & PROT_WRITE) mmapProt |= PROT_WRITE;
  const total = Number(size);
  const buffers: ArrayBuffer[] = [];
  try {
    for (let at = 0; at < total; at += windowSize) {
      const length = Math.min(windowSize, total - at);
      buffers.push(a.mmap(fd, offset + BigInt(at), length, mmapProt, libcConstant('MAP_SHARED')));
    }
  } catch (err) {
    for (const b of buffers) a.munmap(b);
    throw err;
  }
  const views = buffers.map((b) => new Uint8Array(b));
  /** Walks [offset, offset + length) window by window. */
  const each = (offset: number, length: number, step: (bytes: Uint8Array, done: number) => void): void => {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > total) {
      throw new RangeError(`${length} bytes at ${offset} lie outside the ${total}-byte mapping`);
    }
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const w = Math.floor(at / windowSize);
      const within = at - w * windowSize;
      const n = Math.min(length - done, views[w]!.byteLength - within);
      step(views[w]!.subarray(within, within + n), done);
      done += n;
    }
  };
  let unmapped = false;
  return {
    size: total,
    view(offset, length) {
      const w = Math.floor(offset / windowSize);
      const within = offset - w * windowSize;
      const win = views[w];
      if (!win || within + length > win.byteLength) throw new RangeError(`${length} bytes at ${offset} do not lie in one window`);
      return win.subarray(within, within + length);
    },
    read(offset, dst) {
      each(offset, dst.byteLength, (bytes, done) => dst.set(bytes, done));
    },
    write(offset, src) {
      each(offset, src.byteLength, (bytes, done) => bytes.set(src.subarray(done, done + bytes.byteLength)));
    },
    unmap() {
      if (unmapped) return;
      unmapped = true;
      for (const b of buffers) a.munmap(b);
    },
  };
}
