// One device served on one unix socket, one client at a time. Connections are accepted
// as they come (a readable watch on the listening socket); while a client is attached,
// any other is refused (refusal.ts: an EBUSY error reply to its VERSION, then close).
// When the client goes, the next one can connect.
import { addon, type AddonWatcher } from '../../addon/addon.js';
import { acceptUnix } from '../../addon/unix-socket.js';
import type { DeviceBackend } from '../../device/backend.js';
import { VfioUserConnection, type ConnectionStats } from './connection.js';
import type { ServerLimits } from './options.js';
import { Refusal } from './refusal.js';
import { listenAt, removeSocketFile } from './socket-file.js';

const READABLE = 1;

/** The attached client, as `vgpu list` and `vgpu info` show it. */
export interface VfioUserClientInfo {
  /** When it connected. */
  readonly since: Date;
  /** Whether it negotiated VERSION and holds the device open. */
  readonly deviceOpen: boolean;
  readonly stats: ConnectionStats;
}

export class DeviceSocket {
  private readonly listener: number;
  private readonly watcher: AddonWatcher;
  private current: { connection: VfioUserConnection; since: Date } | undefined;
  private readonly refusals = new Set<Refusal>();
  private closed = false;
  /** Why the last client's connection ended. */
  lastCloseReason: string | undefined;

  constructor(readonly path: string, readonly backend: DeviceBackend, private readonly limits: ServerLimits, mode: number) {
    this.listener = listenAt(path, mode);
    try {
      this.watcher = addon().watch(this.listener, () => this.acceptAll(), READABLE);
    } catch (err) {
      addon().close(this.listener);
      removeSocketFile(path);
      throw err;
    }
  }

  get client(): VfioUserClientInfo | undefined {
    const c = this.current;
    if (!c) return undefined;
    return { since: c.since, deviceOpen: c.connection.holdsDevice, stats: c.connection.stats() };
  }

  /** Whether a client holds the device open. */
  get busy(): boolean {
    return this.current?.connection.holdsDevice ?? false;
  }

  /** Ends the client's connection now (releasing the device), if there is one. */
  disconnect(reason = 'the server disconnected the client'): void {
    this.current?.connection.closeNow(reason);
  }

  /** Disconnects everyone, stops listening and removes the socket file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    this.disconnect('the server is closing');
    for (const r of [...this.refusals]) r.finish();
    addon().close(this.listener);
    removeSocketFile(this.path);
  }

  private acceptAll(): void {
    for (;;) {
      let fd: number | undefined;
      try {
        fd = acceptUnix(this.listener);
      } catch {
        return; // ECONNABORTED, EMFILE...: the next readable event tries again
      }
      if (fd === undefined) return;
      if (this.closed) {
        addon().close(fd); // accepted as the socket closed: nobody will serve it
        return;
      }
      if (this.current) {
        const refusal = new Refusal(fd, this.limits.refusalTimeoutMs, (r) => this.refusals.delete(r));
        this.refusals.add(refusal);
        continue;
      }
      const since = new Date();
      let connection: VfioUserConnection;
      try {
        connection = new VfioUserConnection(fd, this.backend, this.limits, (reason) => this.ended(connection, reason));
      } catch {
        addon().close(fd);
        continue;
      }
      this.current = { connection, since };
    }
  }

  private ended(connection: VfioUserConnection, reason: string): void {
    if (this.current?.connection === connection) this.current = undefined;
    this.lastCloseReason = reason;
  }
}
