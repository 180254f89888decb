// `vgpu serve`: one long-running process owns the host (parents, registry, live vGPUs)
// and answers the management protocol (protocol.ts) on a unix socket. Requests from all
// clients go through one queue, one at a time, so a start and a stop of the same UUID
// from two clients never interleave. A client's garbage, oversize lines or sudden
// disconnect costs that client an error response or its connection, and no one else.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import type { SysError } from '../addon/errors.js';
import type { HostApi } from './api.js';
import { lockDefinitions, lockSocket } from './daemon-lock.js';
import { DaemonClient } from './daemon-client.js';
import { Connection, DEFAULT_LIMITS, type AnswerSlot, type ConnectionLimits } from './connection.js';
import {
  METHODS, PROTOCOL_VERSION, ProtocolError, callHost, checkSocketPath, decodeRequest, encodeResponse, packageVersion, responseLines,
  sysErrorSaying, type HelloResult, type Request,
} from './protocol.js';

/** The signals that shut the daemon down cleanly. */
const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

export interface ServeOptions {
  socketPath: string;
  /** The socket file's mode: 0600 (its owner, root when root starts it) unless told. */
  mode?: number;
  /** SIGTERM, SIGINT and SIGHUP shut the daemon down and exit the process (default true). */
  handleSignals?: boolean;
  /** Facts "hello" reports (fd layer, definitions root...). */
  hostInfo?: Record<string, string>;
  /** Where the daemon says what it does; stderr unless told. */
  log?: (line: string) => void;
  /** Requests one connection may have queued or running at once (default 32). */
  maxPendingPerConnection?: number;
  /** The definitions folder the host uses: locked for the daemon's life, so no second daemon shares it. */
  definitionsRoot?: string;
  /** When a client that does not read its answers stops being read, and is dropped (connection.ts). */
  limits?: Partial<ConnectionLimits>;
  /** How the signal handler ends the process (process.exit unless told; for tests). */
  exit?: (code: number) => void;
}

export interface Daemon {
  readonly socketPath: string;
  readonly hello: HelloResult;
  /** Open connections, and the answer bytes they have not taken yet (what a non-reading client costs). */
  stats(): DaemonStats;
  /** Stops accepting, finishes the request in flight, answers queued ones ECANCELED,
   * closes the host and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

export interface DaemonStats {
  connections: number;
  /** Connections no longer read because their answers pile up. */
  paused: number;
  unsentBytes: number;
}

export type ServedHost = HostApi & { close(): Promise<void> | void };

interface Job {
  connection: Connection;
  request: Request;
  /** Its place in the connection's answer order. */
  slot: AnswerSlot;
}

/** One request at a time for the whole host. */
class RequestQueue {
  private readonly jobs: Job[] = [];
  private current: Promise<void> | undefined;

  constructor(private readonly run: (job: Job) => Promise<void>) {}

  push(job: Job): void {
    this.jobs.push(job);
    if (!this.current) this.current = this.pump();
  }

  /** Takes the jobs not yet started (the one running goes on). */
  drainQueued(): Job[] {
    return this.jobs.splice(0);
  }

  /** Settles once the job running now (if any) is done. */
  async idle(): Promise<void> {
    while (this.current) await this.current;
  }

  private async pump(): Promise<void> {
    for (let job = this.jobs.shift(); job; job = this.jobs.shift()) await this.run(job);
    this.current = undefined;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether something answers on `path`: 'alive', 'stale' (a socket file nobody listens on) or 'absent'. */
function probe(path: string): Promise<'alive' | 'stale' | 'absent'> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => { socket.destroy(); resolve('alive'); });
    socket.once('error', (err) => {
      const code = codeOf(err);
      if (code === 'ECONNREFUSED') resolve('stale');
      else if (code === 'ENOENT') resolve('absent');
      else reject(sysErrorSaying(code, 'connect', `cannot check ${path} for a running daemon: ${code ?? errorMessage(err)}`));
    });
  });
}

/** Makes the socket's folder (0755) when it is missing. */
function ensureDirectory(path: string): void {
  const dir = dirname(path);
  try {
    const created = mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (created !== undefined) chmodSync(dir, 0o755);
  } catch (err) {
    throw sysErrorSaying(codeOf(err), 'mkdir', `cannot create ${dir} for the daemon's socket: ${codeOf(err) ?? errorMessage(err)}`);
  }
}

function alreadyRunning(path: string): SysError {
  return sysErrorSaying('EADDRINUSE', 'bind', `a vgpu daemon already runs at ${path} (stop it first, or choose another --socket)`);
}

/** Someone listens, but no vgpu daemon of ours answered hello: not ours to replace or to name as one. */
function notADaemon(path: string): SysError {
  return sysErrorSaying('EADDRINUSE', 'bind', `something other than a vgpu daemon listens at ${path} (it did not answer hello); not replacing it`);
}

/** Whether the listener at `path` is a vgpu daemon: one that answers hello (as root or as us). */
async function answersHello(path: string): Promise<boolean> {
  try {
    const client = await DaemonClient.connect(path, { connectTimeoutMs: 2000 });
    await client.close();
    return true;
  } catch {
    return false;
  }
}

/** Clears the way to bind: refuses a live daemon or a file that is no socket, removes a stale socket. */
async function claimPath(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    throw sysErrorSaying(codeOf(err), 'lstat', `cannot check ${path}: ${codeOf(err) ?? errorMessage(err)}`);
  }
  if (!isSocket) throw sysErrorSaying('EEXIST', 'bind', `${path} exists and is not a socket; not replacing it`);
  const state = await probe(path);
  if (state === 'alive') throw (await answersHello(path)) ? alreadyRunning(path) : notADaemon(path);
  if (state === 'stale') {
    try {
      unlinkSync(path);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw sysErrorSaying(codeOf(err), 'unlink', `cannot remove the stale socket ${path}: ${codeOf(err) ?? errorMessage(err)}`);
    }
  }
}

/** Binds with a umask that leaves only `mode`'s bits, so no client can connect before the chmod. */
function listen(server: Server, path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      const code = codeOf(err);
      reject(code === 'EADDRINUSE' ? alreadyRunning(path)
        : sysErrorSaying(code, 'bind', `cannot listen on ${path}: ${code ?? errorMessage(err)}`));
    };
    server.once('error', onError);
    const previous = process.umask(~mode & 0o777);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      process.umask(previous);
    }
  });
}

export async function serve(host: ServedHost, options: ServeOptions): Promise<Daemon> {
  const { socketPath } = options;
  const mode = options.mode ?? 0o600;
  const log = options.log ?? ((line: string) => { process.stderr.write(`vgpu serve: ${line}\n`); });
  const maxPending = options.maxPendingPerConnection ?? 32;
  const exit = options.exit ?? ((code: number) => process.exit(code));

  // First: a longer path would bind a truncated one, and leave that file behind.
  checkSocketPath(socketPath, 'bind');
  ensureDirectory(socketPath);
  // Before looking at the socket file: of two daemons started together on a stale socket,
  // the one that holds the lock checks, removes and binds; the other is refused here.
  const locks = [lockSocket(socketPath)];
  try {
    if (options.definitionsRoot !== undefined) {
      try {
        locks.push(lockDefinitions(options.definitionsRoot));
      } catch (err) {
        if (codeOf(err) === 'EBUSY') throw err;
        // A folder this user cannot create (the default /etc one, not root): nothing to share.
        log(`${errorMessage(err)}; going on without that lock`);
      }
    }
    await claimPath(socketPath);
  } catch (err) {
    for (const lock of locks) lock.release();
    throw err;
  }

  const connections = new Set<Connection>();
  let shuttingDown = false;
  const hello: HelloResult = {
    protocol: PROTOCOL_VERSION,
    server: 'vfio-vgpu',
    version: packageVersion(),
    pid: process.pid,
    startedAt: new Date().toISOString(),
    methods: [...METHODS],
    host: { ...(options.hostInfo ?? {}) },
  };

  const queue = new RequestQueue(async ({ connection, request, slot }) => {
    let line: string;
    try {
      line = encodeResponse(request.id, { result: await callHost(host, request, () => hello) });
    } catch (err) {
      if (!(err instanceof Error) || typeof (err as Partial<SysError>).errno !== 'number') {
        log(`${request.method} failed unexpectedly: ${errorMessage(err)}`);
      }
      line = encodeResponse(request.id, { error: err });
    }
    // A long answer (list -d of thousands, a big screenshot) goes as part lines.
    connection.fill(slot, responseLines(request.id, line));
    connection.settled();
  });

  const onLine = (connection: Connection, line: string): void => {
    const decoded = decodeRequest(line);
    if (!decoded.ok) {
      connection.send(encodeResponse(decoded.id, { error: decoded.error }));
      return;
    }
    const { request } = decoded;
    if (shuttingDown) {
      connection.send(encodeResponse(request.id, { error: new ProtocolError('ECANCELED', 'the daemon is shutting down') }));
    } else if (connection.pending >= maxPending) {
      connection.send(encodeResponse(request.id, { error: new ProtocolError('EAGAIN', `more than ${maxPending} requests in flight on this connection`) }));
    } else {
      connection.pending++;
      queue.push({ connection, request, slot: connection.reserve() });
    }
  };

  const limits: ConnectionLimits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const connection = new Connection(socket, onLine, limits,
      (unsent) => log(`dropped a client that does not read its answers (${unsent} bytes unsent)`));
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  });
  server.on('error', (err) => log(`socket error: ${errorMessage(err)}`));

  try {
    await listen(server, socketPath, mode);
  } catch (err) {
    for (const lock of locks) lock.release();
    throw err;
  }
  let socketIno: number | undefined;
  try {
    chmodSync(socketPath, mode);
    socketIno = lstatSync(socketPath).ino;
  } catch (err) {
    server.close();
    for (const lock of locks) lock.release();
    throw sysErrorSaying(codeOf(err), 'chmod', `cannot set the mode of ${socketPath}: ${codeOf(err) ?? errorMessage(err)}`);
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return;
    log(`${signal}: shutting down`);
    daemon.close().then(() => exit(0), (err: unknown) => {
      log(`shutdown failed: ${errorMessage(err)}`);
      exit(1);
    });
  };
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) {
    // SIGHUP (its terminal closed) would otherwise kill it on the spot, socket left behind.
    for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
  }

  let closing: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    if (handleSignals) {
      for (const signal of SHUTDOWN_SIGNALS) process.off(signal, onSignal);
    }
    // Stop accepting (libuv unlinks the socket file as the listener closes).
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const { connection, request, slot } of queue.drainQueued()) {
      connection.fill(slot, encodeResponse(request.id, { error: new ProtocolError('ECANCELED', 'the daemon is shutting down') }));
      connection.settled();
    }
    await queue.idle();
    for (const connection of connections) {
      connection.socket.end();
      // A client that never reads must not hold the shutdown up.
      setTimeout(() => connection.socket.destroy(), 1000).unref();
    }
    await serverClosed;
    try {
      await host.close();
    } finally {
      removeSocketFile(socketPath, socketIno);
      // Last: until the socket file is gone, no other daemon may claim the path.
      for (const lock of locks) lock.release();
    }
  };

  const daemon: Daemon = {
    socketPath,
    hello,
    stats: () => {
      const all = [...connections];
      return { connections: all.length, paused: all.filter((c) => c.isPaused).length, unsentBytes: all.reduce((n, c) => n + c.unsentBytes, 0) };
    },
    close: () => (closing ??= shutdown()),
  };
  log(`listening on ${socketPath} (protocol ${PROTOCOL_VERSION}, pid ${process.pid})`);
  return daemon;
}

/** Removes the socket file if it is still ours (another daemon may have bound the path since). */
function removeSocketFile(path: string, ino: number | undefined): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch {
    // Already gone: libuv removed it when the listener closed.
  }
}
