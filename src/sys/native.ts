// The native fd layer: the SysLayer over the C++ addon and the real kernel (/dev/vfio,
// /sys). The addon already throws SysError-shaped errors (code, errno, syscall), so this
// file only supplies the defaults the interface promises; /sys is read with node:fs
// (fs-sysfs.ts rooted at "/").
import { addon, type Addon } from '../addon/addon.js';
import { sysError } from '../addon/errors.js';
import { createFsSysfs } from './fs-sysfs.js';
import type { FdWatcher, Mapping, Sysfs, SysLayer } from './types.js';

export function createNativeSys(): SysLayer {
  const a = addon();
  const c = a.constants;
  const need = (name: string): number => {
    const value = c[name];
    if (value === undefined) throw new Error(`the addon does not export ${name}`);
    return value;
  };
  const defaultOpenFlags = need('O_RDWR') | need('O_CLOEXEC');
  const readWrite = need('PROT_READ') | need('PROT_WRITE');
  const mapShared = need('MAP_SHARED');
  const mapAnonymous = need('MAP_PRIVATE') | need('MAP_ANONYMOUS');
  const eventfdFlags = need('EFD_CLOEXEC') | need('EFD_NONBLOCK');

  return {
    kind: 'native',
    pageSize: a.pageSize,
    open: (path, flags = defaultOpenFlags) => a.open(path, flags),
    close: (fd) => a.close(fd),
    ioctl: (fd, request, arg) => a.ioctl(fd, request, arg),
    pread: (fd, buf, offset) => a.pread(fd, buf, offset),
    pwrite: (fd, buf, offset) => a.pwrite(fd, buf, offset),
    read: (fd, buf) => a.read(fd, buf),
    write: (fd, buf) => a.write(fd, buf),
    mmap: (fd, offset, length, prot) => mappingOf(a, a.mmap(fd, offset, length, prot, mapShared), length),
    allocate(length) {
      // The kernel would take 0 as EINVAL too; say so before the addon's TypeError for
      // negative or fractional lengths, so callers see one error for any bad length.
      if (!Number.isSafeInteger(length) || length <= 0) throw sysError('EINVAL', 'mmap', undefined, `length ${length}`);
      return mappingOf(a, a.mmap(-1, 0n, length, readWrite, mapAnonymous), length);
    },
    munmap: (mapping) => a.munmap(mapping.buffer),
    eventfd: (initval = 0) => a.eventfd(initval, eventfdFlags),
    eventfdRead: (fd) => a.eventfdRead(fd),
    eventfdWrite: (fd, value) => a.eventfdWrite(fd, value),
    watch: (fd, onReadable): FdWatcher => a.watch(fd, onReadable),
    sysfs: nativeSysfs,
  };
}

function mappingOf(a: Addon, buffer: ArrayBuffer, length: number): Mapping {
  return { buffer, address: a.addressOf(buffer), length };
}

/** The real /sys through node:fs, with fs errors turned into SysErrors. */
export const nativeSysfs: Sysfs = createFsSysfs('/');
