// The shape of a command handler: what it gets (the request, its fds, the session) and
// what it gives back (a reply body and fds to send). Handlers throw SysErrors; the
// connection turns them into error replies.
import { addon } from '../../../addon/addon.js';
import type { VfioUserBody, VfioUserHeader } from '../../../uapi/vfio-user/index.js';
import type { Session } from '../session.js';

/** The fds a message brought. A handler take()s those it keeps; the rest are closed after it. */
export class ReceivedFds {
  private readonly fds: (number | undefined)[];

  constructor(fds: readonly number[]) {
    this.fds = [...fds];
  }

  get count(): number {
    return this.fds.length;
  }

  /** Fd i, still owned by this bag (closed afterwards unless taken). */
  peek(i: number): number {
    const fd = this.fds[i];
    if (fd === undefined) throw new RangeError(`fd ${i} of ${this.fds.length} is taken or absent`);
    return fd;
  }

  /** Fd i, now the caller's to close. */
  take(i: number): number {
    const fd = this.peek(i);
    this.fds[i] = undefined;
    return fd;
  }

  /** Closes every fd not taken. Idempotent. */
  closeRest(): void {
    for (let i = 0; i < this.fds.length; i++) {
      const fd = this.fds[i];
      if (fd === undefined) continue;
      this.fds[i] = undefined;
      try {
        addon().close(fd);
      } catch {
        // Not ours any more: nothing left to leak.
      }
    }
  }
}

export interface Request {
  readonly header: VfioUserHeader;
  readonly body: Uint8Array;
  readonly fds: ReceivedFds;
}

export interface Reply {
  readonly body?: VfioUserBody;
  /** Fds to send with the reply (the sender keeps its own; sendmsg copies). */
  readonly fds?: readonly number[];
}

export interface CommandSpec {
  /** Fds the command may carry: a number, or asked per request. More is EINVAL. */
  readonly maxFds: number | ((session: Session) => number);
  handle(request: Request, session: Session): Reply;
}

export const EMPTY_REPLY: Reply = {};
