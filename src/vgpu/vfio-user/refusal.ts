// What a second client of a device gets: its first message (its VERSION) is answered
// with an error reply carrying EBUSY, then the connection is closed. A client that sends
// nothing is closed after refusalTimeoutMs. The client sees the EBUSY reply and then
// end of file (or just end of file if it never spoke). Fds it sent are closed.
import { addon, type AddonWatcher } from '../../addon/addon.js';
import { recvWithFds, sendWithFds } from '../../addon/unix-socket.js';
import { encodeErrorReply, VfioUserMessageReader } from '../../uapi/vfio-user/index.js';

const READABLE = 1;

export class Refusal {
  private readonly watcher: AddonWatcher;
  private readonly timer: NodeJS.Timeout;
  private readonly reader = new VfioUserMessageReader({ maxMessageSize: 64 * 1024 });
  private done = false;

  constructor(private readonly fd: number, timeoutMs: number, private readonly onDone: (refusal: Refusal) => void) {
    this.watcher = addon().watch(fd, () => this.onReadable(), READABLE);
    this.timer = setTimeout(() => this.finish(), timeoutMs);
  }

  /** Closes it now. Idempotent. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.watcher.close();
    const a = addon();
    for (const fd of this.reader.close()) a.close(fd);
    a.close(this.fd);
    this.onDone(this);
  }

  private onReadable(): void {
    const a = addon();
    try {
      const buf = new Uint8Array(4096);
      const got = recvWithFds(this.fd, buf, 253);
      if (!got) return;
      if (got.bytes === 0) {
        for (const fd of got.fds) a.close(fd);
        this.finish();
        return;
      }
      const frames = this.reader.push(buf.subarray(0, got.bytes), got.fds);
      for (const frame of frames) for (const fd of frame.fds) a.close(fd);
      const first = frames[0];
      if (first) {
        // Best effort: a tiny reply to a fresh socket goes out at once or not at all.
        sendWithFds(this.fd, encodeErrorReply(first.header, 'EBUSY'));
        this.finish();
      } else if (this.reader.broken !== undefined) {
        this.finish();
      }
    } catch {
      this.finish();
    }
  }
}
