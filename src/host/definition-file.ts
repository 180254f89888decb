// Reading one definition file without trusting what sits at its path. A definition is a
// few hundred bytes of JSON in a regular file; anything else in the folder (a FIFO that
// would block the open or the read forever, a device, a link to /dev/zero or to a secret,
// a huge or sparse file) is refused before a byte is read, with a reason that names it.
// Links are never followed (mdevctl skips them too): lstat first, then open with
// O_NOFOLLOW | O_NONBLOCK and check the open file again, so a swap between the two
// cannot make us block or follow.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { errnoNumber } from '../addon/errors.js';

/** The largest definition file read (and written): 64 KiB, a hundred times a real one. */
export const MAX_DEFINITION_BYTES = 64 * 1024;

/** Why a path is not read as a definition; undefined for a regular file within the cap. */
export function refusalOf(stats: Stats): string | undefined {
  if (stats.isSymbolicLink()) return 'a symbolic link (definitions are never followed through links)';
  if (stats.isFIFO()) return 'a FIFO, not a regular file';
  if (stats.isSocket()) return 'a socket, not a regular file';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device node, not a regular file';
  if (stats.isDirectory()) return 'a directory, not a regular file';
  if (!stats.isFile()) return 'not a regular file';
  if (stats.size > MAX_DEFINITION_BYTES) return `${stats.size} bytes, over the ${MAX_DEFINITION_BYTES}-byte limit of a definition`;
  return undefined;
}

/** A file that is not a definition: skipped, with the reason (code EINVAL; ELOOP for a link). */
export class RefusedFile extends Error {
  readonly errno: number;
  readonly syscall = 'open';
  constructor(readonly path: string, reason: string, readonly code: 'EINVAL' | 'ELOOP' | 'EFBIG' = 'EINVAL') {
    super(`${path}: skipped: ${reason}`);
    this.errno = errnoNumber(code);
  }
}

function codeFor(stats: Stats): 'EINVAL' | 'ELOOP' | 'EFBIG' {
  if (stats.isSymbolicLink()) return 'ELOOP';
  return stats.isFile() ? 'EFBIG' : 'EINVAL';
}

/**
 * The text of the definition file at `path`. Throws RefusedFile for anything but a
 * regular file of at most MAX_DEFINITION_BYTES, and Node's error (ENOENT...) when it
 * cannot be opened. Never blocks, never follows a link, never reads past the cap.
 */
export function readDefinitionFile(path: string): string {
  const before = lstatSync(path);
  const refused = refusalOf(before);
  if (refused !== undefined) throw new RefusedFile(path, refused, codeFor(before));
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new RefusedFile(path, refusalOf(lstatSync(path)) ?? 'a symbolic link', 'ELOOP');
    throw err;
  }
  try {
    // The path may have been swapped since the lstat: judge what was opened.
    const stats = fstatSync(fd);
    const again = refusalOf(stats);
    if (again !== undefined) throw new RefusedFile(path, again, codeFor(stats));
    // One byte more than the cap tells a file that grew meanwhile.
    const buffer = Buffer.alloc(MAX_DEFINITION_BYTES + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_DEFINITION_BYTES) throw new RefusedFile(path, `over the ${MAX_DEFINITION_BYTES}-byte limit of a definition`, 'EFBIG');
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
