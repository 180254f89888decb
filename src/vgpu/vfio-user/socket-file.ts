// The socket files of a vfio-user server: a run directory (0700, made if missing) with
// one listening socket per device (0600). A socket file left by a server that died is
// replaced; one that a live server still listens on is EADDRINUSE; any other kind of
// file at that path is EEXIST (it is not ours to delete).
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { addon } from '../../addon/addon.js';
import { isSysError, sysError } from '../../addon/errors.js';
import { connectUnix } from '../../addon/unix-socket.js';

export function prepareRunDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Whether `path` names a socket somebody listens on. */
function isLive(path: string): boolean {
  try {
    addon().close(connectUnix(path));
    return true;
  } catch (err) {
    if (isSysError(err, 'EAGAIN')) return true; // a full backlog is a live listener
    return false;
  }
}

/** Clears the way for a new socket at `path`: nothing there, or a dead server's socket. */
function clearStale(path: string): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw sysError('EEXIST', 'bind', undefined, `${path} exists and is not a socket`);
  if (isLive(path)) throw sysError('EADDRINUSE', 'bind', undefined, `a server already listens on ${path}`);
  unlinkSync(path);
}

/**
 * A listening socket at `path` with file mode `mode`: bound, given its mode, then
 * listening, so no client connects before the mode is set. Closed (and the file
 * removed) if any step fails.
 */
export function listenAt(path: string, mode: number, backlog = 16): number {
  clearStale(path);
  const a = addon();
  const fd = a.socket();
  let bound = false;
  try {
    a.bind(fd, path);
    bound = true;
    chmodSync(path, mode);
    a.listen(fd, backlog);
    return fd;
  } catch (err) {
    a.close(fd);
    if (bound) removeSocketFile(path);
    throw err;
  }
}

/** Removes a socket file if it is still there. */
export function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
