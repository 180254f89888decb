// gRPC over unix sockets, the way the kubelet's plugin APIs run: a server bound to a
// socket file (a stale one from an earlier run removed first, anything else refused)
// and clients that dial a socket path.
import { lstatSync, unlinkSync } from 'node:fs';
import { credentials, Metadata, Server, ServerCredentials, status, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';

/** A socket file left at `path` goes (a plugin owns its socket name); a file that is no socket is refused. */
export function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; not replacing it`);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** A started server on `path` (its earlier socket removed). */
export async function serveOnSocket(path: string, setup: (server: Server) => void): Promise<Server> {
  removeStaleSocket(path);
  const server = new Server();
  setup(server);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  return server;
}

/** Stops a server: calls in flight are cut after `graceMs` (a ListAndWatch stream never ends by itself). */
export function stopServer(server: Server, graceMs = 200): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
    server.tryShutdown(() => { clearTimeout(timer); resolve(); });
  });
}

/** A client of `service` on the socket at `path`. */
export function dialSocket<C extends Client>(service: ServiceClientConstructor, path: string): C {
  return new service(`unix://${path}`, credentials.createInsecure()) as unknown as C;
}

/** A gRPC error a caller reads: its status code and a message that says what was wrong. */
export function grpcError(code: status, message: string): Partial<ServiceError> {
  return { code, details: message, message };
}

/** Calls a unary method of an untyped client with a deadline. */
export function unaryCall<Req, Res>(client: Client, method: string, request: Req, timeoutMs = 5000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: Req, meta: Metadata, opts: object, cb: (err: ServiceError | null, res: Res) => void) => void>)[method];
    if (typeof fn !== 'function') {
      reject(new Error(`the client has no method ${method}`));
      return;
    }
    fn.call(client, request, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export { status };
