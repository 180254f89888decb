// Saving a definition from a parent and a type (`vgpu define -p -t`, or --jsonfile): the
// one implementation, used by Host and by a command's LocalHost, which answers it without
// making the parents (the addon, the mock kernel) when their type ids are known anyway.
import { sysError, type ErrnoCode, type SysError } from '../addon/errors.js';
import type { DefineRequest, DefinitionAttr } from './api.js';
import type { DefinitionStore } from './definitions.js';
import { validateAttrName, validateAttrValue, validateParentName, validateTypeId, validateUuid } from './names.js';
import { generateUuid } from '../vgpu/uuid.js';

/** A SysError whose message is the one line a user reads. */
export function hostError(code: ErrnoCode, message: string, cause?: unknown): SysError {
  const err = sysError(code, 'host', undefined, message);
  err.message = message;
  if (cause !== undefined) err.cause = cause;
  return err;
}

/** ENOENT for a type the parent does not offer, with a "did you mean" among its `ids`. */
export function noTypeError(parent: string, type: string, ids: readonly string[]): SysError {
  const near = ids.find((n) => n.toLowerCase() === type.toLowerCase());
  return hostError('ENOENT', `parent ${parent} has no type ${type}${near !== undefined ? ` (did you mean ${near}?)` : ` (types: ${ids.join(', ')})`}`);
}

/**
 * EINVAL for attributes on a parent whose vGPUs have none to write: the TypeScript vendor
 * drivers' (simulated) vGPUs have no per-device sysfs attribute, so such a definition
 * could never start. Attributes are for kernel mdev parents whose vendor driver has them.
 */
export function noAttributesError(parent: string, type: string, attrs: readonly DefinitionAttr[]): SysError {
  const names = attrs.map((a) => JSON.stringify(a.name)).join(', ');
  return hostError('EINVAL', `${type} on ${parent} takes no attributes (${names}): its vGPUs have no per-device sysfs attribute ` +
    'to write, so the definition could never start; attributes are for kernel mdev parents whose vendor driver has them');
}

/**
 * Saves the definition `request` gives by type (request.type or request.definition);
 * returns its UUID. A parent that is not here yet may be defined for (it starts when it
 * appears); one that is here must offer the type and take the attributes (`check`).
 */
export async function defineByType(store: DefinitionStore, request: DefineRequest,
  check: (parent: string, type: string, attrs: readonly DefinitionAttr[]) => void): Promise<string> {
  let uuid = request.uuid === undefined ? undefined : validateUuid(request.uuid);
  const parent = request.parent === undefined ? undefined : validateParentName(request.parent);
  const start = checkStart(request.start ?? request.definition?.start ?? 'manual');
  if (request.definition !== undefined && request.type !== undefined) throw hostError('EINVAL', 'give the type either with --type or in the JSON file, not both');
  const type = validateTypeId(request.definition?.type ?? request.type);
  const attrs = validateAttrs(request.definition?.attrs ?? request.attrs ?? []);
  if (parent === undefined) throw hostError('EINVAL', 'defining a device by type needs its parent (--parent)');
  check(parent, type, attrs);
  uuid ??= generateUuid();
  if (await store.get(parent, uuid)) throw hostError('EEXIST', `device ${uuid} is already defined on ${parent}`);
  await store.save({ uuid, parent, type, start, attrs });
  return uuid;
}

export function checkStart(value: unknown): 'auto' | 'manual' {
  if (value !== 'auto' && value !== 'manual') throw hostError('EINVAL', `start must be "auto" or "manual", not ${JSON.stringify(value)}`);
  return value;
}

export function validateAttrs(attrs: readonly DefinitionAttr[]): DefinitionAttr[] {
  if (!Array.isArray(attrs)) throw hostError('EINVAL', 'attrs must be a list');
  return attrs.map((attr: DefinitionAttr) => {
    const name = validateAttrName(attr?.name);
    return { name, value: validateAttrValue(name, attr.value) };
  });
}
