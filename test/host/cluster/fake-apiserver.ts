// A fake Kubernetes API server on 127.0.0.1 for what the DRA driver touches:
// ResourceSlices (list with field selectors, create, replace with resourceVersion
// checks, delete), ResourceClaims and Nodes (read). Every object written is validated against
// the resource.k8s.io/v1 schema that kubernetes-models ships (generated from the
// Kubernetes OpenAPI), plus the API server's own limits that a schema cannot say
// (devices per slice, counter sets, one of devices or sharedCounters, DNS names).
// Answers are what the API server sends: Status objects with code and reason.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ResourceSlice, ResourceClaim } from 'kubernetes-models/resource.k8s.io/v1';
import { Node } from 'kubernetes-models/v1';

type Json = Record<string, unknown>;

const TOKEN = 'fake-token';
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

class HttpError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) { super(message); }
}

export interface Write {
  verb: 'create' | 'update' | 'delete';
  object: Json;
}

/** The API server's checks of a ResourceSlice beyond its OpenAPI schema (pkg/apis/resource/validation). */
function checkSliceLimits(slice: Json): void {
  const spec = slice['spec'] as Json;
  const devices = spec['devices'] as Json[] | undefined;
  const sets = spec['sharedCounters'] as Json[] | undefined;
  if (devices !== undefined && sets !== undefined) throw new HttpError(422, 'Invalid', 'spec: only one of devices and sharedCounters may be set');
  if (typeof spec['nodeName'] !== 'string' || !DNS_SUBDOMAIN.test(spec['nodeName'] as string)) throw new HttpError(422, 'Invalid', 'spec.nodeName must be a node name');
  if (!DNS_SUBDOMAIN.test(spec['driver'] as string)) throw new HttpError(422, 'Invalid', 'spec.driver must be a DNS subdomain');
  const pool = spec['pool'] as Json;
  if ((pool['generation'] as number) < 0 || (pool['resourceSliceCount'] as number) < 1) throw new HttpError(422, 'Invalid', 'spec.pool: bad generation or slice count');
  if (sets !== undefined) {
    if (sets.length > 8) throw new HttpError(422, 'TooMany', 'spec.sharedCounters: at most 8');
    for (const set of sets) {
      if (!DNS_LABEL.test(set['name'] as string)) throw new HttpError(422, 'Invalid', `counter set name ${String(set['name'])} is not a DNS label`);
      for (const name of Object.keys(set['counters'] as Json)) if (!DNS_LABEL.test(name)) throw new HttpError(422, 'Invalid', `counter ${name}`);
    }
  }
  if (devices !== undefined) {
    const counting = devices.some((d) => d['consumesCounters'] !== undefined);
    if (devices.length > (counting ? 64 : 128)) throw new HttpError(422, 'TooMany', `spec.devices: at most ${counting ? 64 : 128}`);
    const names = new Set<string>();
    for (const device of devices) {
      const name = device['name'] as string;
      if (!DNS_LABEL.test(name)) throw new HttpError(422, 'Invalid', `device name ${name} is not a DNS label`);
      if (names.has(name)) throw new HttpError(422, 'Duplicate', `device name ${name}`);
      names.add(name);
      const attrs = (device['attributes'] ?? {}) as Record<string, Json>;
      const caps = (device['capacity'] ?? {}) as Json;
      if (Object.keys(attrs).length + Object.keys(caps).length > 32) throw new HttpError(422, 'TooMany', `device ${name}: more than 32 attributes and capacities`);
      for (const [key, value] of Object.entries(attrs)) {
        if (!C_IDENTIFIER.test(key)) throw new HttpError(422, 'Invalid', `attribute ${key} is not a C identifier`);
        const set = Object.keys(value);
        if (set.length !== 1) throw new HttpError(422, 'Invalid', `attribute ${key} must have exactly one value`);
        if (typeof value['string'] === 'string' && value['string'].length > 64) throw new HttpError(422, 'TooLong', `attribute ${key}`);
      }
      const consumes = (device['consumesCounters'] ?? []) as Json[];
      if (consumes.length > 2) throw new HttpError(422, 'TooMany', `device ${name}: at most 2 counter consumptions`);
    }
  }
}

export class FakeApiServer {
  readonly slices = new Map<string, Json>();
  readonly claims = new Map<string, Json>();
  readonly nodes = new Map<string, Json>();
  readonly writes: Write[] = [];
  /** Every request line: "GET /apis/...?...". */
  readonly requests: string[] = [];
  private server: Server | undefined;
  private version = 1000;

  async start(): Promise<void> {
    this.server = createServer((req, res) => { void this.handle(req, res); });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'node', token: TOKEN }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'node' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Adds a ResourceClaim (validated like any object) and returns it as stored. */
  addClaim(claim: Json): Json {
    new ResourceClaim(claim as never).validate();
    const meta = claim['metadata'] as Json;
    const stored = { ...claim, metadata: { ...meta, resourceVersion: String(++this.version) } };
    this.claims.set(`${String(meta['namespace'])}/${String(meta['name'])}`, stored);
    return stored;
  }

  /** Adds a Node (validated) and returns its UID. */
  addNode(name: string): string {
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name, uid: randomUUID(), resourceVersion: String(++this.version) } };
    new Node(node as never).validate();
    this.nodes.set(name, node);
    return node.metadata.uid;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    try {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) throw new HttpError(401, 'Unauthorized', 'Unauthorized');
      const body = await readBody(req);
      const slices = /^\/apis\/resource\.k8s\.io\/v1\/resourceslices(?:\/([^/]+))?$/.exec(url.pathname);
      const claim = /^\/apis\/resource\.k8s\.io\/v1\/namespaces\/([^/]+)\/resourceclaims\/([^/]+)$/.exec(url.pathname);
      const node = /^\/api\/v1\/nodes\/([^/]+)$/.exec(url.pathname);
      if (slices) return this.send(res, ...this.sliceRequest(req.method ?? 'GET', slices[1], url, body));
      if (node && req.method === 'GET') {
        const found = this.nodes.get(node[1]!);
        if (!found) throw new HttpError(404, 'NotFound', `nodes "${node[1]}" not found`);
        return this.send(res, 200, found);
      }
      if (claim && req.method === 'GET') {
        const found = this.claims.get(`${claim[1]}/${claim[2]}`);
        if (!found) throw new HttpError(404, 'NotFound', `resourceclaims.resource.k8s.io "${claim[2]}" not found`);
        return this.send(res, 200, found);
      }
      throw new HttpError(404, 'NotFound', `the server could not find the requested resource (${req.method} ${url.pathname})`);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'InternalError', String(err));
      this.send(res, e.code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, code: e.code });
    }
  }

  private sliceRequest(method: string, name: string | undefined, url: URL, body: Json | undefined): [number, Json] {
    if (name === undefined && method === 'GET') {
      const selectors = (url.searchParams.get('fieldSelector') ?? '').split(',').filter((s) => s !== '').map((s) => s.split('='));
      for (const [field] of selectors) {
        if (field !== 'spec.driver' && field !== 'spec.nodeName' && field !== 'metadata.name') throw new HttpError(400, 'BadRequest', `field label not supported: ${field}`);
      }
      const items = [...this.slices.values()].filter((s) => selectors.every(([field, value]) => fieldOf(s, field!) === value));
      return [200, { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSliceList', metadata: { resourceVersion: String(this.version) }, items }];
    }
    if (name === undefined && method === 'POST') {
      const slice = this.validSlice(body);
      const sliceName = (slice['metadata'] as Json)['name'] as string;
      if (this.slices.has(sliceName)) throw new HttpError(409, 'AlreadyExists', `resourceslices.resource.k8s.io "${sliceName}" already exists`);
      const meta = slice['metadata'] as Json;
      if (meta['resourceVersion'] !== undefined) throw new HttpError(422, 'Invalid', 'metadata.resourceVersion must not be set on create');
      const stored = { ...slice, metadata: { ...meta, uid: randomUUID(), resourceVersion: String(++this.version), creationTimestamp: new Date().toISOString() } };
      this.slices.set(sliceName, stored);
      this.writes.push({ verb: 'create', object: stored });
      return [201, stored];
    }
    if (name !== undefined && method === 'PUT') {
      const slice = this.validSlice(body);
      const meta = slice['metadata'] as Json;
      if (meta['name'] !== name) throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
      const old = this.slices.get(name);
      if (!old) throw new HttpError(404, 'NotFound', `resourceslices.resource.k8s.io "${name}" not found`);
      const oldMeta = old['metadata'] as Json;
      if (meta['resourceVersion'] !== oldMeta['resourceVersion']) throw new HttpError(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
      const oldSpec = old['spec'] as Json;
      const spec = slice['spec'] as Json;
      if (oldSpec['driver'] !== spec['driver'] || oldSpec['nodeName'] !== spec['nodeName']) throw new HttpError(422, 'Invalid', 'spec.driver and spec.nodeName are immutable');
      const stored = { ...slice, metadata: { ...meta, uid: oldMeta['uid'], creationTimestamp: oldMeta['creationTimestamp'], resourceVersion: String(++this.version) } };
      this.slices.set(name, stored);
      this.writes.push({ verb: 'update', object: stored });
      return [200, stored];
    }
    if (name !== undefined && method === 'DELETE') {
      const old = this.slices.get(name);
      if (!old) throw new HttpError(404, 'NotFound', `resourceslices.resource.k8s.io "${name}" not found`);
      this.slices.delete(name);
      this.writes.push({ verb: 'delete', object: old });
      return [200, old];
    }
    throw new HttpError(405, 'MethodNotAllowed', `${method} not allowed here`);
  }

  /** The schema first (kubernetes-models), then the server's own checks. */
  private validSlice(body: Json | undefined): Json {
    if (!body) throw new HttpError(400, 'BadRequest', 'no body');
    if (body['apiVersion'] !== 'resource.k8s.io/v1' || body['kind'] !== 'ResourceSlice') throw new HttpError(400, 'BadRequest', `wrong apiVersion/kind ${String(body['apiVersion'])}/${String(body['kind'])}`);
    try {
      new ResourceSlice(body as never).validate();
    } catch (err) {
      throw new HttpError(422, 'Invalid', `ResourceSlice is invalid: ${String(err)}`);
    }
    const name = (body['metadata'] as Json | undefined)?.['name'];
    if (typeof name !== 'string' || !DNS_SUBDOMAIN.test(name)) throw new HttpError(422, 'Invalid', `metadata.name ${String(name)} is not a DNS subdomain`);
    checkSliceLimits(body);
    // A real server takes any owner, and its garbage collector deletes an object whose owner
    // is gone (a wrong UID counts as gone): the fake refuses that, so a test sees it.
    for (const owner of ((body['metadata'] as Json)['ownerReferences'] ?? []) as Json[]) {
      const node = owner['kind'] === 'Node' && owner['apiVersion'] === 'v1' ? this.nodes.get(String(owner['name'])) : undefined;
      if (!node || (node['metadata'] as Json)['uid'] !== owner['uid']) throw new HttpError(422, 'Invalid', `owner ${JSON.stringify(owner)} does not exist: the garbage collector would delete the slice`);
    }
    return body;
  }

  private send(res: ServerResponse, code: number, body: Json): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }
}

function fieldOf(object: Json, path: string): unknown {
  let node: unknown = object;
  for (const part of path.split('.')) node = (node as Json | undefined)?.[part];
  return node;
}

function readBody(req: IncomingMessage): Promise<Json | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (chunks.length === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json);
      } catch {
        reject(new HttpError(400, 'BadRequest', 'the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}
