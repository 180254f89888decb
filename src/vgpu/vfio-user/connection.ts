// One vfio-user client on one device: the socket's bytes framed into messages, commands
// answered in order through the command table, and the server's own requests (DMA_READ
// and DMA_WRITE for remote DMA regions) sent and waited for synchronously. It knows only
// DeviceBackend, so it can serve any device.
//
// Order and waiting: commands are handled one at a time in arrival order. When the
// device reaches a remote region, the request goes out and the thread blocks on the
// socket (poll, up to dmaTimeoutMs) for the reply with that msg_id; commands arriving
// meanwhile are queued and handled afterwards, in order. A reply that never comes is a
// DMA fault for the device (ETIMEDOUT); if it comes later it is dropped silently.
//
// Errors (the reply's errno): a handler's SysError; anything else EIO. Every bad input
// gets an error reply and the connection goes on, except what the spec or the stream
// leaves no way past: a size below 16 (the stream cannot be followed), a major version
// we do not speak (the spec closes), a device that refuses to open (its errno, then
// close), a receive error, and a client that stops reading its replies.
//
// Ending: whenever and however the client goes (even mid-message or mid-DMA wait), the
// device is closed for it (its release runs, its pins go), every DMA region is
// unmapped and its fd closed, every eventfd reference released and every fd the client
// sent that nobody kept is closed. Teardown never runs inside a device callback: it is
// deferred to the next turn of the event loop (closeNow() is for the owner's own calls).
import { addon, type AddonWatcher } from '../../addon/addon.js';
import { errnoNumber, isSysError, sysError, type SysError } from '../../addon/errors.js';
import { recvWithFds } from '../../addon/unix-socket.js';
import { DmaFault, type DeviceBackend } from '../../device/backend.js';
import type { RemoteDma } from '../../device/dma/dma-regions.js';
import {
  decodeDmaReadReply, decodeDmaWriteReply, encodeCommand, encodeDmaReadRequest, encodeDmaWriteRequest, encodeErrorReply,
  encodeReply, isCommand, isReply, isVfioUserCommand, joinBody, replyError, vfioUserCommandName, vfioUserCommands as C,
  vfioUserHeaderFlags as HF, vfioUserMessageLimit, VfioUserMessageReader, type VfioUserBody, type VfioUserFrame,
  type VfioUserHeader,
  type DmaAccessLayout,
} from '../../uapi/vfio-user/index.js';
import { commandTable, serverToClient } from './commands/table.js';
import { ReceivedFds } from './commands/types.js';
import { migratable } from './commands/migration.js';
import { negotiateVersion } from './commands/version.js';
import type { ServerLimits } from './options.js';
import { Outbox } from './outbox.js';
import { Session } from './session.js';

const READABLE = 1;
/** Bytes asked of one recvmsg. */
const RECV_CHUNK = 64 * 1024;
/** recvmsg() calls per readable event before yielding to the event loop. */
const RECV_PER_EVENT = 16;
/** The kernel's most fds per message: we take what comes and judge it ourselves. */
const MAX_RECV_FDS = 253;
/** msg_ids of abandoned DMA requests remembered, to drop their late replies. */
const ABANDONED_MAX = 256;
/** How long teardown waits for a last reply (an error reply before closing) to leave. */
const LAST_WORDS_MS = 100;

export type ConnectionState = 'version' | 'ready' | 'closing' | 'closed';

/** A snapshot for listings and tests. */
export interface ConnectionStats {
  readonly state: ConnectionState;
  readonly deviceOpen: boolean;
  readonly dmaRegions: number;
  readonly mappedDmaRegions: number;
  readonly pinnedPages: number;
  readonly eventfdReferences: number;
  readonly pendingOutput: number;
  /** The last error reply sent, and why: for diagnostics (the wire carries only the errno). */
  readonly lastError: { readonly command: string; readonly errno: number; readonly detail: string } | undefined;
}

export class VfioUserConnection {
  private readonly reader: VfioUserMessageReader;
  private readonly outbox: Outbox;
  private readonly inbox: VfioUserFrame[] = [];
  /** Where recvmsg lands; what arrived is copied out, so one buffer serves every receive. */
  private readonly scratch = new Uint8Array(RECV_CHUNK);
  private readonly watcher: AddonWatcher;
  private session: Session | undefined;
  private status: ConnectionState = 'version';
  private reason = '';
  private draining = false;
  private waiting = false;
  private nextMsgId = 0;
  private readonly abandoned = new Set<number>();
  private lastError: ConnectionStats['lastError'];

  /** `fd` is the accepted socket, now the connection's; `onClosed` runs once, after teardown. */
  constructor(readonly fd: number, private readonly backend: DeviceBackend, private readonly limits: ServerLimits,
    private readonly onClosed: (reason: string) => void) {
    this.reader = new VfioUserMessageReader({ maxMessageSize: vfioUserMessageLimit(limits.maxDataXferSize) });
    this.outbox = new Outbox(fd, limits.maxPendingOutput, (why) => this.closeSoon(why));
    this.watcher = addon().watch(fd, () => this.onReadable(), READABLE);
  }

  get state(): ConnectionState {
    return this.status;
  }

  /** Why the connection ended (empty while it lives). */
  get closeReason(): string {
    return this.reason;
  }

  /** Whether the device is open for this client. */
  get holdsDevice(): boolean {
    return this.session?.isOpen ?? false;
  }

  stats(): ConnectionStats {
    const s = this.session;
    return {
      state: this.status,
      deviceOpen: s?.isOpen ?? false,
      dmaRegions: s?.dma.count ?? 0,
      mappedDmaRegions: s?.dma.mappedCount ?? 0,
      pinnedPages: s?.dma.pinnedPages ?? 0,
      eventfdReferences: s?.eventfdReferences ?? 0,
      pendingOutput: this.outbox.pending,
      lastError: this.lastError,
    };
  }

  /** Ends the connection now (the owner's call, never from inside a device callback). */
  closeNow(reason: string): void {
    if (this.status === 'closed') return;
    if (this.status !== 'closing') {
      this.status = 'closing';
      this.reason = reason;
    }
    this.teardown();
  }

  // ---- input ----

  private onReadable(): void {
    if (this.status === 'closing' || this.status === 'closed' || this.waiting) return;
    try {
      let more = true;
      for (let i = 0; i < RECV_PER_EVENT && more; i++) more = this.receiveChunk();
      // The rest on the next turn: the watch may not fire again (see receiveChunk).
      if (more) setImmediate(() => this.onReadable());
    } catch (err) {
      this.closeSoon(`receiving failed: ${describe(err)}`);
    }
    this.drain();
  }

  /**
   * One recvmsg into the reader; frames go to the inbox. True when something came, so more
   * may follow; false once the socket is empty (EAGAIN), at its end, or broken. Reading
   * goes on past a short read to that answer: a client that closes with our replies unread
   * leaves its last bytes and then ECONNRESET, reported as POLLERR, after which libuv
   * never calls the watch again (native/watch.cc), so stopping at the data would keep the
   * client attached for ever.
   */
  private receiveChunk(): boolean {
    const got = recvWithFds(this.fd, this.scratch, MAX_RECV_FDS);
    if (!got) return false;
    if (got.bytes === 0) {
      for (const fd of got.fds) closeQuietly(fd);
      this.closeSoon('the client closed the connection');
      return false;
    }
    // A copy of just what came: frames may wait in the inbox past the next receive.
    this.inbox.push(...this.reader.push(this.scratch.slice(0, got.bytes), got.fds));
    if (this.reader.broken !== undefined) {
      this.closeSoon(this.reader.broken);
      return false;
    }
    return true;
  }

  /** Handles queued messages in order, unless already doing so further up the stack. */
  private drain(): void {
    if (this.draining || this.waiting) return;
    this.draining = true;
    try {
      while (this.inbox.length && (this.status === 'version' || this.status === 'ready')) this.handle(this.inbox.shift()!);
    } finally {
      this.draining = false;
    }
  }

  private handle(frame: VfioUserFrame): void {
    const fds = new ReceivedFds(frame.fds);
    try {
      this.dispatch(frame, fds);
    } finally {
      fds.closeRest();
    }
  }

  private dispatch(frame: VfioUserFrame, fds: ReceivedFds): void {
    const { header } = frame;
    if (isReply(header)) {
      // A late answer to a DMA request the device already gave up on: nothing to do.
      if (this.abandoned.delete(header.msg_id)) return;
      this.fail(header, 'EINVAL', 'a reply where a command was expected');
      return;
    }
    if (!isCommand(header)) {
      this.fail(header, 'EINVAL', `message type ${header.flags & HF.VFIO_USER_F_TYPE_MASK} is neither command nor reply`);
      return;
    }
    if (frame.oversized) {
      this.fail(header, 'E2BIG', `a ${header.size}-byte message is larger than this server takes (${this.reader.maxMessageSize})`);
      return;
    }
    if (fds.count > this.limits.maxMsgFds) {
      this.fail(header, 'EINVAL', `${fds.count} fds, more than the ${this.limits.maxMsgFds} negotiated`);
      return;
    }
    if (header.command === C.VFIO_USER_VERSION) {
      this.version(header, frame.body, fds);
      return;
    }
    const session = this.session;
    if (!session) {
      this.fail(header, 'EINVAL', 'VFIO_USER_VERSION must come first');
      return;
    }
    if (serverToClient.has(header.command)) {
      this.fail(header, 'EINVAL', `${vfioUserCommandName(header.command)} goes from the server to the client`);
      return;
    }
    const spec = commandTable.get(header.command);
    if (!spec) {
      const known = isVfioUserCommand(header.command);
      this.fail(header, known ? 'ENOTSUP' : 'ENOSYS', `${vfioUserCommandName(header.command)} is ${known ? 'not offered' : 'unknown'}`);
      return;
    }
    const maxFds = typeof spec.maxFds === 'number' ? spec.maxFds : spec.maxFds(session);
    if (fds.count > maxFds) {
      this.fail(header, 'EINVAL', `${vfioUserCommandName(header.command)} takes ${maxFds === 0 ? 'no fds' : `at most ${maxFds} fds`}, ${fds.count} came`);
      return;
    }
    let reply;
    try {
      reply = spec.handle({ header, body: frame.body, fds }, session);
    } catch (err) {
      this.fail(header, err);
      return;
    }
    this.respond(header, reply.body, reply.fds);
  }

  /** VERSION: negotiate, open the device for this client, reply. */
  private version(header: VfioUserHeader, body: Uint8Array, fds: ReceivedFds): void {
    if (this.session) {
      this.fail(header, 'EINVAL', 'the version was already negotiated');
      return;
    }
    if (fds.count) {
      this.fail(header, 'EINVAL', 'VFIO_USER_VERSION takes no fds');
      return;
    }
    let outcome;
    try {
      outcome = negotiateVersion(body, this.limits, migratable(this.backend));
    } catch (err) {
      this.fail(header, err);
      return;
    }
    if (outcome.kind === 'incompatible') {
      this.closeSoon(outcome.reason);
      return;
    }
    const session = new Session(this.backend, outcome.negotiated, this.remote, this.limits.dmaWindowSize);
    try {
      session.open();
    } catch (err) {
      session.close();
      this.fail(header, err);
      this.closeSoon(`the device did not open: ${describe(err)}`);
      return;
    }
    this.session = session;
    this.status = 'ready';
    this.respond(header, outcome.reply);
  }

  // ---- output ----

  private respond(request: VfioUserHeader, body?: VfioUserBody, fds?: readonly number[]): void {
    if (request.flags & HF.VFIO_USER_F_NO_REPLY) return;
    this.outbox.send(encodeReply(request, body), fds ?? []);
  }

  /** An error reply (unless the command asked for none): a SysError's errno, EIO for anything else. */
  private fail(request: VfioUserHeader, error: unknown, detail?: string): void {
    const errno = errnoOf(error);
    this.lastError = { command: vfioUserCommandName(request.command), errno, detail: detail ?? describe(error) };
    if (isCommand(request) && (request.flags & HF.VFIO_USER_F_NO_REPLY)) return;
    this.outbox.send(encodeErrorReply(request, errno));
  }

  // ---- server-to-client requests (remote DMA regions) ----

  private get dmaLayout(): DmaAccessLayout {
    return this.session?.negotiated.dmaLayout ?? 'spec';
  }

  private readonly remote: RemoteDma = {
    read: (iova, dst) => {
      const step = this.session?.negotiated.clientMaxDataXferSize ?? 1;
      for (let done = 0; done < dst.byteLength; done += step) {
        const part = dst.subarray(done, Math.min(dst.byteLength, done + step));
        const address = iova + BigInt(done);
        const reply = decodeDmaReadReply(this.request(C.VFIO_USER_DMA_READ, encodeDmaReadRequest(address, part.byteLength)), this.dmaLayout);
        if (reply.address !== address || reply.count !== part.byteLength) {
          throw sysError('EIO', 'vfio-user', 'VFIO_USER_DMA_READ', `the client answered ${reply.count} bytes at 0x${reply.address.toString(16)}`);
        }
        part.set(reply.data);
      }
    },
    write: (iova, src) => {
      const step = this.session?.negotiated.clientMaxDataXferSize ?? 1;
      for (let done = 0; done < src.byteLength; done += step) {
        const part = src.subarray(done, Math.min(src.byteLength, done + step));
        const address = iova + BigInt(done);
        const body = joinBody(encodeDmaWriteRequest(address, part, this.dmaLayout));
        const reply = decodeDmaWriteReply(this.request(C.VFIO_USER_DMA_WRITE, body));
        if (reply && (reply.address !== address || reply.count !== part.byteLength)) {
          throw sysError('EIO', 'vfio-user', 'VFIO_USER_DMA_WRITE', `the client answered ${reply.count} bytes at 0x${reply.address.toString(16)}`);
        }
      }
    },
  };

  /**
   * Sends a command to the client and blocks until its reply (the body), queueing the
   * client's own commands meanwhile. ETIMEDOUT after dmaTimeoutMs, EIO when the client
   * is gone or the stream broke, the client's errno for an error reply.
   */
  private request(command: number, body: Uint8Array): Uint8Array {
    const op = vfioUserCommandName(command);
    if (this.status !== 'ready') throw sysError('EIO', 'vfio-user', op, 'the client is not connected');
    if (this.waiting) throw sysError('EBUSY', 'vfio-user', op, 'a request to the client is already waiting');
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    const msgId = this.nextMsgId;
    const deadline = Date.now() + this.limits.dmaTimeoutMs;
    const POLLIN = addon().constants['POLLIN'] ?? 1;
    this.waiting = true;
    try {
      this.outbox.send(encodeCommand(msgId, command, body));
      if (!this.outbox.flushBlocking(deadline)) this.giveUp(msgId, op);
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) this.giveUp(msgId, op);
        if (!addon().poll(this.fd, POLLIN, left)) continue;
        const got = recvWithFds(this.fd, this.scratch, MAX_RECV_FDS);
        if (!got) continue;
        if (got.bytes === 0) {
          for (const fd of got.fds) closeQuietly(fd);
          this.closeSoon(`the client closed the connection during ${op}`);
          throw sysError('EIO', 'vfio-user', op, 'the client closed the connection');
        }
        let answer: VfioUserFrame | undefined;
        for (const frame of this.reader.push(this.scratch.slice(0, got.bytes), got.fds)) {
          const h = frame.header;
          if (!answer && isReply(h) && h.msg_id === msgId && h.command === command) answer = frame;
          else this.inbox.push(frame);
        }
        if (this.reader.broken !== undefined) {
          this.closeSoon(this.reader.broken);
          throw sysError('EIO', 'vfio-user', op, this.reader.broken);
        }
        if (!answer) continue;
        for (const fd of answer.fds) closeQuietly(fd);
        if (answer.oversized) throw sysError('EIO', 'vfio-user', op, 'the reply is larger than this server takes');
        const error = replyError(answer.header);
        if (error) throw error;
        return answer.body;
      }
    } catch (err) {
      if (isSysError(err) || err instanceof DmaFault) throw err;
      throw sysError('EIO', 'vfio-user', op, describe(err));
    } finally {
      this.waiting = false;
      // Commands that came meanwhile: after whatever called the device returns.
      if (this.inbox.length && !this.draining) setImmediate(() => this.drain());
    }
  }

  private giveUp(msgId: number, op: string): never {
    if (this.status !== 'ready') throw sysError('EIO', 'vfio-user', op, `the connection is ${this.status}`);
    this.abandoned.add(msgId);
    if (this.abandoned.size > ABANDONED_MAX) this.abandoned.delete(this.abandoned.values().next().value!);
    throw sysError('ETIMEDOUT', 'vfio-user', op, `no reply within ${this.limits.dmaTimeoutMs} ms`);
  }

  // ---- ending ----

  /** Stops taking input now; tears down on the next turn (we may be inside a device call). */
  private closeSoon(reason: string): void {
    if (this.status === 'closing' || this.status === 'closed') return;
    this.status = 'closing';
    this.reason = reason;
    setImmediate(() => this.teardown());
  }

  private teardown(): void {
    if (this.status === 'closed') return;
    this.status = 'closed';
    this.watcher.close();
    try {
      this.outbox.flushBlocking(Date.now() + LAST_WORDS_MS);
    } catch {
      // The client is gone: nothing more to say.
    }
    this.outbox.close();
    let failure: unknown;
    try {
      this.session?.close();
    } catch (err) {
      failure = err;
    }
    for (const frame of this.inbox.splice(0)) for (const fd of frame.fds) closeQuietly(fd);
    for (const fd of this.reader.close()) closeQuietly(fd);
    closeQuietly(this.fd);
    if (failure !== undefined) {
      process.emitWarning(`vfio-user: closing the device failed: ${describe(failure)}`, { type: 'VfioUserWarning' });
    }
    this.onClosed(this.reason);
  }
}

function errnoOf(error: unknown): number {
  if (typeof error === 'string') return errnoNumber(error as SysError['code']);
  if (isSysError(error)) return error.errno;
  if (error instanceof DmaFault) return errnoNumber('EFAULT');
  return errnoNumber('EIO');
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function closeQuietly(fd: number): void {
  try {
    addon().close(fd);
  } catch {
    // Already closed: nothing to leak.
  }
}
