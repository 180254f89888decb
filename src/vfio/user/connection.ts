// One vfio-user connection, from the client's side: the socket, the VERSION handshake,
// synchronous requests, and the server's own commands (DMA_READ/DMA_WRITE).
//
// Requests block: the VFIO client API is synchronous (a register read returns its
// value), so request() sends and then waits in poll(2) for the reply with its msg_id,
// up to timeoutMs. While it waits it serves any command the server sends meanwhile (a
// device may read guest memory before it answers). The event loop stands still during
// the wait, so the server must run in another process or thread, as for any VMM: a
// server on this thread's event loop would never answer, and the request would end in
// ETIMEDOUT.
//
// Between requests, an fd watcher serves the server's commands, because a device works
// on its own (it DMAs while the guest awaits its interrupt). The watcher is unref'd: it
// does not keep the process alive by itself; whoever awaits the device (an interrupt
// listener, a timer) does.
//
// A failure of the transport (the server hung up, a reply too late, bytes that are not
// vfio-user) leaves the connection unusable: that call and every later one throws a
// SysError saying why (ENODEV once the server is gone, ETIMEDOUT after a timeout,
// EPROTO after a protocol violation). close() releases the socket and every fd received.
import { isSysError, sysError, type SysError } from '../../addon/errors.js';
import { addon } from '../../addon/addon.js';
import { connectUnix, isTruncated, pollFd, recvWithFds, sendWithFds } from '../../addon/unix-socket.js';
import {
  VfioUserMessageReader, decodeVersion, encodeCommand, isReply,
  replyError, vfioUserCommandName, vfioUserCommands, vfioUserMessageLimit,
  type VfioUserBody, type VfioUserCommandName, type VfioUserFrame, type VfioUserHeader, type VfioUserVersion,
} from '../../uapi/vfio-user/index.js';
import type { FdWatcher, SysLayer } from '../../sys/types.js';
import { acceptVersion, versionProposal, type ClientLimits, type Negotiated } from './negotiate.js';
import { answerServerCommand, type CommandHandler } from './server-commands.js';

export interface VfioUserConnectOptions {
  /** How long one request waits for its reply (ms); default 10 000. */
  timeoutMs?: number;
  /** Data bytes per message this client accepts (REGION_READ replies, DMA commands); default 1 MiB. */
  maxDataXferSize?: number;
}

/** A reply that arrived: its header, its body (the caller's to keep), and any fds (the caller's to close). */
export interface VfioUserReply {
  header: VfioUserHeader;
  body: Uint8Array;
  fds: number[];
}


export interface RequestOptions {
  /** Fds to send with the request (copies go; the caller keeps its own). */
  fds?: readonly number[];
  /** The fd-layer call the request stands for, named in errors ('ioctl', 'pread', ...). */
  syscall: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_XFER = 1024 * 1024;
/** Fds we accept per message: a region's fd comes alone, this leaves room. */
const RECEIVE_FDS = 16;
/** One recvmsg at a time; larger messages arrive in several. */
const CHUNK = 256 * 1024;

interface Outgoing {
  bytes: Uint8Array;
  fds: readonly number[];
  sent: number;
}

export class VfioUserConnection {
  readonly timeoutMs: number;
  readonly limits: ClientLimits;
  private fdNumber: number;
  private readonly reader: VfioUserMessageReader;
  private readonly outbox: Outgoing[] = [];
  private readonly replies = new Map<number, VfioUserFrame>();
  private readonly chunk = new Uint8Array(CHUNK);
  private nextId = 0;
  /** The msg_id of the request waiting for its reply, if any. */
  private awaiting: number | undefined;
  private failure: SysError | undefined;
  private watcher: FdWatcher | undefined;
  private handler: CommandHandler | undefined;
  private readonly pollIn = addon().constants['POLLIN'] ?? 1;
  private readonly pollOut = addon().constants['POLLOUT'] ?? 4;
  private session: Negotiated | undefined;

  private constructor(readonly path: string, fd: number, sys: SysLayer, options: VfioUserConnectOptions) {
    this.fdNumber = fd;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.limits = {
      maxDataXferSize: options.maxDataXferSize ?? DEFAULT_MAX_XFER,
      maxMsgFds: RECEIVE_FDS,
      pgsizes: BigInt(sys.pageSize),
      maxDmaMaps: 65535,
    };
    this.reader = new VfioUserMessageReader({ maxMessageSize: vfioUserMessageLimit(this.limits.maxDataXferSize) });
  }

  /**
   * Connects to the server at `path` and negotiates the version. `sys` supplies the
   * watcher; its fds must be real (the native fd layer). Fails with the connect errno
   * (ENOENT, ECONNREFUSED) or the VERSION refusal; nothing stays open then.
   */
  static connect(path: string, sys: SysLayer, options: VfioUserConnectOptions = {}): VfioUserConnection {
    const connection = new VfioUserConnection(path, connectUnix(path), sys, options);
    try {
      connection.session = connection.handshake();
      connection.watcher = sys.watch(connection.fd, () => connection.serveWhileIdle());
      connection.watcher.unref();
      return connection;
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  /** What the VERSION handshake settled. */
  get negotiated(): Negotiated {
    if (this.session === undefined) throw sysError('ENOTCONN', 'connect', 'VFIO_USER_VERSION', 'the handshake has not completed');
    return this.session;
  }

  /** The socket's fd; EBADF once closed. */
  get fd(): number {
    if (this.fdNumber < 0) throw sysError('EBADF', 'vfio-user', undefined, `the vfio-user connection to ${this.path} is closed`);
    return this.fdNumber;
  }

  get closed(): boolean {
    return this.fdNumber < 0;
  }

  /** Why the connection is unusable, or undefined while it works. */
  get broken(): SysError | undefined {
    return this.failure;
  }

  /** Who answers the server's DMA_READ and DMA_WRITE; without one they fail with EFAULT (nothing is mapped). */
  setCommandHandler(handler: CommandHandler | undefined): void {
    this.handler = handler;
  }

  /**
   * Sends a command and waits for its reply. An error reply throws a SysError with the
   * reply's errno (EIO when it gives none), `syscall` as given and the command as its
   * operation; the transport's failures throw as the header comment says.
   */
  request(command: VfioUserCommandName, body: VfioUserBody | undefined, options: RequestOptions): VfioUserReply {
    this.requireUsable(options.syscall, command);
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    const deadline = Date.now() + this.timeoutMs;
    this.outbox.push({ bytes: encodeCommand(id, vfioUserCommands[command], body), fds: options.fds ?? [], sent: 0 });
    this.awaiting = id;
    let frame: VfioUserFrame | undefined;
    try {
      this.flush(deadline, command);
      while ((frame = this.replies.get(id)) === undefined) {
        this.wait(deadline, command, false);
        this.flush(deadline, command); // the answers to what the server asked meanwhile
      }
    } catch (err) {
      this.fail(err);
      if (!isSysError(err)) throw err;
      throw this.withSyscall(err, options.syscall, command);
    } finally {
      this.awaiting = undefined;
      this.replies.delete(id);
    }
    if (frame.oversized || frame.header.command !== vfioUserCommands[command]) {
      for (const fd of frame.fds) this.closeReceived(fd);
      const why = frame.oversized
        ? `a ${frame.header.size}-byte reply, above the ${this.reader.maxMessageSize} bytes this client accepts`
        : `the reply to message ${id} is a ${vfioUserCommandName(frame.header.command)}`;
      const err = sysError('EPROTO', options.syscall, command, why);
      this.fail(err);
      throw err;
    }
    const error = replyError(frame.header);
    if (error) {
      for (const fd of frame.fds) this.closeReceived(fd);
      throw this.withSyscall(error, options.syscall, command);
    }
    return { header: frame.header, body: frame.body, fds: frame.fds };
  }

  /** Closes the socket, stops watching, and closes every fd received that nobody took. Idempotent. */
  close(): void {
    if (this.fdNumber < 0) return;
    this.watcher?.close();
    this.watcher = undefined;
    for (const frame of this.replies.values()) for (const fd of frame.fds) this.closeReceived(fd);
    this.replies.clear();
    for (const fd of this.reader.close()) this.closeReceived(fd);
    this.outbox.length = 0;
    const fd = this.fdNumber;
    this.fdNumber = -1;
    const a = addon();
    try {
      // The watcher polls a dup of the socket, closed a loop turn later: shut the socket
      // itself down now, so the server sees the end at once.
      a.shutdown(fd, a.constants['SHUT_RDWR'] ?? 2);
    } catch {
      // ENOTCONN: the server was gone already.
    }
    a.close(fd);
  }

  private handshake(): Negotiated {
    const reply = this.request('VFIO_USER_VERSION', versionProposal(this.limits), { syscall: 'connect' });
    try {
      let version: VfioUserVersion;
      try {
        version = decodeVersion(reply.body);
      } catch (err) {
        throw sysError('EPROTO', 'connect', 'VFIO_USER_VERSION', `malformed reply: ${(err as Error).message}`);
      }
      return acceptVersion(version, reply.fds.length, this.limits);
    } finally {
      // Without twin-socket mode (which acceptVersion refuses) no fd belongs in the reply.
      for (const fd of reply.fds) this.closeReceived(fd);
    }
  }

  private requireUsable(syscall: string, command: string): void {
    if (this.fdNumber < 0) throw sysError('EBADF', syscall, command, `the vfio-user connection to ${this.path} is closed`);
    if (this.failure) {
      throw sysError(this.failure.code, syscall, command, `the connection to ${this.path} is unusable: ${this.failure.message}`);
    }
  }

  /** Marks the connection unusable (the first failure is the one reported later). */
  private fail(err: unknown): void {
    this.failure ??= isSysError(err) ? err : sysError('EIO', 'vfio-user', undefined, String(err));
    this.watcher?.close();
    this.watcher = undefined;
  }

  private withSyscall(err: SysError, syscall: string, command: string): SysError {
    err.syscall = syscall;
    err.operation ??= command;
    return err;
  }

  /** Sends everything queued, serving what arrives while the socket is full. */
  private flush(deadline: number, command: string): void {
    while (this.outbox.length > 0) {
      const out = this.outbox[0]!;
      let n: number;
      try {
        n = out.sent === 0 ? sendWithFds(this.fd, out.bytes, out.fds) : sendWithFds(this.fd, out.bytes.subarray(out.sent));
      } catch (err) {
        const code = (err as SysError).code;
        if (code === 'EAGAIN') {
          this.wait(deadline, command, true);
          continue;
        }
        if (code === 'EPIPE' || code === 'ECONNRESET') throw this.gone(command);
        throw err;
      }
      out.sent += n;
      if (out.sent >= out.bytes.byteLength) this.outbox.shift();
    }
  }

  /** Blocks until the socket is readable (or writable, when asked) and reads what came. */
  private wait(deadline: number, command: string, writable: boolean): void {
    const left = deadline - Date.now();
    const ready = left > 0 ? pollFd(this.fd, this.pollIn | (writable ? this.pollOut : 0), left) : 0;
    if (ready === 0) {
      throw sysError('ETIMEDOUT', 'poll', command, `no reply from ${this.path} within ${this.timeoutMs} ms`);
    }
    if (ready !== this.pollOut) this.receive(command);
  }

  /** Reads until the socket is drained, and handles each message that completes. */
  private receive(command: string): void {
    for (;;) {
      let got;
      try {
        got = recvWithFds(this.fd, this.chunk, this.limits.maxMsgFds);
      } catch (err) {
        if (isTruncated(err)) throw sysError('EPROTO', 'recvmsg', command, `more than ${this.limits.maxMsgFds} fds in one message`);
        if ((err as SysError).code === 'ECONNRESET') throw this.gone(command);
        throw err;
      }
      if (got === undefined) return;
      if (got.bytes === 0) {
        for (const fd of got.fds) this.closeReceived(fd);
        throw this.gone(command);
      }
      const frames = this.reader.push(this.chunk.subarray(0, got.bytes), got.fds);
      // The reader's frames may be views of `chunk`: handle each before the next recvmsg.
      for (const frame of frames) this.dispatch(frame, command);
      if (this.reader.broken !== undefined) throw sysError('EPROTO', 'recvmsg', command, this.reader.broken);
      // The reply is in: what may follow waits for the next request or the watcher.
      if (this.awaiting !== undefined && this.replies.has(this.awaiting)) return;
    }
  }

  private dispatch(frame: VfioUserFrame, command: string): void {
    if (isReply(frame.header)) {
      if (frame.header.msg_id !== this.awaiting || this.replies.has(frame.header.msg_id)) {
        for (const fd of frame.fds) this.closeReceived(fd);
        throw sysError('EPROTO', 'recvmsg', command, `a reply (message ${frame.header.msg_id}) to no request of ours`);
      }
      // Copied: the frame may be a view of the receive buffer.
      const kept: VfioUserFrame = frame.oversized ? frame : { ...frame, body: frame.body.slice() };
      this.replies.set(frame.header.msg_id, kept);
      return;
    }
    for (const fd of frame.fds) this.closeReceived(fd); // no command a server sends carries fds
    const reply = answerServerCommand(frame, this.handler);
    if (reply) this.outbox.push({ bytes: reply, fds: [], sent: 0 });
  }

  /** The watcher's turn: the server sent something while no request waits. */
  private serveWhileIdle(): void {
    if (this.fdNumber < 0 || this.failure || this.awaiting !== undefined) return;
    const deadline = Date.now() + this.timeoutMs;
    try {
      this.receive('idle');
      this.flush(deadline, 'idle');
    } catch (err) {
      this.fail(err);
    }
  }

  private gone(command: string): SysError {
    return sysError('ENODEV', 'recvmsg', command, `the vfio-user server at ${this.path} closed the connection`);
  }

  /** Closes an fd the server sent (a no-op for one already closed). */
  closeReceived(fd: number): void {
    try {
      addon().close(fd);
    } catch {
      // Already closed: nothing of ours to release.
    }
  }
}
