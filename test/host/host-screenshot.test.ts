// `screenshot` through the Host: a display vGPU started by the host, drawn on by its
// user through the VFIO client, then captured by the host into a PNG whose pixels are
// exactly what the user drew (also while the user holds it open, from the vGPU's own
// video memory); and the clear errors around it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PNG } from 'pngjs';
import { createHost } from '../../src/host/host.js';
import { createMockSys } from '../../src/sys/index.js';
import { createCanvas, DisplayGuest, drawTestPattern, pixelAt } from '../../src/vendors/display/index.js';

const UUID = 'dddddddd-0000-4000-8000-000000000001';

test('host.screenshot: the PNG shows what the user drew; errors are one clear line', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vgpu-shot-'));
  const sys = createMockSys({ devices: [] });
  const host = createHost({ sys, definitionsRoot: root, report: () => {} });
  try {
    assert.ok((await host.types({ parent: 'display0' })).some((t) => t.id === 'display-vga'));
    await host.start({ uuid: UUID, parent: 'display0', type: 'display-vga' });
    await assert.rejects(host.screenshot(UUID), { code: 'ENODATA' }, 'the display is off before a mode is set');

    const user = DisplayGuest.open(sys, UUID);
    user.setMode(320, 200);
    user.drawTestPattern('host shot');
    // Held by its user, the vGPU is read from its own video memory: the same picture.
    const held = await host.screenshot(UUID);
    user.close(); // the framebuffer keeps the picture; the mode stays set

    const shot = await host.screenshot(UUID.toUpperCase());
    assert.equal(held.pngBase64, shot.pngBase64, 'the held vGPU\'s picture is the one captured through VFIO');
    assert.equal(shot.uuid, UUID);
    assert.deepEqual([shot.width, shot.height], [320, 200]);
    const image = PNG.sync.read(Buffer.from(shot.pngBase64, 'base64'));
    const want = createCanvas(320, 200);
    drawTestPattern(want, 'host shot');
    for (let y = 0; y < 200; y++) {
      for (let x = 0; x < 320; x++) {
        const at = (y * 320 + x) * 4;
        const got = (image.data[at]! << 16) | (image.data[at + 1]! << 8) | image.data[at + 2]!;
        if (got !== pixelAt(want, x, y)) assert.fail(`pixel (${x}, ${y}) is 0x${got.toString(16)}, drawn 0x${pixelAt(want, x, y).toString(16)}`);
      }
    }
    await assert.rejects(host.screenshot('dddddddd-0000-4000-8000-00000000ffff'), { code: 'ENOENT' });
    await assert.rejects(host.screenshot('not-a-uuid'), { code: 'EINVAL' });
  } finally {
    await host.close();
    rmSync(root, { recursive: true, force: true });
  }
});
