// Eventfds of the mock kernel: real eventfds made through the addon, remembered so a
// device can tell an eventfd from any other fd (SET_IRQS: EINVAL for a non-eventfd,
// EBADF for a closed fd) and signal it as eventfd_signal() does.
import { addon } from '../addon.js';
import { isSysError, sysError } from '../errors.js';
import type { EventfdSink } from './device.js';
import type { FdTable } from './fd-table.js';
import { HostFile } from './host-file.js';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

export class EventfdRegistry implements EventfdSink {
  constructor(private readonly fds: FdTable) {}

  /** eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK. */
  create(initval = 0): number {
    if (!Number.isInteger(initval) || initval < 0 || initval > 0xffff_ffff) {
      throw sysError('EINVAL', 'eventfd', undefined, `initval ${initval}`);
    }
    const a = addon();
    const fd = a.eventfd(initval, (a.constants['EFD_CLOEXEC'] ?? EFD_CLOEXEC) | (a.constants['EFD_NONBLOCK'] ?? EFD_NONBLOCK));
    this.fds.adopt(fd, new HostFile(fd, 'eventfd'));
    return fd;
  }

  signal(fd: number): void {
    if (!this.isEventfd(fd)) throw sysError('EBADF', 'eventfd_signal', undefined, `fd ${fd} is not an open eventfd`);
    try {
      addon().eventfdWrite(fd, 1n);
    } catch (err) {
      // eventfd_signal() saturates a full counter instead of failing.
      if (!isSysError(err, 'EAGAIN')) throw err;
    }
  }

  isEventfd(fd: number): boolean {
    return this.fds.get(fd)?.kind === 'eventfd';
  }

  isOpen(fd: number): boolean {
    return this.fds.get(fd) !== undefined;
  }
}
