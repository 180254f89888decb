// mdevctl's JSON, byte for byte: the definition files, `list [--defined] --dumpjson`
// and `types --dumpjson`, and the parsing of a definition (a file or --jsonfile input).
//
// What mdevctl (1.2, Rust, serde_json with preserve_order) does, and so we do:
// - Pretty printing is serde_json's: two-space indent, "key": value, `[]` for an empty
//   array; identical to JSON.stringify(value, null, 2). Files have no trailing newline;
//   the commands print the text with one newline after it (println).
// - A definition is {"mdev_type", "start", "attrs"} in that order; attrs are one-key
//   objects [{"name": "value"}] in order.
// - `list --dumpjson` is ONE object in an array: [{"PARENT": [{"UUID": {definition}}, ...],
//   "PARENT2": [...]}]; parents in byte order (a BTreeMap), devices by UUID, a parent
//   without devices left out; no devices at all gives []. With -u and exactly one device
//   it prints that device's definition alone (no wrapping), ready for a file. A live
//   device's "start" and "attrs" come from its saved definition (mdevctl 1.2).
// - `types --dumpjson` is [{"PARENT": [{"TYPE": {"available_instances", "device_api",
//   "name", "description"}}]}]: types in id order; name and description left out when
//   empty; description trimmed with its newlines turned into ", ".
// - Reading: mdev_type and start must be present; attrs may be absent or null; other
//   keys are ignored. mdevctl takes any start other than "auto" as manual; we accept only
//   "auto" and "manual" (it never writes anything else) and say so otherwise.
import type { Definition, DefinitionAttr, LiveDevice, TypeInfo } from './api.js';
import { invalidName, validateAttrName, validateAttrValue, validateTypeId } from './names.js';
import { jsonSyntaxReason, parseJsonQuietly } from './json-text.js';

/** A definition without its place: what a file or --jsonfile holds. */
export interface DefinitionBody {
  type: string;
  start: 'auto' | 'manual';
  attrs: DefinitionAttr[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** serde_json's to_string_pretty. */
export function prettyJson(value: Json): string {
  return JSON.stringify(value, null, 2);
}

/** A listed device's body: a definition's, and for a live vGPU served over vfio-user, its socket. */
type ListedBody = DefinitionBody & { vfioUserSocket?: string };

function bodyJson(body: ListedBody): Json {
  const json: { [key: string]: Json } = {
    mdev_type: body.type,
    start: body.start,
    attrs: body.attrs.map((a) => ({ [a.name]: a.value })),
  };
  // Our own key, after mdevctl's (which ignores keys it does not know, as we do).
  if (body.vfioUserSocket !== undefined) json['vfio_user_socket'] = body.vfioUserSocket;
  return json;
}

/** The exact content of <root>/<parent>/<uuid> as mdevctl writes it (no trailing newline). */
export function definitionFileText(body: DefinitionBody): string {
  return prettyJson(bodyJson(body));
}

/** Sets a key that came from data: a plain assignment of "__proto__" would not make a key. */
function setKey(target: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function typeName(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Validates a parsed definition (mdevctl's reading rules, stricter where noted above). */
export function parseDefinitionValue(value: unknown): DefinitionBody {
  const json = value as Json;
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw invalidName(`a definition must be a JSON object with "mdev_type" and "start", not ${typeName(json)}`);
  }
  const mdevType = json['mdev_type'];
  if (mdevType === undefined || mdevType === null) throw invalidName('the definition has no "mdev_type"');
  if (typeof mdevType !== 'string') throw invalidName(`"mdev_type" must be a string, not ${typeName(mdevType)}`);
  const start = json['start'];
  if (start === undefined || start === null) throw invalidName('the definition has no "start"');
  if (start !== 'auto' && start !== 'manual') {
    throw invalidName(`"start" must be "auto" or "manual", not ${JSON.stringify(start)}`);
  }
  const attrs: DefinitionAttr[] = [];
  const rawAttrs = json['attrs'];
  if (rawAttrs !== undefined && rawAttrs !== null) {
    if (!Array.isArray(rawAttrs)) throw invalidName(`"attrs" must be an array, not ${typeName(rawAttrs)}`);
    rawAttrs.forEach((attr, i) => {
      if (attr === null || typeof attr !== 'object' || Array.isArray(attr)) {
        throw invalidName(`"attrs"[${i}] must be an object like {"name": "value"}, not ${typeName(attr)}`);
      }
      const keys = Object.keys(attr);
      if (keys.length !== 1) throw invalidName(`"attrs"[${i}] must have exactly one key, not ${keys.length}`);
      const name = validateAttrName(keys[0]);
      attrs.push({ name, value: validateAttrValue(name, attr[name]) });
    });
  }
  return { type: validateTypeId(mdevType), start, attrs };
}

/** Parses a definition from text (a file, or --jsonfile input). */
export function parseDefinitionText(text: string): DefinitionBody {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // Position only: V8's message quotes the text, which may be anything a link pointed at.
    throw invalidName(`not valid JSON (${jsonSyntaxReason(err)})`);
  }
  return parseDefinitionValue(value);
}

/** Byte order, as Rust's String and Uuid comparisons (names here are ASCII). */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Listed {
  uuid: string;
  parent: string;
  body: ListedBody;
}

function listJson(items: Listed[], uuidFilter: boolean): string {
  if (uuidFilter && items.length <= 1) {
    // mdevctl prints a lone device bare, so it can be saved as a definition file.
    return items.length === 1 ? prettyJson(bodyJson(items[0].body)) : '[]';
  }
  if (items.length === 0) return '[]';
  const parents: { [parent: string]: Json } = {};
  for (const parent of [...new Set(items.map((i) => i.parent))].sort(byteOrder)) {
    setKey(parents, parent, items
      .filter((i) => i.parent === parent)
      .sort((a, b) => byteOrder(a.uuid, b.uuid))
      .map((i) => ({ [i.uuid]: bodyJson(i.body) })));
  }
  return prettyJson([parents]);
}

export interface ListJsonOptions {
  /** The list was asked for one UUID (-u): a single match prints bare, as mdevctl does. */
  uuidFilter?: boolean;
}

/** `list --defined --dumpjson` text (without the final newline). */
export function definedListJson(definitions: readonly Definition[], options: ListJsonOptions = {}): string {
  return listJson(definitions.map((d) => ({ uuid: d.uuid, parent: d.parent, body: d })), options.uuidFilter === true);
}

/**
 * `list --dumpjson` text for devices that exist now. As Debian's mdevctl 1.2 prints them,
 * a device's saved definition (same UUID, same parent) gives "start" and "attrs"; one
 * without a definition is "manual" with no attrs. (mdevctl 1.2 also takes the type from
 * the definition; we show the live type, which is what the device is.)
 */
export function liveListJson(devices: readonly LiveDevice[], options: ListJsonOptions & { definitions?: readonly Definition[] } = {}): string {
  const savedOf = (d: LiveDevice): Definition | undefined => options.definitions?.find((s) => s.uuid === d.uuid && s.parent === d.parent);
  return listJson(
    devices.map((d) => {
      const saved = savedOf(d);
      const start = saved?.start ?? (d.defined === 'auto' ? 'auto' : 'manual');
      const body: ListedBody = { type: d.type, start, attrs: saved?.attrs ?? [] };
      if (d.vfioUser) body.vfioUserSocket = d.vfioUser.socket;
      return { uuid: d.uuid, parent: d.parent, body };
    }),
    options.uuidFilter === true,
  );
}

/** mdevctl shows a multi-line description on one line. */
export function oneLineDescription(description: string): string {
  return description.trim().replace(/\n/g, ', ');
}

/**
 * `types --dumpjson` text. `parents` lists parents to show even when they offer no type
 * (mdevctl prints them with an empty array); those of `types` are always shown.
 */
export function typesJson(types: readonly TypeInfo[], parents: readonly string[] = []): string {
  const names = [...new Set([...parents, ...types.map((t) => t.parent)])].sort(byteOrder);
  if (names.length === 0) return '[]';
  const out: { [parent: string]: Json } = {};
  for (const parent of names) {
    setKey(out, parent, types
      .filter((t) => t.parent === parent)
      .sort((a, b) => byteOrder(a.id, b.id))
      .map((t) => {
        const info: { [key: string]: Json } = { available_instances: t.availableInstances, device_api: t.deviceApi };
        const name = t.name.trim();
        if (name !== '') info['name'] = name;
        const description = oneLineDescription(t.description);
        if (description !== '') info['description'] = description;
        return { [t.id]: info };
      }));
  }
  return prettyJson([out]);
}

/** Reads `list --defined --dumpjson` output back into definitions (for tests and tools). */
export function parseDefinedListJson(text: string): Definition[] {
  const value = parseJsonQuietly(text) as Json;
  if (!Array.isArray(value)) throw invalidName(`a device list must be a JSON array, not ${typeName(value)}`);
  const out: Definition[] = [];
  for (const group of value) {
    if (group === null || typeof group !== 'object' || Array.isArray(group)) throw invalidName('a device list entry must be an object of parents');
    for (const [parent, devices] of Object.entries(group)) {
      if (!Array.isArray(devices)) throw invalidName(`parent ${JSON.stringify(parent)}: devices must be an array`);
      for (const device of devices) {
        if (device === null || typeof device !== 'object' || Array.isArray(device) || Object.keys(device).length !== 1) {
          throw invalidName(`parent ${JSON.stringify(parent)}: each device must be {"UUID": {definition}}`);
        }
        const [uuid, body] = Object.entries(device)[0];
        out.push({ uuid, parent, ...parseDefinitionValue(body) });
      }
    }
  }
  return out;
}
