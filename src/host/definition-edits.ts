// Changing and removing saved definitions (`vgpu modify`, `vgpu undefine`): the one
// implementation, used by Host and by a command's LocalHost, which answers them without
// making the parents (the addon, the mock kernel) when their type ids are known anyway.
import type { Definition, DefinitionAttr, ModifyRequest } from './api.js';
import { checkStart, hostError, validateAttrs } from './define.js';
import type { DefinitionStore } from './definitions.js';
import { validateAttrName, validateAttrValue, validateParentName, validateTypeId, validateUuid } from './names.js';

/** What a host checks a definition against: the parents it has. A parent not here yet passes both. */
export interface ParentChecks {
  /** Throws (ENOENT) when `parent` is here and does not offer `type`. */
  type(parent: string, type: string): void;
  /** Throws (EINVAL) when `attrs` cannot apply to a `type` vGPU on `parent`. */
  attributes(parent: string, type: string, attrs: readonly DefinitionAttr[]): void;
}

/** The one definition of `uuid` (under `parent` when given); ENOENT for none, EINVAL for several. */
export function findDefinition(store: DefinitionStore, uuid: string, parent: string | undefined, verb: string): Definition {
  const defs = store.find(uuid).filter((d) => parent === undefined || d.parent === parent);
  if (defs.length === 0) {
    const more = verb === 'start' ? ' (give --parent and --type to start one that is not defined)' : '';
    throw hostError('ENOENT', `no definition of ${uuid}${parent === undefined ? '' : ` on ${parent}`}${more}`);
  }
  if (defs.length > 1) throw hostError('EINVAL', `${uuid} is defined on several parents (${defs.map((d) => d.parent).join(', ')}): give --parent`);
  return defs[0]!;
}

/** Applies `request` to the saved definition it names and saves it; returns the new definition. */
export async function modifyDefinition(store: DefinitionStore, request: ModifyRequest, checks: ParentChecks): Promise<Definition> {
  const uuid = validateUuid(request.uuid);
  const parent = request.parent === undefined ? undefined : validateParentName(request.parent);
  const def = findDefinition(store, uuid, parent, 'modify');
  const next: Definition = { ...def, attrs: [...def.attrs] };
  if (request.definition !== undefined) {
    if (request.type !== undefined || request.addAttr !== undefined || request.delAttr !== undefined) {
      throw hostError('EINVAL', 'a JSON file replaces the whole definition: give it alone (with --auto/--manual at most)');
    }
    next.type = validateTypeId(request.definition.type);
    next.start = checkStart(request.definition.start ?? def.start);
    next.attrs = validateAttrs(request.definition.attrs ?? []);
  }
  if (request.type !== undefined) next.type = validateTypeId(request.type);
  if (request.start !== undefined) next.start = checkStart(request.start);
  if (request.addAttr !== undefined && request.delAttr !== undefined) throw hostError('EINVAL', 'add or delete an attribute, not both at once');
  if (request.addAttr !== undefined) {
    const name = validateAttrName(request.addAttr.name);
    const value = validateAttrValue(name, request.addAttr.value);
    const index = request.addAttr.index ?? next.attrs.length;
    checkIndex(index, next.attrs.length + 1, 'add');
    next.attrs.splice(index, 0, { name, value });
  }
  if (request.delAttr !== undefined) {
    if (next.attrs.length === 0) throw hostError('EINVAL', `device ${uuid} has no attribute to delete`);
    const index = request.delAttr.index ?? next.attrs.length - 1;
    checkIndex(index, next.attrs.length, 'delete');
    next.attrs.splice(index, 1);
  }
  // A type it already had is left alone (its parent may have dropped it since).
  if (next.type !== def.type) checks.type(next.parent, next.type);
  // Attributes it already had are left to --delattr; new ones must be able to apply.
  if (request.addAttr !== undefined || request.definition !== undefined) checks.attributes(next.parent, next.type, next.attrs);
  store.save(next);
  return next;
}

/** Removes every definition of `uuid` (only under `parent` when given); returns how many. ENOENT for none. */
export async function removeDefinitions(store: DefinitionStore, uuid: string, parent?: string): Promise<number> {
  const key = validateUuid(uuid);
  const only = parent === undefined ? undefined : validateParentName(parent);
  const defs = store.find(key).filter((d) => only === undefined || d.parent === only);
  if (defs.length === 0) throw hostError('ENOENT', `no definition of ${key}${only === undefined ? '' : ` on ${only}`}`);
  for (const def of defs) store.remove(def.parent, def.uuid);
  return defs.length;
}

function checkIndex(index: unknown, limit: number, what: string): void {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= limit) {
    throw hostError('EINVAL', `cannot ${what} an attribute at index ${String(index)}: valid indexes are 0..${limit - 1}`);
  }
}
