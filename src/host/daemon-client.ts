// HostApi over the daemon's socket: every call is one request line and one response line
// (protocol.ts). Error responses come back as the SysError the host threw (code, errno,
// message); a missing daemon, a timeout or a dropped connection are SysErrors that say so.
import { createConnection, type Socket } from 'node:net';
import { addon } from '../addon/addon.js';
import type { SysError } from '../addon/errors.js';
import type {
  Definition, DefineRequest, DeviceReport, HostApi, LiveDevice, ModifyRequest, Screenshot, StartRequest, TypeInfo,
} from './api.js';
import {
  MAX_LINE_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, ProtocolError, checkResult, checkSocketPath, decodeResponse, decodeResponseLine, encodeRequest,
  fromWireError, sysErrorSaying, type HelloResult, type Method, type MethodParams, type MethodResults, type Response,
} from './protocol.js';
import { LineReader } from './line-reader.js';
import { boundByRootOrUs } from './socket-owner.js';

export interface DaemonClientOptions {
  /** How long connecting and "hello" may take (default 5 s). */
  connectTimeoutMs?: number;
  /** How long one request may wait for its answer (default 60 s: starts can be slow). */
  requestTimeoutMs?: number;
}

interface Pending {
  method: Method;
  resolve: (result: unknown) => void;
  reject: (err: SysError) => void;
  timer: NodeJS.Timeout;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function notRunning(path: string, code: string): SysError {
  return sysErrorSaying(code, 'connect', `no vgpu daemon runs at ${path} (start one with \`vgpu serve\`)`);
}

function openSocket(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(sysErrorSaying('ETIMEDOUT', 'connect', `the vgpu daemon at ${path} did not accept a connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      const code = codeOf(err);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') reject(notRunning(path, code));
      else if (code === 'EACCES') reject(sysErrorSaying(code, 'connect', `no permission to use the vgpu daemon at ${path} (its socket is mode 0600: run as the user who started it, usually root)`));
      else reject(sysErrorSaying(code, 'connect', `cannot connect to the vgpu daemon at ${path}: ${code ?? err.message}`));
    });
  });
}

/** The fd under a connected net.Socket (libuv's pipe handle), or undefined when Node hides it. */
function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Refuses a daemon that is neither root nor this user: whoever binds the socket path first
 * (a world-writable folder) would otherwise get our requests and choose our answers.
 * SO_PEERCRED is the listener's uid as the kernel saw it, which the peer cannot fake.
 * Asked only where the file system does not already vouch for the listener (socket-owner.ts).
 */
function checkPeer(path: string, socket: Socket): void {
  const fd = fdOf(socket);
  if (fd === undefined) throw sysErrorSaying('EPERM', 'connect', `cannot tell who listens at ${path} (no fd for SO_PEERCRED): refusing to use it`);
  const { uid } = addon().peerCredentials(fd);
  const own = process.getuid?.() ?? 0;
  if (uid !== 0 && uid !== own) {
    throw sysErrorSaying('EPERM', 'connect', `refusing the daemon at ${path}: it runs as uid ${uid}, neither root nor you (uid ${own})`);
  }
}

export class DaemonClient implements HostApi {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly reader = new LineReader(MAX_LINE_BYTES);
  /** The parts of a long response read so far (protocol.ts's responseLines). */
  private assembling: { id: number; parts: string[]; length: number } | undefined;
  /** Set by fail(): nothing more is read (close() still reads the answers it waits for). */
  private lost = false;
  /** Set once the connection is gone: every later call fails with it. */
  private broken: SysError | undefined;
  private readonly closed: Promise<void>;
  /** What the daemon said in "hello". */
  server!: HelloResult;

  private constructor(readonly socketPath: string, private readonly socket: Socket, private readonly requestTimeoutMs: number) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.fail(sysErrorSaying(codeOf(err), 'read', `lost the connection to the vgpu daemon at ${socketPath}: ${codeOf(err) ?? err.message}`)));
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.fail(sysErrorSaying('ECONNRESET', 'read', `the vgpu daemon at ${socketPath} closed the connection`));
      resolve();
    }));
  }

  /** Connects and says hello; a missing daemon is ENOENT/ECONNREFUSED saying how to start one. */
  static async connect(socketPath: string, options: DaemonClientOptions = {}): Promise<DaemonClient> {
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    checkSocketPath(socketPath, 'connect');
    const socket = await openSocket(socketPath, connectTimeoutMs);
    try {
      if (!boundByRootOrUs(socketPath)) checkPeer(socketPath, socket);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    const client = new DaemonClient(socketPath, socket, options.requestTimeoutMs ?? 60_000);
    try {
      const hello = await client.call('hello', {}, connectTimeoutMs);
      if (hello.protocol !== PROTOCOL_VERSION) {
        throw sysErrorSaying('EPROTO', 'connect', `the vgpu daemon at ${socketPath} speaks protocol ${hello.protocol}, this client ${PROTOCOL_VERSION}`);
      }
      client.server = hello;
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return client;
  }

  /** A client when a daemon answers at `socketPath`, undefined when none runs there (other errors throw). */
  static async connectIfRunning(socketPath: string, options: DaemonClientOptions = {}): Promise<DaemonClient | undefined> {
    try {
      return await DaemonClient.connect(socketPath, options);
    } catch (err) {
      const code = codeOf(err);
      if ((code === 'ENOENT' || code === 'ECONNREFUSED') && (err as SysError).syscall === 'connect') return undefined;
      throw err;
    }
  }

  hello(): Promise<HelloResult> { return this.call('hello', {}); }
  types(filter: { parent?: string } = {}): Promise<TypeInfo[]> { return this.call('types', filter); }
  list(filter: { uuid?: string; parent?: string } = {}): Promise<LiveDevice[]> { return this.call('list', filter); }
  listDefined(filter: { uuid?: string; parent?: string } = {}): Promise<Definition[]> { return this.call('listDefined', filter); }
  start(request: StartRequest): Promise<string> { return this.call('start', request); }
  async stop(uuid: string, options: { force?: boolean } = {}): Promise<void> { await this.call('stop', options.force ? { uuid, force: true } : { uuid }); }
  define(request: DefineRequest): Promise<string> { return this.call('define', request); }
  undefine(uuid: string, parent?: string, options: { force?: boolean } = {}): Promise<number> {
    return this.call('undefine', { uuid, ...(parent === undefined ? {} : { parent }), ...(options.force ? { force: true } : {}) });
  }
  modify(request: ModifyRequest): Promise<Definition> { return this.call('modify', request); }
  info(target: string): Promise<DeviceReport> { return this.call('info', { target }); }
  screenshot(uuid: string): Promise<Screenshot> { return this.call('screenshot', { uuid }); }

  /**
   * Ends the connection; requests already sent still get their answers first. With none
   * waiting, the socket is closed at once instead of after the daemon's end of stream (a
   * round trip less for every command): every answer has been read, so the daemon reads
   * an orderly end of file (data left unread in a closed unix socket would be ECONNRESET).
   */
  async close(): Promise<void> {
    if (!this.socket.destroyed) {
      if (this.pending.size === 0 && this.assembling === undefined) this.socket.destroy();
      else this.socket.end();
    }
    this.broken ??= sysErrorSaying('ENOTCONN', 'write', `this client of the vgpu daemon at ${this.socketPath} is closed`);
    await this.closed;
  }

  private call<M extends Method>(method: M, params: MethodParams[M], timeoutMs = this.requestTimeoutMs): Promise<MethodResults[M]> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const line = encodeRequest(id, method, params);
    if (Buffer.byteLength(line) - 1 > MAX_LINE_BYTES) {
      return Promise.reject(sysErrorSaying('EMSGSIZE', method, `the ${method} request is longer than ${MAX_LINE_BYTES} bytes`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(sysErrorSaying('ETIMEDOUT', method, `the vgpu daemon at ${this.socketPath} did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (result: unknown) => void, reject, timer });
      this.socket.write(line);
    });
  }

  private receive(chunk: Buffer): void {
    if (this.lost) return;
    this.reader.push(chunk, {
      line: (bytes) => {
        this.answer(bytes.toString('utf8'));
        return !this.lost;
      },
      tooLong: () => this.fail(sysErrorSaying('EMSGSIZE', 'read', `the vgpu daemon at ${this.socketPath} sent a line longer than ${MAX_LINE_BYTES} bytes`)),
    });
  }

  private protocolError(err: unknown): void {
    this.fail(sysErrorSaying(err instanceof ProtocolError ? err.code : 'EPROTO', 'read', `${(err as Error).message} (${this.socketPath})`));
  }

  private answer(line: string): void {
    if (line.trim() === '') return;
    try {
      const message = decodeResponseLine(line);
      if (!('part' in message)) {
        if (this.assembling) throw new ProtocolError('EPROTO', 'daemon sent a response in the middle of another one\'s parts');
        this.settle(message);
        return;
      }
      const whole = this.assemble(message.id, message.part, message.end);
      if (whole !== undefined) this.settle(whole);
    } catch (err) {
      this.protocolError(err);
    }
  }

  /** Adds a part; the whole response once its last part came. */
  private assemble(id: number, part: string, end: boolean): Response | undefined {
    const into = this.assembling ??= { id, parts: [], length: 0 };
    if (into.id !== id) throw new ProtocolError('EPROTO', 'daemon mixed the parts of two responses');
    into.parts.push(part);
    into.length += part.length;
    if (into.length > MAX_RESPONSE_BYTES) throw new ProtocolError('EMSGSIZE', `daemon sent a response longer than ${MAX_RESPONSE_BYTES} bytes`);
    if (!end) return undefined;
    this.assembling = undefined;
    const whole = decodeResponse(into.parts.join(''));
    if (whole.id !== id) throw new ProtocolError('EPROTO', 'daemon sent parts whose response has another id');
    return whole;
  }

  private settle(response: Response): void {
    // An answer nobody waits for (timed out, or an error about a line we never sent) is dropped.
    const pending = response.id === null ? undefined : this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id as number);
    clearTimeout(pending.timer);
    if ('error' in response) {
      pending.reject(fromWireError(response.error, pending.method));
      return;
    }
    try {
      pending.resolve(checkResult(pending.method, response.result));
    } catch (err) {
      pending.reject(sysErrorSaying('EPROTO', pending.method, (err as Error).message));
    }
  }

  /** The connection is unusable: every waiting call fails with `err`, and so will later ones. */
  private fail(err: SysError): void {
    this.broken ??= err;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(this.broken);
    }
    this.assembling = undefined;
    this.reader.clear();
    this.lost = true;
    if (!this.socket.destroyed && err.code !== 'ECONNRESET') this.socket.destroy();
  }
}

/** DaemonClient.connect as a function. */
export function connect(socketPath: string, options: DaemonClientOptions = {}): Promise<DaemonClient> {
  return DaemonClient.connect(socketPath, options);
}

/** DaemonClient.connectIfRunning as a function: the CLI's choice between daemon and in-process host. */
export function connectIfRunning(socketPath: string, options: DaemonClientOptions = {}): Promise<DaemonClient | undefined> {
  return DaemonClient.connectIfRunning(socketPath, options);
}
