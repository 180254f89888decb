// An EventfdSink over real eventfds of this process, for hosts without a kernel of their
// own (the vfio-user server: eventfds arrive as SCM_RIGHTS fds). A reference is a dup
// of the eventfd, so it stays signallable after the fd it was taken from is closed, as
// eventfd_ctx_fdget() keeps the file, and a later file reusing that fd number never
// gets its signals. The dup is closed on release.
import { readlinkSync } from 'node:fs';
import { addon } from '../addon/addon.js';
import { isSysError, sysError } from '../addon/errors.js';
import type { EventfdRef, EventfdSink } from './backend.js';

/** What /proc/self/fd/N reads for an eventfd. */
const EVENTFD_LINK = 'anon_inode:[eventfd]';

/** True when fd is an open eventfd of this process. */
export function isEventfd(fd: number): boolean {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === EVENTFD_LINK;
  } catch {
    return false;
  }
}

export class DupEventfdSink implements EventfdSink {
  private live = 0;

  /** References taken and not released yet (each holds one dup'd fd). */
  get references(): number {
    return this.live;
  }

  /** EBADF if fd is not open, EINVAL if it is open but not an eventfd. */
  acquire(fd: number): EventfdRef {
    if (!Number.isInteger(fd) || fd < 0) throw sysError('EBADF', 'eventfd_ctx_fdget', undefined, `fd ${fd}`);
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      throw sysError('EBADF', 'eventfd_ctx_fdget', undefined, `fd ${fd} is not open`);
    }
    if (link !== EVENTFD_LINK) throw sysError('EINVAL', 'eventfd_ctx_fdget', undefined, `fd ${fd} is not an eventfd (${link})`);
    const a = addon();
    let own: number | undefined = a.dup(fd);
    this.live++;
    return {
      signal: () => {
        if (own === undefined) return;
        try {
          a.eventfdWrite(own, 1n);
        } catch (err) {
          // eventfd_signal() saturates a full counter instead of failing.
          if (!isSysError(err, 'EAGAIN')) throw err;
        }
      },
      release: () => {
        if (own === undefined) return;
        a.close(own);
        own = undefined;
        this.live--;
      },
    };
  }
}
