// Output of one connection: messages go out at once when the socket takes them, the rest
// waits in order for the socket to become writable again (a writable watch while
// anything waits). A peer that lets more than `limit` bytes pile up is given up on, as
// is one whose socket fails (EPIPE, ECONNRESET): the owner hears it through onFailure.
//
// Fds travel with a message's first byte, so once any byte of it was sent its fds are
// gone with it; the fds are the sender's (sendmsg copies them) and are never closed here.
import { addon, type AddonWatcher } from '../../addon/addon.js';
import { isSysError } from '../../addon/errors.js';
import { pollFd, sendWithFds } from '../../addon/unix-socket.js';

const WRITABLE = 2;

interface Pending {
  readonly data: Uint8Array;
  fds: readonly number[];
  sent: number;
}

export class Outbox {
  private readonly queue: Pending[] = [];
  private pendingBytes = 0;
  private writer: AddonWatcher | undefined;
  private failed = false;

  constructor(private readonly fd: number, private readonly limit: number, private readonly onFailure: (reason: string) => void) {}

  /** Bytes accepted but not yet taken by the socket. */
  get pending(): number {
    return this.pendingBytes;
  }

  /** Queues a message (its fds go with its first byte) and sends what the socket takes now. */
  send(data: Uint8Array, fds: readonly number[] = []): void {
    if (this.failed) return;
    this.queue.push({ data, fds, sent: 0 });
    this.pendingBytes += data.byteLength;
    this.flush();
    if (this.failed) return;
    if (this.pendingBytes > this.limit) {
      this.fail(`the client left ${this.pendingBytes} bytes of replies unread (limit ${this.limit})`);
      return;
    }
    if (this.queue.length) this.watchWritable();
  }

  /**
   * Sends everything queued, waiting for the socket (the thread blocks) until `deadline`
   * (Date.now() based). For a request the server must have answered before it goes on
   * (DMA_READ/DMA_WRITE). False when time ran out or the socket failed.
   */
  flushBlocking(deadline: number): boolean {
    const POLLOUT = addon().constants['POLLOUT'] ?? 4;
    while (!this.failed) {
      this.flush();
      if (this.failed) return false;
      if (!this.queue.length) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      pollFd(this.fd, POLLOUT, left);
    }
    return false;
  }

  /** Stops watching; queued output is dropped. */
  close(): void {
    this.writer?.close();
    this.writer = undefined;
    this.queue.length = 0;
    this.pendingBytes = 0;
    this.failed = true;
  }

  private flush(): void {
    while (this.queue.length && !this.failed) {
      const head = this.queue[0]!;
      let n: number;
      try {
        n = sendWithFds(this.fd, head.sent === 0 ? head.data : head.data.subarray(head.sent), head.fds);
      } catch (err) {
        if (isSysError(err, 'EAGAIN')) return;
        this.fail(`sending to the client failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      head.fds = [];
      head.sent += n;
      this.pendingBytes -= n;
      if (head.sent < head.data.byteLength) return;
      this.queue.shift();
    }
    if (!this.queue.length) {
      this.writer?.close();
      this.writer = undefined;
    }
  }

  private watchWritable(): void {
    if (this.writer) return;
    this.writer = addon().watch(this.fd, () => this.flush(), WRITABLE);
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.close();
    this.onFailure(reason);
  }
}
