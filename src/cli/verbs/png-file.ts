// Where `vgpu screenshot` puts its PNG: stdout for `-`, else a file replaced atomically,
// but only a regular file (or nothing): a symlink, a folder or a device at the target is
// refused rather than replaced. Errors name the target, never the temporary file.
import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { sysError, type ErrnoCode } from '../../addon/errors.js';
import { writeFileAtomic } from '../../host/atomic-write.js';
import type { Output } from '../output.js';

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function refusal(code: ErrnoCode, message: string): Error {
  const err = sysError(code, 'screenshot');
  err.message = message;
  return err;
}

/** What stands at `path` when it is not a regular file, in words; undefined for a file or nothing. */
function notRegular(path: string): string | undefined {
  try {
    const stat = lstatSync(path);
    if (stat.isFile()) return undefined;
    if (stat.isSymbolicLink()) return 'a symbolic link';
    if (stat.isDirectory()) return 'a folder';
    return 'not a regular file';
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

const plainly: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOENT: 'its folder does not exist',
  ENOTDIR: 'a part of its path is not a folder',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'over the disk quota',
  EISDIR: 'it is a folder',
};

/** Writes `png` to `file` (`-` is stdout) and returns where it went, for the summary line. */
export function savePng(file: string, png: Uint8Array, output: Output): string {
  if (file === '-') {
    if (output.bytes) output.bytes(png);
    else process.stdout.write(png);
    return 'stdout';
  }
  const path = resolve(file);
  const what = notRegular(path);
  if (what !== undefined) throw refusal('EEXIST', `will not replace ${path}: it is ${what}, not a regular file`);
  try {
    writeFileAtomic(path, png);
  } catch (err) {
    const code = codeOf(err);
    const why = code === undefined ? 'failed' : `${plainly[code] ?? code}`;
    throw refusal((code ?? 'EIO') as ErrnoCode, `cannot write ${path}: ${why}`);
  }
  return path;
}
