// Newline-delimited lines out of a byte stream, with a length limit that holds however
// the stream was cut into reads: a line is judged on its whole length (the bytes kept
// from earlier reads plus this one's), never on one read's. Shared by the daemon and its
// client so both sides count the same way.

export interface LineSink {
  /** A complete line, without its newline. Returning false stops this push (see push). */
  line(bytes: Buffer): boolean | void;
  /** A line passed the limit: what was kept of it is dropped and the rest is skipped to its newline. */
  tooLong(): void;
}

export class LineReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Skipping the rest of an oversize line. */
  private discarding = false;

  constructor(readonly maxBytes: number) {}

  /** Bytes of an unfinished line kept from earlier reads. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Takes one read's bytes. Returns how many were consumed: all of them, unless
   * `sink.line` returned false, when the rest (after that line) is left to the caller.
   */
  push(chunk: Buffer, sink: LineSink): number {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (this.buffered + piece.length > this.maxBytes) {
        this.clear();
        sink.tooLong();
        continue;
      }
      const line = this.chunks.length === 0 ? piece : Buffer.concat([...this.chunks, piece]);
      this.clear();
      if (sink.line(line) === false) return start;
    }
    if (start < chunk.length && !this.discarding) {
      if (this.buffered + chunk.length - start > this.maxBytes) {
        this.clear();
        this.discarding = true;
        sink.tooLong();
      } else {
        // Copied: a slice would keep the whole read's buffer alive.
        this.chunks.push(Buffer.from(chunk.subarray(start)));
        this.buffered += chunk.length - start;
      }
    }
    return chunk.length;
  }

  /** Forgets an unfinished line (a disconnect, a failure). */
  clear(): void {
    this.chunks = [];
    this.buffered = 0;
  }
}
