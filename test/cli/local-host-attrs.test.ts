// Without a daemon, `define` on the mock kernel answers from the simulated type ids: it
// refuses attributes on a simulated parent as the daemon's host does, and saves them for
// a parent this host does not have.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalHost } from '../../src/cli/local-host.js';

test('LocalHost define: attributes refused on simgpu0 and display0, kept for another parent', async () => {
  const saved = process.env['VGPU_SYS'];
  process.env['VGPU_SYS'] = 'mock';
  const root = mkdtempSync(join(tmpdir(), 'vgpu-local-attrs-'));
  const host = new LocalHost(root);
  try {
    const attrs = [{ name: 'note', value: 'x' }];
    await assert.rejects(host.define({ parent: 'simgpu0', type: 'simgpu-1Q', attrs }), { code: 'EINVAL', message: /^simgpu-1Q on simgpu0 takes no attributes \("note"\)/ });
    await assert.rejects(host.define({ parent: 'display0', definition: { type: 'display-xga', attrs } }), { code: 'EINVAL', message: /^display-xga on display0 takes no attributes/ });
    assert.deepEqual(await host.listDefined(), []);
    const uuid = await host.define({ parent: '0000:65:00.0', type: 'nvidia-63', attrs });
    assert.deepEqual(JSON.parse(readFileSync(join(root, '0000:65:00.0', uuid), 'utf8')), { mdev_type: 'nvidia-63', start: 'manual', attrs: [{ note: 'x' }] });
    assert.match(await host.define({ parent: 'simgpu0', type: 'simgpu-1Q', attrs: [] }), /^[0-9a-f-]{36}$/);
  } finally {
    await host.close();
    rmSync(root, { recursive: true, force: true });
    if (saved === undefined) delete process.env['VGPU_SYS'];
    else process.env['VGPU_SYS'] = saved;
  }
});
