// The mock fd layer: the SysLayer interface over an in-process MockKernel, for machines
// without /dev/vfio. Paths under /dev/vfio are the mock kernel's; any other path is
// opened for real (so /dev/null is a real, non-VFIO fd, as on a real host).
import { addon } from '../addon/addon.js';
import { sysError } from '../addon/errors.js';
import type { MockFile } from './mock/fd-table.js';
import { createEduDevice } from './mock/devices/edu.js';
import { HostFile } from './mock/host-file.js';
import { MockKernel } from './mock/kernel.js';
import { allocateAnonymous, pageAlign } from '../device/memory.js';
import type { MockKernelOptions } from './mock/options.js';
import type { FdWatcher, Mapping, SysLayer } from './types.js';
import { O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE } from './types.js';
import type { MockPciDevice } from './mock/pci/model.js';

export { MockKernel } from './mock/kernel.js';
export type { KernelFlavour, MockKernelOptions } from './mock/options.js';

/** A simulated PCI device to add, with the IOMMU group it should get (default: a new one). */
export interface MockPciDeviceEntry {
  device: MockPciDevice;
  group?: number;
}

export interface MockSysOptions extends MockKernelOptions {
  /** PCI devices to register; default: one simulated QEMU edu at 0000:00:04.0. */
  devices?: readonly (MockPciDevice | MockPciDeviceEntry)[];
}

/** Where the default simulated edu sits: where QEMU puts it with `-device edu,addr=04.0`. */
export const DEFAULT_EDU_ADDRESS = '0000:00:04.0';

export type MockSysLayer = SysLayer & { readonly kind: 'mock'; readonly kernel: MockKernel };

function checkFd(fd: unknown, syscall: string): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) throw new TypeError(`${syscall}: fd must be an integer`);
  return fd;
}

export function createMockSys(options: MockSysOptions = {}): MockSysLayer {
  const kernel = new MockKernel(options);
  for (const entry of options.devices ?? [createEduDevice(DEFAULT_EDU_ADDRESS)]) {
    const { device, group } = 'device' in entry ? entry : { device: entry, group: undefined };
    kernel.registerPciDevice(device, group === undefined ? {} : { group });
  }
  const { fds, mm, eventfds } = kernel;
  const pageSize = kernel.options.pageSize;

  const file = (fd: unknown, syscall: string): MockFile => fds.lookup(checkFd(fd, syscall), syscall);
  const realFd = (fd: unknown, syscall: string): number => {
    const f = file(fd, syscall);
    if (f instanceof HostFile) return f.fd;
    throw sysError('EINVAL', syscall, undefined, `fd ${String(fd)} is a VFIO fd`);
  };

  const sys: MockSysLayer = {
    kind: 'mock',
    pageSize,
    kernel,
    sysfs: kernel.sysfs,

    open(path, flags = O_RDWR | O_CLOEXEC) {
      if (typeof path !== 'string') throw new TypeError('open: path must be a string');
      if (kernel.ownsPath(path)) return kernel.openVfio(path);
      const fd = addon().open(path, flags);
      fds.adopt(fd, new HostFile(fd, 'host'));
      return fd;
    },

    close(fd) {
      fds.close(checkFd(fd, 'close'));
    },

    ioctl(fd, request, arg) {
      if (typeof request !== 'number' || !Number.isInteger(request)) throw new TypeError('ioctl: request must be an integer');
      if (arg !== undefined && typeof arg !== 'number' && !(arg instanceof Uint8Array)) {
        throw new TypeError('ioctl: arg must be a number or a Uint8Array');
      }
      // The kernel takes the request as an unsigned int.
      return file(fd, 'ioctl').ioctl(request >>> 0, arg);
    },

    pread(fd, buf, offset) {
      if (!(buf instanceof Uint8Array)) throw new TypeError('pread: buf must be a Uint8Array');
      if (offset < 0n) throw sysError('EINVAL', 'pread', undefined, 'negative offset');
      return file(fd, 'pread').pread(buf, BigInt(offset));
    },

    pwrite(fd, buf, offset) {
      if (!(buf instanceof Uint8Array)) throw new TypeError('pwrite: buf must be a Uint8Array');
      if (offset < 0n) throw sysError('EINVAL', 'pwrite', undefined, 'negative offset');
      return file(fd, 'pwrite').pwrite(buf, BigInt(offset));
    },

    read(fd, buf) {
      if (!(buf instanceof Uint8Array)) throw new TypeError('read: buf must be a Uint8Array');
      const f = file(fd, 'read');
      if (f instanceof HostFile) return addon().read(f.fd, buf);
      if (!f.read) throw sysError('EINVAL', 'read', undefined, `fd ${String(fd)} is not read without an offset`);
      return f.read(buf);
    },

    write(fd, buf) {
      if (!(buf instanceof Uint8Array)) throw new TypeError('write: buf must be a Uint8Array');
      const f = file(fd, 'write');
      if (f instanceof HostFile) return addon().write(f.fd, buf);
      if (!f.write) throw sysError('EINVAL', 'write', undefined, `fd ${String(fd)} is not written without an offset`);
      return f.write(buf);
    },

    mmap(fd, offset, length, prot) {
      const f = file(fd, 'mmap');
      if (!Number.isSafeInteger(length) || length <= 0) throw sysError('EINVAL', 'mmap', undefined, `length ${length}`);
      if (offset < 0n || BigInt(offset) % BigInt(pageSize) !== 0n) throw sysError('EINVAL', 'mmap', undefined, `offset ${offset}`);
      return f.mmap(BigInt(offset), length, prot);
    },

    allocate(length) {
      if (!Number.isSafeInteger(length) || length <= 0) throw sysError('EINVAL', 'mmap', undefined, `length ${length}`);
      // Whole pages: every byte of the mapping is reachable by DMA.
      const mapping = allocateAnonymous(pageAlign(length, pageSize), PROT_READ | PROT_WRITE);
      mm.add(mapping, PROT_READ | PROT_WRITE, true);
      return mapping;
    },

    munmap(mapping: Mapping) {
      mm.unmap(mapping);
    },

    eventfd(initval = 0) {
      return eventfds.create(initval);
    },

    eventfdRead(fd) {
      return addon().eventfdRead(realFd(fd, 'read'));
    },

    eventfdWrite(fd, value) {
      addon().eventfdWrite(realFd(fd, 'write'), value);
    },

    watch(fd, onReadable): FdWatcher {
      if (typeof onReadable !== 'function') throw new TypeError('watch: onReadable must be a function');
      const f = file(fd, 'epoll_ctl');
      // VFIO fds cannot be polled for events (epoll_ctl gives EPERM for them).
      if (!(f instanceof HostFile)) throw sysError('EPERM', 'epoll_ctl', undefined, `fd ${String(fd)} is a VFIO fd`);
      return addon().watch(f.fd, onReadable);
    },
  };
  return sys;
}
