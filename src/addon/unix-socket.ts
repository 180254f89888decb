// AF_UNIX stream sockets with fd passing, as the vfio-user server and client use them.
// A thin front over the addon: every fd is non-blocking and close-on-exec, errors stay
// the addon's SysErrors, and only "nothing there yet" (EAGAIN) on accept and receive
// becomes undefined, since a caller polling a socket meets it all the time.
import { addon, type AddonReceived } from './addon.js';
import { isSysError, type SysError } from './errors.js';

/** The most fds one message may carry (the kernel's SCM_MAX_FD). */
export const MAX_FDS_PER_MESSAGE = 253;

/** Data bytes and the fds that came with them; `bytes` 0 means the peer closed. */
export type Received = AddonReceived;

/** recvWithFds()'s error when more fds came than maxFds: all were closed, `bytes` of data landed. */
export interface TruncatedError extends SysError {
  code: 'EMSGSIZE';
  bytes: number;
}

export function isTruncated(err: unknown): err is TruncatedError {
  return isSysError(err, 'EMSGSIZE') && typeof (err as Partial<TruncatedError>).bytes === 'number';
}

/**
 * A listening socket bound to `path`. The fd is closed if bind or listen fails. An
 * existing path (even a stale socket) is EADDRINUSE: unlinking it is the caller's call.
 */
export function listenUnix(path: string, backlog = 16): number {
  const a = addon();
  const fd = a.socket();
  try {
    a.bind(fd, path);
    a.listen(fd, backlog);
    return fd;
  } catch (err) {
    a.close(fd);
    throw err;
  }
}

/**
 * A socket connected to the listener at `path`. Unix connects complete at once:
 * ECONNREFUSED when nobody listens, EAGAIN when the listener's backlog is full.
 */
export function connectUnix(path: string): number {
  const a = addon();
  const fd = a.socket();
  try {
    a.connect(fd, path);
    return fd;
  } catch (err) {
    a.close(fd);
    throw err;
  }
}

/** The next pending connection's fd, or undefined when none waits. */
export function acceptUnix(listener: number): number | undefined {
  return addon().accept(listener) ?? undefined;
}

/**
 * Sends data and, with its first byte, the fds (copies: the caller keeps and closes its
 * own). Returns the bytes sent, possibly fewer; throws EAGAIN when the socket buffer is
 * full (wait with watch(fd, cb, 2)) and EPIPE when the peer has closed.
 */
export function sendWithFds(fd: number, data: ArrayBufferView, fds: readonly number[] = []): number {
  return addon().sendmsg(fd, data, fds);
}

/**
 * Receives into buf up to its length and at most maxFds fds, or undefined when nothing
 * waits. More fds than maxFds: a TruncatedError (see isTruncated).
 */
export function recvWithFds(fd: number, buf: ArrayBufferView, maxFds: number): Received | undefined {
  return addon().recvmsg(fd, buf, maxFds) ?? undefined;
}

/**
 * Blocks the thread until fd has one of `events` (addon().constants.POLLIN, POLLOUT) or
 * timeoutMs passes (-1: no limit). Returns the ready events, 0 on timeout. For
 * synchronous request/reply clients only: the event loop stands still meanwhile.
 */
export function pollFd(fd: number, events: number, timeoutMs: number): number {
  return addon().poll(fd, events, timeoutMs);
}
