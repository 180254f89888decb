// The mock kernel's /sys: an in-memory tree of directories, attributes and symlinks,
// read and written the way the VFS and kernfs answer. Paths resolve through symlinks
// (relative targets, "..", loops end in ELOOP). An attribute has a mode and show/store
// handlers; opening one for writing without a write bit or a store handler is EACCES
// (kernfs checks this itself, so even root gets EACCES), and likewise for reading.
// A store handler may throw a SysError: that is the errno write(2) gives.
import { posix } from 'node:path';
import { isSysError, sysError, type ErrnoCode } from '../../addon/errors.js';
import type { Sysfs } from '../types.js';

export interface AttributeSpec {
  /** Permission bits; default 0444 (show only), 0644 (show and store), 0200 (store only). */
  mode?: number;
  /** The attribute's text, newline included, as a kernel show() prints it. */
  show?: () => string;
  /** Handles a write of `value` (exactly what was written). Throw a SysError to fail it. */
  store?: (value: string) => void;
}

// A removed entry's key stays with an undefined value until the directory is compacted:
// a V8 Map whose same key is deleted and re-added over and over (the lowest free
// IOMMU group number is) gets slower with every cycle until its table is rehashed.
interface DirNode { kind: 'dir'; children: Map<string, Node | undefined>; removed: number }
interface AttrNode { kind: 'attr'; mode: number; show?: () => string; store?: (value: string) => void }
interface LinkNode { kind: 'link'; target: string }
type Node = DirNode | AttrNode | LinkNode;

const MAX_LINKS = 40;

function fail(code: ErrnoCode, syscall: string, path: string): never {
  throw sysError(code, syscall, undefined, path);
}

export class MockSysfs implements Sysfs {
  private readonly root: DirNode = { kind: 'dir', children: new Map(), removed: 0 };

  // ---- building the tree (the kernel side) ----

  /** mkdir -p. */
  mkdir(path: string): void {
    this.parentDir(posix.join(path, 'x'), true);
  }

  addAttribute(path: string, spec: AttributeSpec): void {
    const { dir, name } = this.parentDir(path, true);
    const mode = spec.mode ?? ((spec.show ? 0o444 : 0) | (spec.store ? 0o200 : 0));
    const node: AttrNode = { kind: 'attr', mode };
    if (spec.show) node.show = spec.show;
    if (spec.store) node.store = spec.store;
    this.add(dir, name, node, path);
  }

  /** A symlink at `path` pointing at `target` (relative to the link's directory, or absolute). */
  addLink(path: string, target: string): void {
    const { dir, name } = this.parentDir(path, true);
    this.add(dir, name, { kind: 'link', target }, path);
  }

  /** A symlink at `path` to the absolute `to`, written relative as sysfs does. */
  addRelativeLink(path: string, to: string): void {
    this.addLink(path, posix.relative(posix.dirname(path), to));
  }

  /** Removes an entry and everything under it; ENOENT if absent. */
  remove(path: string): void {
    const { dir, name } = this.parentDir(path, false);
    if (dir.children.get(name) === undefined) fail('ENOENT', 'unlink', path);
    dir.children.set(name, undefined);
    if (++dir.removed > 64 && dir.removed > dir.children.size / 2) {
      dir.children = new Map([...dir.children].filter(([, node]) => node !== undefined));
      dir.removed = 0;
    }
  }

  // ---- the Sysfs interface (the user side) ----

  exists(path: string): boolean {
    try {
      this.resolve(path, true, 'stat');
      return true;
    } catch (err) {
      if (isSysError(err)) return false;
      throw err;
    }
  }

  list(path: string): string[] {
    const node = this.resolve(path, true, 'scandir');
    if (node.kind !== 'dir') fail('ENOTDIR', 'scandir', path);
    return [...node.children].filter(([, child]) => child !== undefined).map(([name]) => name).sort();
  }

  read(path: string): string {
    const node = this.resolve(path, true, 'open');
    if (node.kind === 'dir') fail('EISDIR', 'read', path);
    if (node.kind !== 'attr' || !node.show || (node.mode & 0o444) === 0) fail('EACCES', 'open', path);
    const text = node.show();
    return text.endsWith('\n') ? text.slice(0, -1) : text;
  }

  write(path: string, value: string): void {
    const node = this.resolve(path, true, 'open');
    if (node.kind === 'dir') fail('EISDIR', 'open', path);
    if (node.kind !== 'attr' || !node.store || (node.mode & 0o222) === 0) fail('EACCES', 'open', path);
    try {
      node.store(value);
    } catch (err) {
      if (isSysError(err)) {
        err.syscall = 'write';
        throw err;
      }
      throw err;
    }
  }

  readlink(path: string): string {
    const node = this.resolve(path, false, 'readlink');
    if (node.kind !== 'link') fail('EINVAL', 'readlink', path);
    return node.target;
  }

  // ---- path walk ----

  /** Walks an absolute path; follows symlinks in every component, and in the last one when `followLast`. */
  private resolve(path: string, followLast: boolean, syscall: string): Node {
    if (!path.startsWith('/')) fail('ENOENT', syscall, path);
    let links = 0;
    const walk = (start: string[], parts: string[]): { node: Node; at: string[] } => {
      let at = [...start];
      let node: Node = this.lookup(at)!;
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (part === '' || part === '.') continue;
        if (node.kind !== 'dir') fail('ENOTDIR', syscall, path);
        if (part === '..') {
          at = at.slice(0, -1);
          node = this.lookup(at)!;
          continue;
        }
        const child = node.children.get(part);
        if (!child) fail('ENOENT', syscall, path);
        const last = i === parts.length - 1 || parts.slice(i + 1).every((p) => p === '' || p === '.');
        if (child.kind === 'link' && (!last || followLast)) {
          if (++links > MAX_LINKS) fail('ELOOP', syscall, path);
          const base = child.target.startsWith('/') ? [] : at;
          const r = walk(base, child.target.split('/'));
          at = r.at;
          node = r.node;
          continue;
        }
        at = [...at, part];
        node = child;
      }
      return { node, at };
    };
    return walk([], path.split('/')).node;
  }

  /** The node at already-resolved components (no symlinks among them). */
  private lookup(at: string[]): Node | undefined {
    let node: Node = this.root;
    for (const part of at) {
      if (node.kind !== 'dir') return undefined;
      const next = node.children.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /** The directory that holds `path` (made when `create`), without following symlinks. */
  private parentDir(path: string, create: boolean): { dir: DirNode; name: string } {
    const parts = posix.normalize(path).split('/').filter((p) => p !== '');
    const name = parts.pop();
    if (!path.startsWith('/') || name === undefined) throw new Error(`not an absolute sysfs path: ${path}`);
    let dir = this.root;
    for (const part of parts) {
      let next = dir.children.get(part);
      if (!next) {
        if (!create) fail('ENOENT', 'unlink', path);
        next = { kind: 'dir', children: new Map(), removed: 0 };
        dir.children.set(part, next);
      }
      if (next.kind !== 'dir') throw new Error(`${part} in ${path} is not a directory`);
      dir = next;
    }
    return { dir, name };
  }

  private add(dir: DirNode, name: string, node: Node, path: string): void {
    if (dir.children.get(name) !== undefined) throw new Error(`sysfs entry ${path} already exists`);
    dir.children.set(name, node);
  }
}
