// mdevctl's JSON, byte for byte against what Debian's mdevctl 1.2 printed and wrote
// (test/host/fixtures/mdevctl-1.2, see its README), and the parsing of definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Definition, LiveDevice, TypeInfo } from '../../src/host/api.js';
import {
  definedListJson, definitionFileText, liveListJson, parseDefinedListJson, parseDefinitionText, parseDefinitionValue, typesJson,
} from '../../src/host/mdevctl-json.js';

// dist/test/host -> the sources' fixtures.
const fixtures = new URL('../../../test/host/fixtures/mdevctl-1.2/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8');
/** mdevctl prints its JSON with println: the text and one newline. */
const printed = (text: string): string => `${text}\n`;

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'c0000000-0000-4000-8000-00000000000c';
const GVT = '0b000000-0000-4000-8000-00000000000b';

const captured: Definition[] = [
  // Out of order on purpose: the output sorts.
  { uuid: C, parent: 'simgpu0', type: 'simgpu-1Q', start: 'manual', attrs: [] },
  { uuid: A, parent: 'simgpu0', type: 'simgpu-4Q', start: 'auto', attrs: [{ name: 'ecc', value: 'on' }, { name: 'note', value: 'tab\tquote" back\\ é' }] },
  { uuid: GVT, parent: '0000:00:02.0', type: 'i915-GVTg_V5_4', start: 'manual', attrs: [] },
];

test('definition files: exactly the bytes mdevctl writes (key order, indent, no trailing newline)', () => {
  assert.equal(definitionFileText(captured[1]), fixture('file-attrs'));
  assert.equal(definitionFileText(captured[2]), fixture('file-manual'));
  assert.equal(fixture('file-manual'), '{\n  "mdev_type": "i915-GVTg_V5_4",\n  "start": "manual",\n  "attrs": []\n}');
});

test('definition files: what mdevctl wrote parses to the same fields', () => {
  assert.deepEqual(parseDefinitionText(fixture('file-attrs')), { type: 'simgpu-4Q', start: 'auto', attrs: captured[1].attrs });
  assert.deepEqual(parseDefinitionText(fixture('file-manual')), { type: 'i915-GVTg_V5_4', start: 'manual', attrs: [] });
});

test('list --defined --dumpjson: one object of parents in byte order, devices by UUID, as mdevctl prints', () => {
  assert.equal(printed(definedListJson(captured)), fixture('list-defined.json'));
  assert.equal(printed(definedListJson(captured.filter((d) => d.parent === 'simgpu0'))), fixture('list-defined-parent.json'));
  assert.equal(printed(definedListJson([])), '[]\n');
});

test('list --dumpjson -u: one match prints bare, none prints [], several print the whole tree', () => {
  assert.equal(printed(definedListJson([captured[1]], { uuidFilter: true })), fixture('list-defined-uuid.json'));
  assert.equal(printed(definedListJson([], { uuidFilter: true })), fixture('list-defined-none.json'));
  const twice: Definition[] = [captured[1], { ...captured[1], parent: '0000:00:02.0' }];
  const tree = JSON.parse(definedListJson(twice, { uuidFilter: true })) as unknown;
  assert.deepEqual(Object.keys((tree as Record<string, unknown>[])[0]), ['0000:00:02.0', 'simgpu0']);
});

test('list --dumpjson of live devices: start and attrs from the definition (manual and none without one), as mdevctl 1.2', () => {
  const live: LiveDevice[] = [
    { uuid: B, parent: 'simgpu0', type: 'simgpu-1Q', open: false, group: 3 },
    { uuid: A, parent: 'simgpu0', type: 'simgpu-4Q', defined: 'auto', open: true, group: 2 },
  ];
  assert.equal(printed(liveListJson(live, { definitions: captured })), fixture('list-live.json'));
  // Without the definitions at hand, LiveDevice.defined still gives "start".
  assert.match(liveListJson(live), /"aaaaaaaa-0000-4000-8000-000000000001": {\n {10}"mdev_type": "simgpu-4Q",\n {10}"start": "auto",\n {10}"attrs": \[\]/);
  // A definition under another parent is another device's.
  assert.match(liveListJson(live, { definitions: [{ ...captured[1], parent: '0000:00:02.0' }] }), /"start": "auto",\n {10}"attrs": \[\]/);
  assert.equal(liveListJson([{ ...live[1], defined: 'manual' }], { uuidFilter: true }), '{\n  "mdev_type": "simgpu-4Q",\n  "start": "manual",\n  "attrs": []\n}');
});

test('types --dumpjson: key order, name and description left out when empty, description on one line, empty parents kept', () => {
  const t = (parent: string, id: string, availableInstances: number, name: string, description: string): TypeInfo =>
    ({ parent, id, name, description, deviceApi: 'vfio-pci', availableInstances, attributes: {} });
  const types: TypeInfo[] = [
    t('simgpu0', 'simgpu-4Q', 3, 'SimGPU 4Q\n', '\n'),
    t('simgpu0', 'simgpu-1Q', 3, 'SimGPU 1Q', ''),
    t('0000:00:02.0', 'i915-GVTg_V5_8', 0, '  GVTg_V5_8  \n', ''),
    t('0000:00:02.0', 'i915-GVTg_V5_4', 2, '', 'low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n'),
  ];
  assert.equal(printed(typesJson(types, ['mtty'])), fixture('types.json'));
  assert.equal(typesJson([]), '[]');
  assert.equal(typesJson([], ['mtty']), '[\n  {\n    "mtty": []\n  }\n]');
});

test('parseDefinedListJson reads mdevctl\'s list back into definitions', () => {
  const read = parseDefinedListJson(fixture('list-defined.json'));
  assert.deepEqual(read, [captured[2], captured[1], captured[0]]);
});

test('parsing: unknown keys ignored, attrs absent or null is empty, as mdevctl', () => {
  assert.deepEqual(parseDefinitionValue({ mdev_type: 'nvidia-63', start: 'auto', comment: 'x', extra: [1] }), { type: 'nvidia-63', start: 'auto', attrs: [] });
  assert.deepEqual(parseDefinitionValue({ mdev_type: 'nvidia-63', start: 'manual', attrs: null }), { type: 'nvidia-63', start: 'manual', attrs: [] });
  // A key that is special to JavaScript objects is just a name here.
  assert.deepEqual(parseDefinitionText('{"mdev_type":"t","start":"auto","attrs":[{"__proto__":"1"}]}').attrs, [{ name: '__proto__', value: '1' }]);
});

test('parsing: every malformed definition is EINVAL with a message that says what is wrong', () => {
  const bad: [unknown, RegExp][] = [
    [[], /must be a JSON object .* not an array/],
    [null, /not null/],
    ['text', /not a string/],
    [{ start: 'auto' }, /no "mdev_type"/],
    [{ mdev_type: 'x' }, /no "start"/],
    [{ mdev_type: 7, start: 'auto' }, /"mdev_type" must be a string, not a number/],
    [{ mdev_type: 'x', start: 'sometimes' }, /"start" must be "auto" or "manual", not "sometimes"/],
    [{ mdev_type: 'x', start: 'auto', attrs: {} }, /"attrs" must be an array, not an object/],
    [{ mdev_type: 'x', start: 'auto', attrs: ['a=b'] }, /"attrs"\[0\] must be an object/],
    [{ mdev_type: 'x', start: 'auto', attrs: [{ a: '1', b: '2' }] }, /"attrs"\[0\] must have exactly one key, not 2/],
    [{ mdev_type: 'x', start: 'auto', attrs: [{}] }, /exactly one key, not 0/],
    [{ mdev_type: 'x', start: 'auto', attrs: [{ a: 1 }] }, /attribute "a": the value must be a string, not number/],
    [{ mdev_type: 'x', start: 'auto', attrs: [{ '../remove': '1' }] }, /invalid attribute name "..\/remove"/],
    [{ mdev_type: '../../etc', start: 'auto' }, /invalid type "..\/..\/etc"/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => parseDefinitionValue(value), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EINVAL');
      assert.equal(err.errno, 22);
      assert.match(err.message, message);
      return true;
    }, JSON.stringify(value));
  }
  assert.throws(() => parseDefinitionText('{"mdev_type": "x", "start": '), { code: 'EINVAL', message: /^not valid JSON \((unexpected end of input|at position \d+)\)$/ });
  assert.throws(() => parseDefinitionText(''), { code: 'EINVAL', message: /^not valid JSON \((unexpected end of input|at position \d+)\)$/ });
});
