// Without a daemon, `modify` and `undefine` on the mock kernel answer from the definitions
// and the simulated type ids, without making the parents: every request here must end as
// it does on the full Host (same result or same error, same files left behind).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalHost } from '../../src/cli/local-host.js';
import type { HostApi, ModifyRequest } from '../../src/host/api.js';
import { createHost, type Host } from '../../src/host/host.js';
import { createMockSys } from '../../src/sys/index.js';

const SIM = '11111111-2222-4333-8444-555555555555';
const OTHER = '66666666-7777-4888-9999-aaaaaaaaaaaa';
const TWICE = 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff';

/** Every file under root with its text, so two roots can be compared. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path, `${rel}${name}/`);
      else out[`${rel}${name}`] = readFileSync(path, 'utf8');
    }
  };
  walk(root, '');
  return out;
}

/** The outcome of a call: its value, or the error's code and message. */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    return { value: await call };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return { code: e.code, message: e.message };
  }
}

async function seed(host: HostApi): Promise<void> {
  await host.define({ uuid: SIM, parent: 'simgpu0', type: 'simgpu-1Q' });
  await host.define({ uuid: OTHER, parent: '0000:65:00.0', type: 'nvidia-63', attrs: [{ name: 'note', value: 'x' }] });
  await host.define({ uuid: TWICE, parent: 'simgpu0', type: 'simgpu-2Q' });
  await host.define({ uuid: TWICE, parent: 'display0', type: 'display-xga' });
}

describe('LocalHost modify and undefine: as the full Host answers them', () => {
  const saved = process.env['VGPU_SYS'];
  const dirs: string[] = [];
  let full: Host;
  let local: LocalHost;
  let fullRoot: string;
  let localRoot: string;

  before(async () => {
    process.env['VGPU_SYS'] = 'mock';
    fullRoot = mkdtempSync(join(tmpdir(), 'vgpu-edits-full-'));
    localRoot = mkdtempSync(join(tmpdir(), 'vgpu-edits-local-'));
    dirs.push(fullRoot, localRoot);
    full = createHost({ sys: createMockSys({ devices: [] }), definitionsRoot: fullRoot });
    local = new LocalHost(localRoot);
    await seed(full);
    await seed(local);
    assert.deepEqual(snapshot(localRoot), snapshot(fullRoot));
  });

  after(async () => {
    await local.close();
    await full.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env['VGPU_SYS'];
    else process.env['VGPU_SYS'] = saved;
  });

  it('answers without making the full Host', () => {
    assert.equal((local as unknown as { host?: unknown }).host, undefined);
  });

  const modifies: [string, ModifyRequest][] = [
    ['start mode', { uuid: SIM, start: 'auto' }],
    ['a type simgpu0 offers', { uuid: SIM, type: 'simgpu-2Q' }],
    ['a type simgpu0 does not offer', { uuid: SIM, type: 'simgpu-9Z' }],
    ['a type differing only in case', { uuid: SIM, type: 'simgpu-2q' }],
    ['an attribute on a simulated parent', { uuid: SIM, addAttr: { name: 'note', value: 'y' } }],
    ['a JSON file with attributes on a simulated parent', { uuid: SIM, definition: { type: 'simgpu-1Q', attrs: [{ name: 'a', value: 'b' }] } }],
    ['a JSON file on a simulated parent', { uuid: SIM, definition: { type: 'simgpu-4Q', start: 'auto' } }],
    ['delete with none there', { uuid: SIM, delAttr: {} }],
    ['any type on a parent not here', { uuid: OTHER, type: 'nvidia-64' }],
    ['an attribute at an index on a parent not here', { uuid: OTHER, addAttr: { name: 'first', value: '1', index: 0 } }],
    ['an index past the end', { uuid: OTHER, addAttr: { name: 'late', value: '1', index: 9 } }],
    ['delete at an index', { uuid: OTHER, delAttr: { index: 1 } }],
    ['delete at a bad index', { uuid: OTHER, delAttr: { index: 5 } }],
    ['add and delete at once', { uuid: OTHER, addAttr: { name: 'a', value: 'b' }, delAttr: {} }],
    ['a JSON file beside a type', { uuid: OTHER, type: 'x', definition: { type: 'y' } }],
    ['a bad start', { uuid: OTHER, start: 'sometimes' as 'auto' }],
    ['a bad attribute name', { uuid: OTHER, addAttr: { name: '../x', value: 'b' } }],
    ['a UUID on two parents', { uuid: TWICE, start: 'auto' }],
    ['a UUID on two parents, one named', { uuid: TWICE, parent: 'display0', type: 'display-vga' }],
    ['a UUID on a parent it is not defined on', { uuid: SIM, parent: 'display0', start: 'auto' }],
    ['no definition', { uuid: '00000000-0000-4000-8000-000000000000', start: 'auto' }],
    ['not a UUID', { uuid: 'nope', start: 'auto' }],
    ['a bad parent name', { uuid: SIM, parent: '../x', start: 'auto' }],
  ];
  for (const [what, request] of modifies) {
    it(`modify: ${what}`, async () => {
      const expected = await outcome(full.modify(request));
      assert.deepEqual(await outcome(local.modify(request)), expected);
      assert.deepEqual(snapshot(localRoot), snapshot(fullRoot));
    });
  }

  const undefines: [string, string, string | undefined][] = [
    ['under a parent it is not defined on', TWICE, 'simgpu9'],
    ['a bad parent name', TWICE, '../x'],
    ['not a UUID', 'nope', undefined],
    ['under one parent of two', TWICE, 'display0'],
    ['in upper case, under every parent', SIM.toUpperCase(), undefined],
    ['gone already', SIM, undefined],
    ['the last one, its parent folder going too', OTHER, undefined],
  ];
  for (const [what, uuid, parent] of undefines) {
    it(`undefine: ${what}`, async () => {
      const expected = await outcome(full.undefine(uuid, parent));
      assert.deepEqual(await outcome(local.undefine(uuid, parent)), expected);
      assert.deepEqual(snapshot(localRoot), snapshot(fullRoot));
    });
  }

  it('made the full Host for none of them', () => {
    assert.equal((local as unknown as { host?: unknown }).host, undefined);
  });
});
