// VFIO_USER_VERSION: the first message of a connection, the same layout both ways.
//
//   0  u16 major
//   2  u16 minor
//   4  UTF-8 JSON, NUL-terminated (optional): {"capabilities": {...}}
//
// Capabilities (spec, "Version"): max_msg_fds, max_data_xfer_size, max_dma_maps,
// pgsizes, twin_socket {supported, fd_index}, write_multiple. QEMU 10.1 also sends
// "migration" {pgsize, max_bitmap_size}, which earlier spec revisions defined. Every key
// is optional; unknown keys are ignored (the spec is silent; QEMU warns and ignores,
// libvfio-user ignores). QEMU and libvfio-user insist that the NUL is the body's last
// byte, and QEMU 10.1 reads the JSON of a reply unconditionally: a server must send it.
import { defineStruct } from '../struct.js';
import { vfioUserDefaults } from './constants.js';
import { expectLength, invalid } from './invalid.js';
import { type JsonObject, type JsonValue, JsonNumber, isJsonObject, parseJson } from './json.js';

export const vfio_user_version = defineStruct('vfio_user_version', 4, { major: ['u16', 0], minor: ['u16', 2] });

export interface VfioUserVersion {
  major: number;
  minor: number;
  /** The JSON text before the first NUL, or undefined when the message has none. */
  capabilities: string | undefined;
}

export interface VfioUserMigrationCapability {
  pgsize: number;
  maxBitmapSize: number;
}

export interface VfioUserTwinSocketCapability {
  supported: boolean;
  /** Index in the reply's fds of the server-to-client socket (reply only). */
  fdIndex?: number;
}

export interface VfioUserCapabilities {
  maxMsgFds: number;
  maxDataXferSize: number;
  /** Page sizes supported by DMA_MAP, or'ed together (a 64-bit bitmap). */
  pgsizes: bigint;
  maxDmaMaps: number;
  writeMultiple: boolean;
  migration?: VfioUserMigrationCapability;
  twinSocket?: VfioUserTwinSocketCapability;
}

/**
 * Bounds past which a value is refused. The spec gives none: these keep the numbers
 * meaningful (counts are u32 on the wire, Linux passes at most 253 fds per message and
 * libvfio-user accepts at most 1024 from a client, page sizes below 4 KiB do not exist
 * for mmap, as QEMU also checks).
 */
export const capabilityBounds = {
  maxMsgFds: 1024,
  maxDataXferSize: 0xffffffff,
  maxDmaMaps: 0xffffffff,
  maxBitmapSize: 0xffffffff,
  maxFdIndex: 252,
  minPgsize: 4096,
  maxMigrationPgsize: 2 ** 40,
  /** Characters of JSON accepted; QEMU's capabilities are about 200. */
  maxJsonLength: 65536,
  maxJsonDepth: 8,
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export function defaultCapabilities(): VfioUserCapabilities {
  return {
    maxMsgFds: vfioUserDefaults.maxMsgFds,
    maxDataXferSize: vfioUserDefaults.maxDataXferSize,
    pgsizes: vfioUserDefaults.pgsizes,
    maxDmaMaps: vfioUserDefaults.maxDmaMaps,
    writeMultiple: false,
  };
}

export function encodeVersion(major: number, minor: number, capabilities?: string): Uint8Array {
  if (capabilities?.includes('\0')) throw new RangeError('capabilities JSON must not contain NUL');
  const json = capabilities === undefined ? undefined : utf8Encoder.encode(capabilities);
  const body = new Uint8Array(vfio_user_version.size + (json === undefined ? 0 : json.byteLength + 1));
  vfio_user_version.write(body, { major, minor });
  if (json !== undefined) body.set(json, vfio_user_version.size); // the NUL is already there
  return body;
}

export function decodeVersion(body: Uint8Array): VfioUserVersion {
  expectLength(body, vfio_user_version.size, 'VFIO_USER_VERSION', true);
  const { major, minor } = vfio_user_version.decode(body);
  if (body.byteLength === vfio_user_version.size) return { major, minor, capabilities: undefined };
  const data = body.subarray(vfio_user_version.size);
  const nul = data.indexOf(0);
  if (nul < 0) throw invalid('VFIO_USER_VERSION: capabilities have no terminating NUL');
  let capabilities: string;
  try {
    capabilities = utf8.decode(data.subarray(0, nul));
  } catch {
    throw invalid('VFIO_USER_VERSION: capabilities are not valid UTF-8');
  }
  return { major, minor, capabilities };
}

function integer(value: JsonValue, field: string, min: bigint, max: bigint, multipleOf = 1n): bigint {
  const ok = value instanceof JsonNumber && /^-?(0|[1-9][0-9]*)$/.test(value.text);
  const n = ok ? BigInt(value.text) : undefined;
  if (n === undefined || n < min || n > max || n % multipleOf !== 0n) {
    const multiple = multipleOf > 1n ? `, a multiple of ${multipleOf}` : '';
    throw invalid(`capabilities: ${field} must be an integer from ${min} to ${max}${multiple}`);
  }
  return n;
}

function boolean(value: JsonValue, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(`capabilities: ${field} must be true or false`);
  return value;
}

function object(value: JsonValue, field: string): JsonObject {
  if (!isJsonObject(value)) throw invalid(`capabilities: ${field} must be an object`);
  return value;
}

const B = capabilityBounds;

function readCapabilities(caps: JsonObject): VfioUserCapabilities {
  const out = defaultCapabilities();
  const num = (key: string, min: number, max: number, multipleOf = 1): number | undefined => {
    const v = caps.get(key);
    return v === undefined ? undefined : Number(integer(v, key, BigInt(min), BigInt(max), BigInt(multipleOf)));
  };
  out.maxMsgFds = num('max_msg_fds', 0, B.maxMsgFds) ?? out.maxMsgFds;
  out.maxDataXferSize = num('max_data_xfer_size', 1, B.maxDataXferSize) ?? out.maxDataXferSize;
  out.maxDmaMaps = num('max_dma_maps', 0, B.maxDmaMaps) ?? out.maxDmaMaps;
  const pgsizes = caps.get('pgsizes');
  if (pgsizes !== undefined) out.pgsizes = integer(pgsizes, 'pgsizes', BigInt(B.minPgsize), 2n ** 64n - 1n, BigInt(B.minPgsize));
  const writeMultiple = caps.get('write_multiple');
  if (writeMultiple !== undefined) out.writeMultiple = boolean(writeMultiple, 'write_multiple');
  const migration = caps.get('migration');
  if (migration !== undefined) {
    const m = object(migration, 'migration');
    const pgsize = m.get('pgsize');
    const maxBitmap = m.get('max_bitmap_size');
    out.migration = {
      pgsize: pgsize === undefined ? vfioUserDefaults.migrationPgsize :
        Number(integer(pgsize, 'migration.pgsize', BigInt(B.minPgsize), BigInt(B.maxMigrationPgsize), BigInt(B.minPgsize))),
      maxBitmapSize: maxBitmap === undefined ? vfioUserDefaults.maxBitmapSize :
        Number(integer(maxBitmap, 'migration.max_bitmap_size', 1n, BigInt(B.maxBitmapSize))),
    };
  }
  const twin = caps.get('twin_socket');
  if (twin !== undefined) {
    const t = object(twin, 'twin_socket');
    const supported = t.get('supported');
    const fdIndex = t.get('fd_index');
    out.twinSocket = { supported: supported === undefined ? false : boolean(supported, 'twin_socket.supported') };
    if (fdIndex !== undefined) out.twinSocket.fdIndex = Number(integer(fdIndex, 'twin_socket.fd_index', 0n, BigInt(B.maxFdIndex)));
  }
  return out;
}

/**
 * The capabilities a peer announced, with the spec's defaults for absent keys. Invalid
 * JSON, a wrong type or a value out of capabilityBounds throws EINVAL naming the field
 * (or the offset of a syntax error); the text itself is never quoted back.
 */
export function parseVersionCapabilities(json: string | undefined): VfioUserCapabilities {
  if (json === undefined) return defaultCapabilities();
  if (json.length > B.maxJsonLength) throw invalid(`capabilities: JSON is ${json.length} characters, more than ${B.maxJsonLength}`);
  const top = parseJson(json, B.maxJsonDepth, 'capabilities: JSON');
  if (!isJsonObject(top)) throw invalid('capabilities: the JSON is not an object');
  const caps = top.get('capabilities');
  return caps === undefined ? defaultCapabilities() : readCapabilities(object(caps, 'capabilities'));
}

/**
 * The JSON our side sends: every core value explicitly (QEMU assumes max_msg_fds 8,
 * not the spec's 1, when it is absent), migration and twin_socket when set. Values are
 * checked as parseVersionCapabilities checks them. Note that QEMU 10.1 refuses a server
 * above qemuVfioUserLimits (max_msg_fds 16, max_data_xfer_size 64 MiB, ...).
 */
export function formatVersionCapabilities(caps: VfioUserCapabilities): string {
  const members = [
    `"max_msg_fds":${caps.maxMsgFds}`,
    `"max_data_xfer_size":${caps.maxDataXferSize}`,
    `"pgsizes":${caps.pgsizes.toString()}`,
    `"max_dma_maps":${caps.maxDmaMaps}`,
    `"write_multiple":${caps.writeMultiple}`,
  ];
  if (caps.migration !== undefined) {
    members.push(`"migration":{"pgsize":${caps.migration.pgsize},"max_bitmap_size":${caps.migration.maxBitmapSize}}`);
  }
  if (caps.twinSocket !== undefined) {
    const fdIndex = caps.twinSocket.fdIndex === undefined ? '' : `,"fd_index":${caps.twinSocket.fdIndex}`;
    members.push(`"twin_socket":{"supported":${caps.twinSocket.supported}${fdIndex}}`);
  }
  const json = `{"capabilities":{${members.join(',')}}}`;
  parseVersionCapabilities(json); // refuses what a peer would refuse from us
  return json;
}
