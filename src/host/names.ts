// Validators for every name that comes from a user or from a file and ends up in a
// path: UUIDs, parent names, type ids, attribute names. Each returns the name as it
// should be used (a UUID in lower case) or throws SysError EINVAL naming the bad value,
// so nothing a user types can reach outside the definitions root or a sysfs directory.
// (mdevctl itself checks none of these: `mdevctl define -p ../x` writes outside
// /etc/mdevctl.d. We are stricter on purpose, and refuse a parent name starting with
// ".", which mdevctl accepts and lists: our listings skip dot folders.)
import { sysError, type SysError } from '../addon/errors.js';

/** The longest parent name accepted (kernel device names are far shorter). */
export const MAX_PARENT_NAME = 64;
/** The longest type id accepted ("<driver>-<name>", a sysfs directory name). */
export const MAX_TYPE_ID = 64;
/** The longest attribute name accepted (a sysfs file name). */
export const MAX_ATTR_NAME = 255;

/** mdevctl keeps its callout scripts here, beside the parent directories. */
export const RESERVED_PARENT_NAMES: readonly string[] = ['scripts.d'];

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PARENT_RE = /^[A-Za-z0-9_.:-]+$/;
const TYPE_RE = /^[A-Za-z0-9_.-]+$/;

/** A SysError EINVAL whose message is the one line a user should read. */
export function invalidName(message: string): SysError {
  const err = sysError('EINVAL', 'validate', undefined, message);
  err.message = message;
  return err;
}

/** Shows a value safely in a message: quoted, control characters escaped, long values cut. */
export function quoteName(value: string): string {
  const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
  return JSON.stringify(shown);
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalidName(`${what} must be a string, not ${value === null ? 'null' : typeof value}`);
  if (value.length === 0) throw invalidName(`${what} must not be empty`);
  return value;
}

/** Whether `value` is a UUID in the 8-4-4-4-12 form (hex digits in either case). */
export function isUuid(value: string): boolean {
  return value.length === 36 && UUID_RE.test(value);
}

/** A UUID in the 8-4-4-4-12 form, either case; returns it in lower case as mdevctl writes it. */
export function validateUuid(value: unknown): string {
  const s = requireString(value, 'a UUID');
  if (!isUuid(s)) throw invalidName(`invalid UUID ${quoteName(s)}: expected 8-4-4-4-12 hex digits, e.g. 2b5c1a34-5d6e-4f70-8a9b-0c1d2e3f4a5b`);
  return s.toLowerCase();
}

/**
 * A parent device name: a PCI address ("0000:00:02.0"), a platform or css name ("mtty",
 * "0.0.0008"), or one of our simulated parents ("simgpu0"). It becomes a directory name
 * under the definitions root and under /sys/class/mdev_bus, so it is one path component.
 */
export function validateParentName(value: unknown): string {
  const s = requireString(value, 'a parent name');
  if (s.length > MAX_PARENT_NAME) throw invalidName(`invalid parent name ${quoteName(s)}: longer than ${MAX_PARENT_NAME} characters`);
  if (s === '.' || s === '..' || !PARENT_RE.test(s)) {
    throw invalidName(`invalid parent name ${quoteName(s)}: use letters, digits and _ . : - (a PCI address like 0000:00:02.0 or a name like simgpu0)`);
  }
  // Dot folders under the root (.git, our temporary files' kin) are never listed as
  // parents, so a definition under one could be neither listed nor undefined: refuse it.
  if (s.startsWith('.')) throw invalidName(`invalid parent name ${quoteName(s)}: it must not start with "." (dot folders under the definitions root are not parents)`);
  if (RESERVED_PARENT_NAMES.includes(s)) throw invalidName(`invalid parent name ${quoteName(s)}: reserved for mdevctl's callout scripts`);
  return s;
}

/** A type id as sysfs names it under mdev_supported_types: "nvidia-63", "simgpu-4Q", "i915-GVTg_V5_4". */
export function validateTypeId(value: unknown): string {
  const s = requireString(value, 'a type id');
  if (s.length > MAX_TYPE_ID) throw invalidName(`invalid type ${quoteName(s)}: longer than ${MAX_TYPE_ID} characters`);
  if (s === '.' || s === '..' || !TYPE_RE.test(s)) {
    throw invalidName(`invalid type ${quoteName(s)}: use letters, digits and _ . - (like simgpu-4Q or nvidia-63)`);
  }
  return s;
}

/** An attribute name: a file in the device's sysfs directory, so one path component. */
export function validateAttrName(value: unknown): string {
  const s = requireString(value, 'an attribute name');
  if (s.length > MAX_ATTR_NAME) throw invalidName(`invalid attribute name ${quoteName(s)}: longer than ${MAX_ATTR_NAME} characters`);
  if (s === '.' || s === '..' || s.includes('/') || s.includes('\0')) {
    throw invalidName(`invalid attribute name ${quoteName(s)}: it must be a file name (no "/", not "." or "..")`);
  }
  return s;
}

/** An attribute value: any string without NUL (sysfs writes stop at the first NUL byte). */
export function validateAttrValue(name: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw invalidName(`attribute ${quoteName(name)}: the value must be a string, not ${value === null ? 'null' : typeof value}`);
  }
  if (value.includes('\0')) throw invalidName(`attribute ${quoteName(name)}: the value contains a NUL character`);
  return value;
}
