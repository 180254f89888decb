// What the mdev sysfs files accept: `create` as guid_parse() after the length check,
// `remove` as kstrtoul(buf, 0).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kstrtoul, parseCreateInput } from '../../src/vgpu/mdev/sysfs-input.js';
import { generateUuid, isUuid, parseUuid } from '../../src/vgpu/uuid.js';

const U = 'c0b26072-dd1b-4340-84fe-bf338c510818';

describe('mdev sysfs input', () => {
  it('create: 36 or 37 bytes, the first 36 a UUID of either case', () => {
    assert.equal(parseCreateInput(U), U);
    assert.equal(parseCreateInput(`${U}\n`), U);
    assert.equal(parseCreateInput(U.toUpperCase()), U);
    // guid_parse() never looks at the 37th byte.
    assert.equal(parseCreateInput(`${U}x`), U);
    assert.equal(parseCreateInput(`${U}\n\n`), undefined);
    assert.equal(parseCreateInput(U.slice(0, 35)), undefined);
    assert.equal(parseCreateInput(`${U.slice(0, 35)}\n`), undefined);
    assert.equal(parseCreateInput(` ${U}`), undefined);
    assert.equal(parseCreateInput(U.replace('c', 'é')), undefined); // 36 characters, 37 bytes
    assert.equal(parseCreateInput(U.replace('c', '\0')), undefined);
    assert.equal(parseCreateInput('c0b26072dd1b434084febf338c510818xxxx'), undefined);
  });

  it('remove: kstrtoul with base 0, one trailing newline', () => {
    const cases: [string, bigint | undefined][] = [
      ['1', 1n], ['1\n', 1n], ['0', 0n], ['0\n', 0n], ['+1', 1n], ['2', 2n], ['0x1', 1n], ['0X1f', 31n],
      ['010', 8n], ['18446744073709551615', 18446744073709551615n], ['0xffffffffffffffff', 18446744073709551615n],
      ['1\0junk', 1n],
      ['', undefined], ['\n', undefined], [' 1', undefined], ['1 ', undefined], ['1\n\n', undefined], ['-1', undefined],
      ['+', undefined], ['++1', undefined], ['08', undefined], ['0x', undefined], ['0xg', undefined], ['1x', undefined],
      ['true', undefined], ['y', undefined], ['18446744073709551616', undefined], ['1.0', undefined],
    ];
    for (const [text, want] of cases) assert.equal(kstrtoul(text), want, JSON.stringify(text));
  });

  it('UUIDs: hyphens at 8, 13, 18, 23, hex digits elsewhere; generated ones are canonical', () => {
    assert.equal(isUuid(U), true);
    assert.equal(isUuid('C0B26072-DD1B-4340-84FE-BF338C510818'), true);
    assert.equal(isUuid('00000000-0000-0000-0000-000000000000'), true);
    assert.equal(isUuid(`${U}\n`), false);
    assert.equal(isUuid(U.replace(/-/g, '')), false);
    assert.equal(isUuid('c0b26072-dd1b-4340-84fe+bf338c510818'), false);
    assert.equal(isUuid(42 as unknown as string), false);
    assert.equal(parseUuid('C0B26072-DD1B-4340-84FE-BF338C510818'), U);
    const a = generateUuid();
    assert.equal(parseUuid(a), a);
    assert.notEqual(generateUuid(), a);
  });
});
