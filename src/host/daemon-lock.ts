// The daemon's single-instance locks: flock(LOCK_EX | LOCK_NB) on a lock file beside its
// socket (two daemons started together on one stale socket: one wins) and on its
// definitions folder itself (two daemons on different sockets never share definitions,
// which they would both autostart). The kernel releases a lock when its holder dies, so
// nothing stale is ever left to judge; the lock file stays, empty, and is reused.
import { closeSync, constants, openSync } from 'node:fs';
import { makeDirectories } from './atomic-write.js';
import { addon } from '../addon/addon.js';
import type { SysError } from '../addon/errors.js';
import { sysErrorSaying } from './protocol.js';

export interface HeldLock {
  readonly path: string;
  /** Drops the lock (closes its fd). Idempotent. */
  release(): void;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Takes the lock on the open file `fd`, or closes it and throws `busy`. */
function take(fd: number, path: string, busy: () => SysError): HeldLock {
  let locked: boolean;
  try {
    locked = addon().tryLockExclusive(fd);
  } catch (err) {
    closeSync(fd);
    throw sysErrorSaying(codeOf(err), 'flock', `cannot lock ${path}: ${codeOf(err) ?? String(err)}`);
  }
  if (!locked) {
    closeSync(fd);
    throw busy();
  }
  let open = true;
  return { path, release: () => { if (open) { open = false; closeSync(fd); } } };
}

/** Locks `<socket>.lock` (made 0600 when missing): EADDRINUSE when another daemon holds it. */
export function lockSocket(socketPath: string): HeldLock {
  const path = `${socketPath}.lock`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw sysErrorSaying(codeOf(err), 'open', `cannot open the lock file ${path}: ${codeOf(err) ?? String(err)}`);
  }
  // The words of a refused bind (daemon.ts), which scripts may already match.
  return take(fd, path, () => sysErrorSaying('EADDRINUSE', 'bind',
    `a vgpu daemon already runs at ${socketPath} (stop it first, or choose another --socket)`));
}

/** Locks the definitions folder itself (made 0755 when missing): EBUSY when another daemon uses it. */
export function lockDefinitions(root: string): HeldLock {
  let fd: number;
  try {
    makeDirectories(root, 0o755);
    fd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw sysErrorSaying(codeOf(err), 'open', `cannot open the definitions folder ${root} to lock it: ${codeOf(err) ?? String(err)}`);
  }
  return take(fd, root, () => sysErrorSaying('EBUSY', 'flock',
    `another vgpu daemon uses the definitions in ${root} (two daemons would both start its auto definitions; stop it first, or choose another --root)`));
}
