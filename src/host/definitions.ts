// Saved vGPU definitions in mdevctl's layout: one file per device at
// <root>/<parent>/<uuid> holding mdevctl's JSON (mdevctl-json.ts), so /etc/mdevctl.d works
// as a root and mdevctl reads what we write. Writes are atomic (atomic-write.ts); a
// corrupt file is reported with its path while every other one loads; every name is
// validated (names.ts) before it becomes a path, so nothing escapes the root.
//
// Only regular files of at most 64 KiB are read, never through a link (definition-file.ts):
// a FIFO, a device, a link or a huge file is one entry in `errors` saying why it was skipped.
//
// Differences from mdevctl, on purpose: a file it cannot parse stops mdevctl's whole
// listing, here it is one entry in `errors`; removing a parent's last definition removes
// its (then empty) directory, mdevctl leaves it. Files and directories get mdevctl's modes
// (0644, 0755).
import { chmodSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Definition } from './api.js';
import { MAX_DEFINITION_BYTES, readDefinitionFile, RefusedFile } from './definition-file.js';
import { fsyncDirectory, isTempName, makeDirectories, removeStaleTemps, writeFileAtomic } from './atomic-write.js';
import { definitionFileText, parseDefinitionText, parseDefinitionValue } from './mdevctl-json.js';
import { invalidName, isUuid, RESERVED_PARENT_NAMES, validateParentName, validateUuid } from './names.js';
import { errnoCode, isSysError, sysError, type ErrnoCode, type SysError } from '../addon/errors.js';

export const DEFAULT_DEFINITIONS_ROOT = '/etc/vfio-vgpu.d';

/** The root to use: an explicit choice (the --root flag), else VGPU_DEFINITIONS_ROOT, else the default. */
export function definitionsRoot(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env['VGPU_DEFINITIONS_ROOT'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_DEFINITIONS_ROOT;
}

export interface DefinitionLoadError {
  path: string;
  message: string;
}

export interface LoadResult {
  /** Sorted by parent, then UUID (mdevctl's order). */
  definitions: Definition[];
  errors: DefinitionLoadError[];
}

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

/** Node's fs errors as SysError (positive errno), with a message naming the path. */
function fsError(err: unknown, action: string, path: string): SysError {
  if (isSysError(err) && err.errno > 0) return err;
  const e = err as NodeJS.ErrnoException;
  const code = (typeof e.code === 'string' && errnoCode(-(e.errno ?? 0)) === e.code ? e.code : 'EIO') as ErrnoCode;
  // Node's message is "EACCES: permission denied, open '/x'": keep the description.
  const reason = /^[A-Z]+: ([^,]+)/.exec(e.message ?? '')?.[1] ?? code;
  const out = sysError(code, e.syscall ?? 'open', undefined, `${action} ${path}: ${reason}`);
  out.message = `cannot ${action} ${path}: ${reason}`;
  return out;
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export class DefinitionStore {
  /** Absolute: the daemon tells clients its root, and they look at it from another folder. */
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** <root>/<parent>/<uuid>, after validating both (the UUID in lower case). */
  pathOf(parent: string, uuid: string): string {
    return join(this.root, validateParentName(parent), validateUuid(uuid));
  }

  /** Every definition under the root, and every file that could not be read, with its path. */
  load(): LoadResult {
    const definitions: Definition[] = [];
    const errors: DefinitionLoadError[] = [];
    let parents: string[];
    try {
      parents = readdirSync(this.root).sort();
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return { definitions, errors };
      errors.push({ path: this.root, message: fsError(err, 'read', this.root).message });
      return { definitions, errors };
    }
    for (const parent of parents) {
      // Dot entries (.git, editors) and mdevctl's scripts.d are not parents.
      if (parent.startsWith('.') || RESERVED_PARENT_NAMES.includes(parent)) continue;
      const dir = join(this.root, parent);
      if (!isDirectory(dir)) continue;
      try {
        validateParentName(parent);
      } catch (err) {
        errors.push({ path: dir, message: (err as Error).message });
        continue;
      }
      for (const name of this.uuidFiles(dir, errors)) {
        const path = join(dir, name);
        try {
          definitions.push(this.read(parent, name.toLowerCase(), path));
        } catch (err) {
          errors.push({ path, message: (err as Error).message });
        }
      }
    }
    return { definitions, errors };
  }

  /** The definitions a list filter (`list -d -u/-p`) selects, the filter validated first. */
  select(filter: { uuid?: string; parent?: string } = {}): Definition[] {
    const uuid = filter.uuid === undefined ? undefined : validateUuid(filter.uuid);
    const parent = filter.parent === undefined ? undefined : validateParentName(filter.parent);
    return this.load().definitions.filter((d) => (uuid === undefined || d.uuid === uuid) && (parent === undefined || d.parent === parent));
  }

  /** The definitions of `uuid` under every parent (mdevctl allows one UUID under several). */
  find(uuid: string): Definition[] {
    const id = validateUuid(uuid);
    const out: Definition[] = [];
    let parents: string[];
    try {
      parents = readdirSync(this.root).sort();
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return out;
      throw fsError(err, 'read', this.root);
    }
    for (const parent of parents) {
      if (parent.startsWith('.') || RESERVED_PARENT_NAMES.includes(parent)) continue;
      try {
        validateParentName(parent);
      } catch {
        continue;
      }
      const found = this.get(parent, id);
      if (found) out.push(found);
    }
    return out;
  }

  /** The definition of `uuid` under `parent`, or undefined; a file that cannot be read throws, naming it. */
  get(parent: string, uuid: string): Definition | undefined {
    this.pathOf(parent, uuid);
    const id = uuid.toLowerCase();
    const dir = join(this.root, parent);
    const name = this.variants(dir, id)[0];
    if (name === undefined) return undefined;
    try {
      return this.read(parent, id, join(dir, name));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined; // removed meanwhile
      throw err;
    }
  }

  /** Writes (or replaces) a definition atomically, creating its parent directory when needed. */
  save(definition: Definition): void {
    const path = this.pathOf(definition.parent, definition.uuid);
    const body = parseDefinitionValue(JSON.parse(definitionFileText(definition)));
    const text = definitionFileText(body);
    // Readers refuse bigger files (definition-file.ts): never write one they would skip.
    if (Buffer.byteLength(text) > MAX_DEFINITION_BYTES) {
      throw invalidName(`the definition of ${definition.uuid} would be ${Buffer.byteLength(text)} bytes, over the ${MAX_DEFINITION_BYTES}-byte limit of a definition file`);
    }
    const dir = join(this.root, definition.parent);
    // A concurrent remove() may delete the parent directory once it is empty, between
    // our mkdir and our write: make it again and retry.
    for (let attempt = 0; ; attempt++) {
      this.ensureDirectory(dir);
      try {
        writeFileAtomic(path, text, FILE_MODE);
        break;
      } catch (err) {
        if (errorCode(err) === 'ENOENT' && attempt < 3) continue;
        throw fsError(err, 'save', path);
      }
    }
    // A file of the same UUID in upper case (mdevctl reads those too) would now be a twin.
    const uuid = definition.uuid.toLowerCase();
    for (const other of this.variants(dir, uuid)) {
      if (other !== uuid) this.unlink(join(dir, other));
    }
  }

  /** Removes the definition; removes the parent's directory when it was the last. Returns whether it existed. */
  remove(parent: string, uuid: string): boolean {
    this.pathOf(parent, uuid);
    const dir = join(this.root, parent);
    const names = this.variants(dir, uuid.toLowerCase());
    let removed = false;
    for (const name of names) removed = this.unlink(join(dir, name)) || removed;
    if (!removed) return false;
    fsyncDirectory(dir);
    removeStaleTemps(dir);
    try {
      rmdirSync(dir);
      fsyncDirectory(this.root);
    } catch (err) {
      // Not empty (other definitions, a writer's temporary file): it stays.
      if (!['ENOTEMPTY', 'EEXIST', 'ENOENT', 'EBUSY'].includes(errorCode(err) ?? '')) throw fsError(err, 'remove', dir);
    }
    return true;
  }

  private read(parent: string, uuid: string, path: string): Definition {
    let text: string;
    try {
      text = readDefinitionFile(path);
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || err instanceof RefusedFile) throw err;
      throw fsError(err, 'read', path);
    }
    try {
      return { uuid, parent, ...parseDefinitionText(text) };
    } catch (err) {
      const e = err as SysError;
      e.message = `${path}: ${e.message}`;
      throw e;
    }
  }

  /** The UUID-named regular files of a parent directory; cleans a dead writer's temporary files. */
  private uuidFiles(dir: string, errors: DefinitionLoadError[]): string[] {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      errors.push({ path: dir, message: fsError(err, 'read', dir).message });
      return [];
    }
    if (names.some(isTempName)) removeStaleTemps(dir);
    return names.filter((name) => isUuid(name) && !isDirectory(join(dir, name)))
      // Sort on the lower-case UUID, the order mdevctl lists them in.
      .sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));
  }

  /** File names in `dir` naming `uuid` in any case, the lower-case one first. */
  private variants(dir: string, uuid: string): string[] {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return [];
      throw fsError(err, 'read', dir);
    }
    const found = names.filter((n) => n.toLowerCase() === uuid && isUuid(n) && !isDirectory(join(dir, n)));
    return found.sort((a, b) => (a === uuid ? -1 : b === uuid ? 1 : 0));
  }

  private ensureDirectory(dir: string): void {
    try {
      makeDirectories(this.root, DIR_MODE);
    } catch (err) {
      throw fsError(err, 'create', this.root);
    }
    try {
      mkdirSync(dir, { mode: DIR_MODE });
      chmodSync(dir, DIR_MODE);
      fsyncDirectory(this.root);
    } catch (err) {
      if (errorCode(err) === 'EEXIST' && isDirectory(dir)) return;
      throw fsError(err, 'create', dir);
    }
  }

  private unlink(path: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw fsError(err, 'remove', path);
    }
  }
}
