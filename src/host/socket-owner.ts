// Who listens on the daemon's socket, as the file system tells it. A socket file owned by
// root or by us, in folders that only root or we can change (or sticky ones, where nobody
// else may remove or rename what we own), was bound by root or by us, and nobody else can
// put another in its place. Then the client needs no SO_PEERCRED (and so no addon, ~2-3 ms
// of every daemon command); anywhere else it asks the kernel (daemon-client.ts checkPeer).
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** Whether the file system vouches that root or this user bound the socket at `path`. */
export function boundByRootOrUs(path: string): boolean {
  const own = process.getuid?.() ?? 0;
  const trusted = (uid: number): boolean => uid === 0 || uid === own;
  try {
    const socket = lstatSync(path);
    if (!socket.isSocket() || !trusted(socket.uid)) return false;
    // The real folders (no symlink left to swap), up to the root.
    for (let dir = realpathSync(dirname(path)); ; dir = dirname(dir)) {
      const folder = statSync(dir);
      if (!trusted(folder.uid)) return false;
      if ((folder.mode & GROUP_OR_OTHER_WRITE) !== 0 && (folder.mode & STICKY) === 0) return false;
      if (dir === dirname(dir)) return true;
    }
  } catch {
    return false; // gone or unreadable: the kernel decides
  }
}
