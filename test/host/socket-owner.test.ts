// When the file system vouches for the daemon's listener (socket-owner.ts), the client
// skips SO_PEERCRED; everywhere else the kernel is asked. Each case builds the folders and
// the socket file it needs, with the owners and modes that decide it.
import { strict as assert } from 'node:assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { boundByRootOrUs } from '../../src/host/socket-owner.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

describe('whether the file system vouches for the daemon socket', () => {
  let top: string;
  const servers: Server[] = [];
  const socketIn = async (dir: string, mode: number): Promise<string> => {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, mode);
    const path = join(dir, 'vgpu.sock');
    servers.push(await listen(path));
    return path;
  };

  before(() => {
    // Under the system's temporary folder (sticky, root's): a folder of our own, 0700.
    top = mkdtempSync(join(tmpdir(), 'vgpu-socket-owner-'));
  });
  after(() => {
    for (const server of servers) server.close();
    rmSync(top, { recursive: true, force: true });
  });

  it('our socket in folders only we (or root) can change: yes', async () => {
    assert.equal(boundByRootOrUs(await socketIn(join(top, 'private'), 0o700)), true);
    assert.equal(boundByRootOrUs(await socketIn(join(top, 'readable'), 0o755)), true);
  });

  it('a folder anyone may write to: no; the same folder sticky: yes (nobody else can replace our socket)', async () => {
    const open = await socketIn(join(top, 'open'), 0o777);
    assert.equal(boundByRootOrUs(open), false);
    chmodSync(join(top, 'open'), 0o1777);
    assert.equal(boundByRootOrUs(open), true);
    const group = await socketIn(join(top, 'group'), 0o770);
    assert.equal(boundByRootOrUs(group), false);
  });

  it('a folder above that anyone may write to: no', async () => {
    const path = await socketIn(join(top, 'above', 'run'), 0o700);
    chmodSync(join(top, 'above'), 0o777);
    assert.equal(boundByRootOrUs(path), false);
  });

  it('no socket there, a regular file, or a symlink to our socket: no', async () => {
    const dir = join(top, 'odd');
    const path = await socketIn(dir, 0o700);
    assert.equal(boundByRootOrUs(join(dir, 'missing.sock')), false);
    writeFileSync(join(dir, 'file'), '');
    assert.equal(boundByRootOrUs(join(dir, 'file')), false);
    symlinkSync(path, join(dir, 'link.sock'));
    assert.equal(boundByRootOrUs(join(dir, 'link.sock')), false);
  });

  it('a folder through a symlink is judged by the real folders', async () => {
    const path = await socketIn(join(top, 'real'), 0o700);
    symlinkSync(join(top, 'real'), join(top, 'alias'));
    assert.equal(boundByRootOrUs(join(top, 'alias', 'vgpu.sock')), true);
    chmodSync(join(top, 'real'), 0o777);
    assert.equal(boundByRootOrUs(join(top, 'alias', 'vgpu.sock')), false);
    assert.equal(boundByRootOrUs(path), false);
  });

  it('a socket or a folder of another user: no', { skip: asRoot ? false : 'needs root to chown' }, async () => {
    const theirs = await socketIn(join(top, 'theirs-socket'), 0o700);
    chownSync(theirs, NOBODY, NOBODY);
    assert.equal(boundByRootOrUs(theirs), false);
    const inTheirs = await socketIn(join(top, 'theirs-folder'), 0o755);
    chownSync(join(top, 'theirs-folder'), NOBODY, NOBODY);
    assert.equal(boundByRootOrUs(inTheirs), false);
  });
});
