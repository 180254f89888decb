// A daemon started with a relative --root tells its clients the absolute folder, so a
// client running elsewhere checks the daemon's definitions and not a folder of its own.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DaemonClient } from '../../src/host/daemon-client.js';
import { DefinitionStore } from '../../src/host/definitions.js';
import { createInProcessHost, definitionsRootOf, serveHost } from '../../src/cli/host-link.js';

test('a relative root is made absolute: the daemon says where its definitions really are', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-relroot-'));
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    assert.equal(new DefinitionStore('defs').root, join(dir, 'defs'));
    const host = createInProcessHost('defs');
    const daemon = await serveHost(host, join(dir, 'vgpu.sock'), () => undefined);
    try {
      process.chdir(tmpdir()); // the client runs elsewhere
      const client = await DaemonClient.connect(join(dir, 'vgpu.sock'));
      assert.equal(definitionsRootOf(client), join(dir, 'defs'));
      await client.close();
    } finally {
      await daemon.close();
    }
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});
