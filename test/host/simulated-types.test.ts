// The simulated parents' type ids a definition verb checks without making the parents
// (src/host/simulated-types.ts) are exactly those a mock-kernel Host derives from them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createHost } from '../../src/host/host.js';
import { DISPLAY_PARENT, SIMGPU_PARENT, simulatedTypeIds } from '../../src/host/simulated-types.js';
import { createMockSys } from '../../src/sys/index.js';

describe('simulated type ids', () => {
  it('match the mock host: its parents and each parent\'s types, in order', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vgpu-simtypes-'));
    const host = createHost({ sys: createMockSys(), definitionsRoot: root, report: () => {} });
    try {
      assert.deepEqual(host.parentNames(), [SIMGPU_PARENT, DISPLAY_PARENT]);
      for (const parent of host.parentNames()) {
        assert.deepEqual((await host.types({ parent })).map((t) => t.id), simulatedTypeIds(parent));
      }
      assert.equal(simulatedTypeIds('simgpu1'), undefined);
    } finally {
      await host.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
