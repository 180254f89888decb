// One client of the daemon: splits its bytes into request lines, and writes its answers
// with backpressure. A client that sends requests but does not read its answers must
// cost the daemon a bounded amount of memory: once its unsent output passes
// `pauseAboveBytes` we stop reading from it (its requests wait in its own socket
// buffers, then in its writes), and past `dropAboveBytes` it is disconnected. Reading
// resumes when the kernel has taken its answers (drain). Answers go out in the order
// their request lines were read, whether the host answers them or the line fails at once.
import type { Socket } from 'node:net';
import { LineReader } from './line-reader.js';
import { MAX_LINE_BYTES, ProtocolError, encodeResponse } from './protocol.js';

export interface ConnectionLimits {
  /** Unsent answer bytes above which the connection is no longer read (default 1 MiB). */
  pauseAboveBytes: number;
  /** Unsent answer bytes above which the connection is dropped at its next answer (default 16 MiB). */
  dropAboveBytes: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = { pauseAboveBytes: 1024 * 1024, dropAboveBytes: 16 * 1024 * 1024 };

/** The place of one answer in a connection's order. */
export interface AnswerSlot {
  lines: readonly string[] | undefined;
}

export class Connection {
  private readonly reader = new LineReader(MAX_LINE_BYTES);
  /** Answers in the order their lines were read; a slot without lines waits for the host. */
  private readonly outbox: AnswerSlot[] = [];
  /** Bytes (UTF-16 units) of answers filled but waiting behind an earlier one. */
  private held = 0;
  private readEnded = false;
  private paused = false;
  pending = 0;

  constructor(
    readonly socket: Socket,
    private readonly onLine: (connection: Connection, line: string) => void,
    private readonly limits: ConnectionLimits = DEFAULT_LIMITS,
    private readonly onDrop: (unsentBytes: number) => void = () => undefined,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => { this.readEnded = true; this.endIfDone(); });
    socket.on('drain', () => this.resumeIfBelow());
    // ECONNRESET, EPIPE: the client went away; its requests still run, answers are dropped.
    socket.on('error', () => undefined);
    // Whatever it had read but not yet made a line of goes with it.
    socket.once('close', () => { this.reader.clear(); this.outbox.length = 0; this.held = 0; });
  }

  /** Answer bytes not yet taken by the kernel: written, or waiting for an earlier answer. */
  get unsentBytes(): number {
    return this.socket.destroyed ? 0 : this.socket.writableLength + this.held;
  }

  /** Whether reading is paused because the client does not take its answers. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Reserves the place of an answer that comes later (a request queued for the host). */
  reserve(): AnswerSlot {
    const slot: AnswerSlot = { lines: undefined };
    this.outbox.push(slot);
    return slot;
  }

  /** Gives a reserved place its answer: its line, or all the part lines of a long one. */
  fill(slot: AnswerSlot, lines: string | readonly string[]): void {
    if (slot.lines !== undefined) return;
    slot.lines = typeof lines === 'string' ? [lines] : lines;
    // Gone (disconnected, dropped): the answer is dropped, nothing is held for it.
    if (this.socket.destroyed) return;
    for (const line of slot.lines) this.held += line.length;
    this.flush();
  }

  /** Answers now, after every answer to the lines read before (a parse error, EAGAIN). */
  send(lines: string | readonly string[]): void {
    this.fill(this.reserve(), lines);
  }

  /** Writes the answers whose turn it is: answers go out in the order their lines were read. */
  private flush(): void {
    for (let slot = this.outbox[0]; slot?.lines !== undefined; slot = this.outbox[0]) {
      this.outbox.shift();
      for (const line of slot.lines) this.held -= line.length;
      this.write(slot.lines);
    }
    this.pauseIfAbove();
    // Paused for answers held behind a slow one: the kernel may take them all at once,
    // with no 'drain' to follow.
    this.resumeIfBelow();
  }

  private write(lines: readonly string[]): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    // Judged before writing, once per answer: one answer bigger than the limit still goes
    // to a client that reads; a client that left the previous ones unread is dropped.
    const unsent = this.unsentBytes;
    if (unsent > this.limits.dropAboveBytes) {
      this.onDrop(unsent);
      this.drop();
      return;
    }
    for (const line of lines) this.socket.write(line);
  }

  private pauseIfAbove(): void {
    if (!this.paused && !this.socket.destroyed && this.unsentBytes > this.limits.pauseAboveBytes) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** Disconnects and forgets what was waiting to be sent. */
  private drop(): void {
    this.socket.destroy();
    this.outbox.length = 0;
    this.held = 0;
  }

  settled(): void {
    this.pending--;
    this.endIfDone();
  }

  private resumeIfBelow(): void {
    if (this.paused && !this.socket.destroyed && this.unsentBytes <= this.limits.pauseAboveBytes) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** A client that half-closed gets its answers, then the end of the stream. */
  private endIfDone(): void {
    if (this.readEnded && this.pending === 0 && !this.socket.destroyed) this.socket.end();
  }

  private receive(chunk: Buffer): void {
    const used = this.reader.push(chunk, {
      line: (bytes) => {
        this.take(bytes.toString('utf8'));
        // Paused by an answer just sent: the rest of this read waits too.
        return !this.paused;
      },
      tooLong: () => this.send(encodeResponse(null, {
        error: new ProtocolError('EMSGSIZE', `request line longer than ${MAX_LINE_BYTES} bytes; skipped to the next newline`),
      })),
    });
    if (used < chunk.length) this.socket.unshift(chunk.subarray(used));
  }

  private take(line: string): void {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.trim() === '') return;
    this.onLine(this, text);
  }
}
