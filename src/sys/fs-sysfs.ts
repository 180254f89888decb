// A Sysfs over a directory of the real file system: every absolute /sys path is read
// under `root`. With root "/" it is the machine's own /sys (the native fd layer's);
// with a temporary folder it is a fake tree shaped like the kernel's ABI, for tests of
// code that manages kernel mdev parents. fs errors become SysErrors with their errno.
import { closeSync, constants as fsConstants, existsSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync, writeSync } from 'node:fs';
import { constants as os } from 'node:os';
import { posix, resolve } from 'node:path';
import { errnoCode, sysError, type ErrnoCode } from '../addon/errors.js';
import type { Sysfs } from './types.js';

/** A Sysfs whose absolute paths are resolved under `root` (paths that escape it are EXDEV). */
export function createFsSysfs(root: string): Sysfs {
  const base = resolve(root);
  const confined = base !== '/';
  // The real location of root, to check that symlinks in the tree stay inside it.
  let realBase: string | undefined;
  const realRoot = (): string => (realBase ??= realpathSync(base));

  // readlink reads the link itself: only the directory holding it must be inside root.
  const at = (path: string, syscall: string, followLast = true): string => {
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
      throw sysError('EINVAL', syscall, undefined, `not an absolute path: ${JSON.stringify(path)}`);
    }
    // normalize() of an absolute path never climbs above "/", so the lexical path stays in root.
    const normal = posix.normalize(path);
    if (!confined) return normal;
    const full = normal === '/' ? base : `${base}${normal}`;
    checkInside(followLast ? full : posix.dirname(full), syscall, path);
    return full;
  };

  // A symlink in the tree may point out of it: follow the deepest existing ancestor
  // and refuse what lands outside root.
  const checkInside = (full: string, syscall: string, shown: string): void => {
    let probe = full;
    for (;;) {
      let real: string | undefined;
      try {
        real = realpathSync(probe);
      } catch {
        real = undefined;
      }
      if (real !== undefined) {
        const top = realRoot();
        if (real !== top && !real.startsWith(`${top}/`)) throw sysError('EXDEV', syscall, undefined, `${shown} leads out of ${base}`);
        return;
      }
      const parent = posix.dirname(probe);
      if (parent === probe || parent.length < base.length) return;
      probe = parent;
    }
  };

  return {
    exists(path) {
      try {
        return existsSync(at(path, 'stat'));
      } catch {
        return false;
      }
    },
    list: (path) => withSysError('scandir', path, () => readdirSync(at(path, 'scandir')).sort()),
    read(path) {
      const text = withSysError('open', path, () => readFileSync(at(path, 'open'), 'utf8'));
      return text.endsWith('\n') ? text.slice(0, -1) : text;
    },
    write(path, value) {
      // One write(2) on an fd opened write-only (libuv adds O_CLOEXEC): no O_CREAT or
      // O_TRUNC, and no read access, which write-only attributes (an mdev type's
      // `create`) refuse with EACCES.
      const fd = withSysError('open', path, () => openSync(at(path, 'open'), fsConstants.O_WRONLY));
      try {
        withSysError('write', path, () => writeSync(fd, value));
      } finally {
        closeSync(fd);
      }
    },
    readlink: (path) => withSysError('readlink', path, () => readlinkSync(at(path, 'readlink', false))),
  };
}

/**
 * The errno of an fs error, or undefined for an error that is no system call's. libuv
 * names errnos it does not know 'UNKNOWN' (EUSERS, what mdev_device_create returns for a
 * full type of a driver without get_available): their number still says which.
 */
export function fsErrnoCode(err: unknown): ErrnoCode | undefined {
  const { code, errno } = (err ?? {}) as { code?: unknown; errno?: unknown };
  if (typeof code === 'string' && code in os.errno) return code as ErrnoCode;
  return code === 'UNKNOWN' && typeof errno === 'number' ? errnoCode(Math.abs(errno)) : undefined;
}

/** Runs an fs call; its error becomes a SysError with the same errno and syscall. */
function withSysError<T>(syscall: string, path: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    const code = fsErrnoCode(err);
    if (code === undefined) throw err;
    const { syscall: fsSyscall } = err as { syscall?: unknown };
    throw sysError(code, typeof fsSyscall === 'string' ? fsSyscall : syscall, undefined, path);
  }
}
