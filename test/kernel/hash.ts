// Content hashes for cache keys: an image layer is rebuilt only when the hash of
// everything that goes into it changes.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, readdirSync, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export class InputHash {
  private readonly hash: Hash = createHash('sha256');

  /** Adds a labelled string (labels keep "ab"+"c" apart from "a"+"bc"). */
  text(label: string, value: string): this {
    this.hash.update(`${label}\0${value.length}\0${value}\0`);
    return this;
  }

  /** Adds a file's name (as given) and its bytes; a symlink adds its target. */
  async file(path: string): Promise<this> {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return this.text(`link:${path}`, readlinkSync(path));
    this.text('file', `${path}:${st.size}:${st.mode & 0o777}`);
    for await (const chunk of createReadStream(path)) this.hash.update(chunk as Buffer);
    return this;
  }

  /** Adds every file of a list, in order. */
  async files(paths: readonly string[]): Promise<this> {
    for (const p of paths) await this.file(p);
    return this;
  }

  /** First 16 hex digits: short enough for file names, long enough for a cache. */
  digest(): string {
    return this.hash.digest('hex').slice(0, 16);
  }
}

/** Every regular file and symlink under dir, relative, sorted; `keep` filters by relative path. */
export function listTree(dir: string, keep: (rel: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const entries = readdirSync(join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(childRel);
      else if ((e.isFile() || e.isSymbolicLink()) && keep(childRel)) out.push(childRel);
    }
  };
  walk('');
  return out.sort();
}
