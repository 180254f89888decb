// Eventfds of the mock kernel: real eventfds made through the addon, remembered so a
// device can tell an eventfd from any other fd (SET_IRQS: EINVAL for a non-eventfd,
// EBADF for a closed fd). Binding one takes a reference, as eventfd_ctx_fdget() does:
// it signals through the user's fd while that is open, and when the user closes it the
// file is kept alive by a dup private to the kernel (made just before the close, shared
// by every reference to that file, closed with the last of them). So the process shows
// no extra fd while the user's is open, as with the real kernel, and a new file that
// reuses the fd number never gets the old binding's signals.
import { addon } from '../../addon/addon.js';
import { isSysError, sysError } from '../../addon/errors.js';
import type { EventfdRef, EventfdSink } from '../../device/backend.js';
import type { FdTable } from './fd-table.js';
import { HostFile } from './host-file.js';

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** The kernel's own fd for an eventfd file the user closed, shared by its references. */
interface KeptFile {
  readonly fd: number;
  users: number;
}

interface RefState {
  /** Where signals go: the user's open file, the kept dup, or nowhere once released. */
  target: EventfdFile | KeptFile | undefined;
  released: boolean;
}

/** An eventfd the user holds through this sys layer. */
class EventfdFile extends HostFile {
  /** References that signal through this fd while it is open. */
  readonly borrowers = new Set<RefState>();

  constructor(fd: number) {
    super(fd, 'eventfd');
  }

  /** The user closes the fd (called before the real close): references move to a dup. */
  override release(): void {
    if (this.borrowers.size === 0) return;
    let kept: KeptFile | undefined;
    try {
      kept = { fd: addon().dup(this.fd), users: this.borrowers.size };
    } catch {
      // No fd left for the dup (EMFILE): the references lose their eventfd and signal nothing.
    }
    for (const ref of this.borrowers) ref.target = kept;
    this.borrowers.clear();
  }
}

export class EventfdRegistry implements EventfdSink {
  private live = 0;

  constructor(private readonly fds: FdTable) {}

  /** eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK. */
  create(initval = 0): number {
    if (!Number.isInteger(initval) || initval < 0 || initval > 0xffff_ffff) {
      throw sysError('EINVAL', 'eventfd', undefined, `initval ${initval}`);
    }
    const a = addon();
    const fd = a.eventfd(initval, (a.constants['EFD_CLOEXEC'] ?? EFD_CLOEXEC) | (a.constants['EFD_NONBLOCK'] ?? EFD_NONBLOCK));
    this.fds.adopt(fd, new EventfdFile(fd));
    return fd;
  }

  acquire(fd: number): EventfdRef {
    const file = this.fds.get(fd);
    if (!file) throw sysError('EBADF', 'eventfd_ctx_fdget', undefined, `fd ${fd} is not open`);
    if (!(file instanceof EventfdFile)) throw sysError('EINVAL', 'eventfd_ctx_fdget', undefined, `fd ${fd} is not an eventfd`);
    const state: RefState = { target: file, released: false };
    file.borrowers.add(state);
    this.live++;
    return {
      signal: () => {
        const target = state.target;
        if (!target) return;
        try {
          addon().eventfdWrite(target.fd, 1n);
        } catch (err) {
          // eventfd_signal() saturates a full counter instead of failing.
          if (!isSysError(err, 'EAGAIN')) throw err;
        }
      },
      release: () => {
        if (state.released) return;
        state.released = true;
        this.live--;
        const target = state.target;
        state.target = undefined;
        if (target instanceof EventfdFile) target.borrowers.delete(state);
        else if (target && --target.users === 0) addon().close(target.fd);
      },
    };
  }

  /** References taken and not released yet. */
  get references(): number {
    return this.live;
  }

  /** True when fd is an open eventfd of this kernel. */
  isEventfd(fd: number): boolean {
    return this.fds.get(fd) instanceof EventfdFile;
  }

  /** True when fd is open at all in this sys layer. */
  isOpen(fd: number): boolean {
    return this.fds.get(fd) !== undefined;
  }
}
