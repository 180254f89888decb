// The management protocol of `vgpu serve`: newline-delimited JSON over a unix stream
// socket. A request is {"id": N, "method": M, "params": {...}}, a response
// {"id": N, "result": R} or {"id": N, "error": {"code", "errno", "message"}}. The
// methods are HostApi's, with their arguments as one object, plus "hello". Everything
// that arrives is checked here, so the daemon and the client trust only what passed.
import { readFileSync } from 'node:fs';
import { errnoCode, errnoNumber, isSysError, type ErrnoCode, type SysError } from '../addon/errors.js';
import type {
  Definition, DefineRequest, DefinitionAttr, DeviceReport, HostApi, LiveDevice, ModifyRequest, Screenshot, StartRequest, TypeInfo,
} from './api.js';
import { jsonSyntaxReason } from './json-text.js';

/** Bumped when a method or a shape changes incompatibly. */
export const PROTOCOL_VERSION = 1;
/** The longest line (request or response) either side accepts, in bytes, newline excluded. */
export const MAX_LINE_BYTES = 1024 * 1024;
/**
 * A response longer than a line travels as consecutive "part" lines, each carrying a piece
 * of the response's JSON text as a string: {"id": N, "part": "..."}, the last with
 * "end": true. Pieces are PART_CHARS UTF-16 units: escaped and UTF-8 encoded, at most 3
 * bytes each, well under MAX_LINE_BYTES.
 */
export const PART_CHARS = 256 * 1024;
/** The longest unix socket path Linux binds or connects to: sun_path's 108 bytes, NUL included. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** ENAMETOOLONG for a socket path the kernel would truncate (to bind or reach another path). */
export function checkSocketPath(path: string, syscall: 'bind' | 'connect'): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw sysErrorSaying('ENAMETOOLONG', syscall, `socket path too long: ${path} is ${bytes} bytes, a unix socket path at most ${MAX_SOCKET_PATH_BYTES}`);
  }
}

/** The longest response (all its parts) a client assembles: 64 MiB. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** What "hello" answers: who serves, which protocol, on which host. */
export interface HelloResult {
  protocol: number;
  server: 'vfio-vgpu';
  /** The package version of the daemon. */
  version: string;
  pid: number;
  /** ISO time the daemon started listening. */
  startedAt: string;
  methods: Method[];
  /** Free-form facts the daemon was started with (fd layer, definitions root...). */
  host: Record<string, string>;
}

/** Each method's params object. */
export interface MethodParams {
  hello: Record<string, never>;
  types: { parent?: string };
  list: { uuid?: string; parent?: string };
  listDefined: { uuid?: string; parent?: string };
  start: StartRequest;
  stop: { uuid: string; force?: boolean };
  define: DefineRequest;
  undefine: { uuid: string; parent?: string; force?: boolean };
  modify: ModifyRequest;
  info: { target: string };
  screenshot: { uuid: string };
}

/** Each method's result ("stop" answers null). */
export interface MethodResults {
  hello: HelloResult;
  types: TypeInfo[];
  list: LiveDevice[];
  listDefined: Definition[];
  start: string;
  stop: null;
  define: string;
  undefine: number;
  modify: Definition;
  info: DeviceReport;
  screenshot: Screenshot;
}

export type Method = keyof MethodParams;

export interface Request<M extends Method = Method> {
  id: number;
  method: M;
  params: MethodParams[M];
}

export interface WireError {
  code: string;
  errno: number;
  message: string;
  /** The failing call and VFIO operation, when the host's error named them. */
  syscall?: string;
  operation?: string;
}

export type Response =
  | { id: number | null; result: unknown }
  | { id: number | null; error: WireError };

/** One piece of a response too long for a line. */
export interface ResponsePart {
  id: number;
  part: string;
  end: boolean;
}

/** A message that failed validation: answered as an error, never thrown further. */
export class ProtocolError extends Error {
  constructor(readonly code: ErrnoCode, message: string) {
    super(message);
  }
}

function fail(message: string, code: ErrnoCode = 'EINVAL'): never {
  throw new ProtocolError(code, message);
}

// --- shapes ---------------------------------------------------------------------------

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: Json, where: string, allowed: readonly string[]): Record<string, Json> {
  if (!isObject(v)) fail(`${where} must be an object`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) fail(`${where} has an unknown field '${key}' (known: ${allowed.join(', ') || 'none'})`);
  }
  return v;
}

function string(v: Json, where: string): string {
  if (typeof v !== 'string') fail(`${where} must be a string`);
  return v;
}

function optString(v: Json, where: string): string | undefined {
  return v === undefined ? undefined : string(v, where);
}

function optBoolean(v: Json, where: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(`${where} must be true or false`);
  return v;
}

function optIndex(v: Json, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${where} must be a non-negative integer`);
  return v;
}

function optStartMode(v: Json, where: string): 'auto' | 'manual' | undefined {
  if (v === undefined) return undefined;
  if (v !== 'auto' && v !== 'manual') fail(`${where} must be "auto" or "manual"`);
  return v;
}

function attrs(v: Json, where: string): DefinitionAttr[] {
  if (!Array.isArray(v)) fail(`${where} must be an array of {name, value}`);
  return v.map((item, i) => {
    const o = object(item, `${where}[${i}]`, ['name', 'value']);
    return { name: string(o.name, `${where}[${i}].name`), value: string(o.value, `${where}[${i}].value`) };
  });
}

function optAttrs(v: Json, where: string): DefinitionAttr[] | undefined {
  return v === undefined ? undefined : attrs(v, where);
}

/** Copies only the fields that are present, so `undefined` never stands for "given". */
function defined<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

function jsonDefinition(v: Json, where: string): NonNullable<StartRequest['definition']> {
  const o = object(v, where, ['type', 'start', 'attrs']);
  return defined({ type: string(o.type, `${where}.type`), start: optStartMode(o.start, `${where}.start`), attrs: optAttrs(o.attrs, `${where}.attrs`) });
}

function optJsonDefinition(v: Json, where: string): StartRequest['definition'] {
  return v === undefined ? undefined : jsonDefinition(v, where);
}

function filter(v: Json): { uuid?: string; parent?: string } {
  const o = object(v, 'params', ['uuid', 'parent']);
  return defined({ uuid: optString(o.uuid, 'params.uuid'), parent: optString(o.parent, 'params.parent') });
}

const paramDecoders: { [M in Method]: (params: Json) => MethodParams[M] } = {
  hello: (v) => { object(v, 'params', []); return {}; },
  types: (v) => { const o = object(v, 'params', ['parent']); return defined({ parent: optString(o.parent, 'params.parent') }); },
  list: filter,
  listDefined: filter,
  start: (v) => {
    const o = object(v, 'params', ['uuid', 'parent', 'type', 'definition']);
    return defined({
      uuid: optString(o.uuid, 'params.uuid'), parent: optString(o.parent, 'params.parent'), type: optString(o.type, 'params.type'),
      definition: optJsonDefinition(o.definition, 'params.definition'),
    });
  },
  stop: (v) => {
    const o = object(v, 'params', ['uuid', 'force']);
    return defined({ uuid: string(o.uuid, 'params.uuid'), force: optBoolean(o.force, 'params.force') });
  },
  define: (v) => {
    const o = object(v, 'params', ['uuid', 'parent', 'type', 'start', 'attrs', 'definition']);
    return defined({
      uuid: optString(o.uuid, 'params.uuid'), parent: optString(o.parent, 'params.parent'), type: optString(o.type, 'params.type'),
      start: optStartMode(o.start, 'params.start'), attrs: optAttrs(o.attrs, 'params.attrs'),
      definition: optJsonDefinition(o.definition, 'params.definition'),
    });
  },
  undefine: (v) => {
    const o = object(v, 'params', ['uuid', 'parent', 'force']);
    return defined({ uuid: string(o.uuid, 'params.uuid'), parent: optString(o.parent, 'params.parent'), force: optBoolean(o.force, 'params.force') });
  },
  modify: (v) => {
    const o = object(v, 'params', ['uuid', 'parent', 'type', 'start', 'addAttr', 'delAttr', 'definition']);
    let addAttr: ModifyRequest['addAttr'];
    if (o.addAttr !== undefined) {
      const a = object(o.addAttr, 'params.addAttr', ['name', 'value', 'index']);
      addAttr = defined({ name: string(a.name, 'params.addAttr.name'), value: string(a.value, 'params.addAttr.value'), index: optIndex(a.index, 'params.addAttr.index') });
    }
    let delAttr: ModifyRequest['delAttr'];
    if (o.delAttr !== undefined) {
      const d = object(o.delAttr, 'params.delAttr', ['index']);
      delAttr = defined({ index: optIndex(d.index, 'params.delAttr.index') });
    }
    return defined({
      uuid: string(o.uuid, 'params.uuid'), parent: optString(o.parent, 'params.parent'), type: optString(o.type, 'params.type'),
      start: optStartMode(o.start, 'params.start'), addAttr, delAttr, definition: optJsonDefinition(o.definition, 'params.definition'),
    });
  },
  info: (v) => { const o = object(v, 'params', ['target']); return { target: string(o.target, 'params.target') }; },
  screenshot: (v) => { const o = object(v, 'params', ['uuid']); return { uuid: string(o.uuid, 'params.uuid') }; },
};

export const METHODS = Object.keys(paramDecoders) as Method[];

function isMethod(name: string): name is Method {
  return Object.prototype.hasOwnProperty.call(paramDecoders, name);
}

/** A request line decoded, or the error to answer (with the id when it could be read). */
export type DecodedRequest =
  | { ok: true; request: Request }
  | { ok: false; id: number | null; error: ProtocolError };

function isId(v: Json): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function decodeRequest(line: string): DecodedRequest {
  let message: Json;
  try {
    message = JSON.parse(line);
  } catch (err) {
    return { ok: false, id: null, error: new ProtocolError('EINVAL', `request is not JSON (${jsonSyntaxReason(err)})`) };
  }
  if (!isObject(message)) return { ok: false, id: null, error: new ProtocolError('EINVAL', 'request must be a JSON object {"id", "method", "params"}') };
  const id = isId(message.id) ? message.id : null;
  try {
    object(message, 'request', ['id', 'method', 'params']);
    if (id === null) fail('request.id must be a non-negative integer');
    const method = string(message.method, 'request.method');
    if (!isMethod(method)) fail(`unknown method '${method}' (methods: ${METHODS.join(', ')})`, 'ENOSYS');
    const params = paramDecoders[method](message.params === undefined ? {} : message.params);
    return { ok: true, request: { id, method, params } };
  } catch (err) {
    if (err instanceof ProtocolError) return { ok: false, id, error: err };
    throw err;
  }
}

// --- encoding -------------------------------------------------------------------------

export function encodeRequest<M extends Method>(id: number, method: M, params: MethodParams[M]): string {
  return `${JSON.stringify({ id, method, params })}\n`;
}

/** Any error as it travels: a SysError keeps its code, errno and message; anything else is EIO. */
export function toWireError(err: unknown): WireError {
  if (err instanceof ProtocolError) return { code: err.code, errno: errnoNumber(err.code), message: err.message };
  if (isSysError(err)) {
    const wire: WireError = { code: err.code, errno: err.errno, message: err.message };
    if (typeof err.syscall === 'string') wire.syscall = err.syscall;
    if (typeof err.operation === 'string') wire.operation = err.operation;
    return wire;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'EIO', errno: errnoNumber('EIO'), message: `internal error: ${message}` };
}

/** One response line; a result JSON cannot carry (a bigint, a cycle) becomes an EIO error. */
export function encodeResponse(id: number | null, outcome: { result: unknown } | { error: unknown }): string {
  if ('error' in outcome) return `${JSON.stringify({ id, error: toWireError(outcome.error) })}\n`;
  try {
    return `${JSON.stringify({ id, result: outcome.result ?? null })}\n`;
  } catch (err) {
    return `${JSON.stringify({ id, error: toWireError(new ProtocolError('EIO', `result could not be encoded (${(err as Error).message})`)) })}\n`;
  }
}

/**
 * The lines that carry one response: the response itself when it fits a line, else its
 * text cut into "part" lines (never between the two halves of a surrogate pair).
 */
export function responseLines(id: number | null, response: string): string[] {
  if (Buffer.byteLength(response) - 1 <= MAX_LINE_BYTES) return [response];
  const text = response.endsWith('\n') ? response.slice(0, -1) : response;
  const lines: string[] = [];
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + PART_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    const part: Record<string, unknown> = { id, part: text.slice(start, end) };
    if (end === text.length) part.end = true;
    lines.push(`${JSON.stringify(part)}\n`);
    start = end;
  }
  return lines;
}

/** A response line as the client reads it, or a part of one; a malformed one is a ProtocolError (EPROTO). */
export function decodeResponseLine(line: string): Response | ResponsePart {
  let message: Json;
  try {
    message = JSON.parse(line);
  } catch {
    fail('daemon sent a line that is not JSON', 'EPROTO');
  }
  if (isObject(message) && 'part' in message) {
    if (!isId(message.id) || typeof message.part !== 'string' || !(message.end === undefined || message.end === true)) {
      fail('daemon sent a malformed response part', 'EPROTO');
    }
    return { id: message.id, part: message.part, end: message.end === true };
  }
  return responseOf(message);
}

/** A whole response line as the client reads it; a malformed one is a ProtocolError (EPROTO). */
export function decodeResponse(line: string): Response {
  let message: Json;
  try {
    message = JSON.parse(line);
  } catch {
    fail('daemon sent a line that is not JSON', 'EPROTO');
  }
  return responseOf(message);
}

function responseOf(message: Json): Response {
  if (!isObject(message) || !(message.id === null || isId(message.id))) fail('daemon sent a response without an id', 'EPROTO');
  if ('error' in message) {
    const e = message.error;
    if (!isObject(e) || typeof e.code !== 'string' || typeof e.errno !== 'number' || typeof e.message !== 'string') {
      fail('daemon sent a malformed error', 'EPROTO');
    }
    const wire: WireError = { code: e.code, errno: e.errno, message: e.message };
    if (typeof e.syscall === 'string') wire.syscall = e.syscall;
    if (typeof e.operation === 'string') wire.operation = e.operation;
    return { id: message.id, error: wire };
  }
  if (!('result' in message)) fail('daemon sent a response with neither result nor error', 'EPROTO');
  return { id: message.id, result: message.result };
}

/** The SysError a client throws for an error response: the daemon's code, errno and message. */
export function fromWireError(wire: WireError, method: string): SysError {
  const code = isKnownCode(wire.code) ? wire.code : errnoCode(wire.errno) ?? 'EIO';
  const err = new Error(wire.message) as SysError;
  err.code = code;
  err.errno = errnoNumber(code);
  err.syscall = wire.syscall ?? method;
  if (wire.operation !== undefined) err.operation = wire.operation;
  return err;
}

function isKnownCode(code: string): code is ErrnoCode {
  return typeof errnoNumber(code as ErrnoCode) === 'number';
}

// --- results --------------------------------------------------------------------------

function shallow(ok: boolean, method: Method): void {
  if (!ok) fail(`daemon answered '${method}' with a result of the wrong shape`, 'EPROTO');
}

/** Checks a result's outer shape, so a confused daemon is an EPROTO error and not a crash later. */
export function checkResult<M extends Method>(method: M, result: unknown): MethodResults[M] {
  switch (method) {
    case 'hello': shallow(isObject(result) && typeof result.protocol === 'number', method); break;
    case 'types': case 'list': case 'listDefined': shallow(Array.isArray(result) && result.every(isObject), method); break;
    case 'start': case 'define': shallow(typeof result === 'string', method); break;
    case 'stop': shallow(result === null, method); break;
    case 'undefine': shallow(typeof result === 'number', method); break;
    case 'modify': shallow(isObject(result) && typeof result.uuid === 'string', method); break;
    case 'info': shallow(isObject(result) && typeof result.name === 'string' && Array.isArray(result.lines), method); break;
    case 'screenshot': shallow(isObject(result) && typeof result.pngBase64 === 'string' && typeof result.width === 'number', method); break;
  }
  return result as MethodResults[M];
}

// --- dispatch -------------------------------------------------------------------------

/** Calls the host for one decoded request. */
export async function callHost(host: HostApi, request: Request, hello: () => HelloResult): Promise<unknown> {
  const p = request.params;
  switch (request.method) {
    case 'hello': return hello();
    case 'types': return host.types(p as MethodParams['types']);
    case 'list': return host.list(p as MethodParams['list']);
    case 'listDefined': return host.listDefined(p as MethodParams['listDefined']);
    case 'start': return host.start(p as MethodParams['start']);
    case 'stop': {
      const { uuid, force } = p as MethodParams['stop'];
      await (force === undefined ? host.stop(uuid) : host.stop(uuid, { force }));
      return null;
    }
    case 'define': return host.define(p as MethodParams['define']);
    case 'undefine': {
      const { uuid, parent, force } = p as MethodParams['undefine'];
      if (force !== undefined) return host.undefine(uuid, parent, { force });
      return parent === undefined ? host.undefine(uuid) : host.undefine(uuid, parent);
    }
    case 'modify': return host.modify(p as MethodParams['modify']);
    case 'info': return host.info((p as MethodParams['info']).target);
    case 'screenshot': return host.screenshot((p as MethodParams['screenshot']).uuid);
  }
}

/** The package version, read once from package.json beside dist/ (or "unknown"). */
export function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'vfio-vgpu' && typeof pkg.version === 'string') return pkg.version;
    } catch { /* try the next */ }
  }
  return 'unknown';
}

/** A SysError with a message of our own: one line a person can act on. */
export function sysErrorSaying(code: string | undefined, syscall: string, message: string): SysError {
  const known: ErrnoCode = code !== undefined && isKnownCode(code) ? code : 'EIO';
  const err = new Error(message) as SysError;
  err.code = known;
  err.errno = errnoNumber(known);
  err.syscall = syscall;
  return err;
}
