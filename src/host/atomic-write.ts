// Crash-safe file replacement: the new content goes to a temporary file in the same
// directory, is fsync'ed, then renamed over the target, and the directory is fsync'ed so
// the rename itself survives a power cut. A crash at any point leaves the old file or the
// new one, never a mix; at worst a temporary file is left behind, whose name says what it
// is (TEMP_PREFIX, never a UUID) so readers skip it and removeStaleTemps() clears it.
import { chmodSync, closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync, constants } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';

/** Every temporary file starts with this: a dot file that no UUID parser accepts. */
export const TEMP_PREFIX = '.vgpu-tmp-';

let sequence = 0;

/** Whether `name` is one of our temporary files. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** `.vgpu-tmp-<pid>-<seq>-<target>`: the writer's pid lets a later reader tell a dead writer's leftovers. */
function tempName(target: string): string {
  sequence = (sequence + 1) % 1_000_000_000;
  return `${TEMP_PREFIX}${process.pid}-${sequence}-${basename(target)}`;
}

/** Opens a directory read-only and fsyncs it, so the entries created or removed in it are on disk. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * mkdir -p, each folder it creates getting exactly `mode` whatever the umask (mkdir's mode is
 * masked by it: under umask 077 a definitions folder would be 0700). Folders that exist keep theirs.
 */
export function makeDirectories(path: string, mode: number): void {
  const first = mkdirSync(path, { recursive: true, mode });
  if (first === undefined) return;
  let dir = first;
  chmodSync(dir, mode);
  for (const part of relative(first, path).split(sep).filter((p) => p !== '')) {
    dir = join(dir, part);
    chmodSync(dir, mode);
  }
}

/** Replaces `path` with `data` atomically; the file gets exactly `mode`, whatever the umask. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  const temp = join(dir, tempName(path));
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  let renamed = false;
  try {
    try {
      fchmodSync(fd, mode);
      for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      try { unlinkSync(temp); } catch { /* already gone: nothing to clean */ }
    }
  }
  fsyncDirectory(dir);
}

/** The pid a temporary file's name carries, if it is ours. */
function writerPid(name: string): number | undefined {
  const m = /^(\d+)-/.exec(name.slice(TEMP_PREFIX.length));
  return m ? Number(m[1]) : undefined;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes temporary files in `dir` left by writers that died (their pid is gone) or that
 * are older than `maxAgeMs`. Files of a live writer are left alone: it may be about to
 * rename them. Failures (a read-only root, no permission) are ignored: the files are
 * harmless, readers skip them. Returns the names removed.
 */
export function removeStaleTemps(dir: string, maxAgeMs = 10 * 60_000): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!isTempName(name)) continue;
    const path = join(dir, name);
    try {
      const pid = writerPid(name);
      const old = Date.now() - statSync(path).mtimeMs > maxAgeMs;
      if (pid !== undefined && processAlive(pid) && !old) continue;
      unlinkSync(path);
      removed.push(name);
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
  return removed;
}
