// `npm start` (vgpu demo) on the mock kernel: it exits 0 and shows the vGPU core's walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/vgpu.js', import.meta.url));

test('vgpu demo: types, create, open, a command batch with its MSI, remove', { timeout: 60_000 }, () => {
  const run = spawnSync(process.execPath, [main, 'demo'], { env: { ...process.env, VGPU_SYS: 'mock' }, encoding: 'utf8', timeout: 50_000 });
  assert.equal(run.stderr, '');
  assert.equal(run.status, 0);
  const out = run.stdout;
  assert.match(out, /simgpu-1Q +GRID M60-1Q +framebuffer 1024M +heads 2 +4096x2160 +available_instances 8\n/);
  assert.match(out, /still offered: simgpu-4Q 1 \(/);
  assert.match(out, /\[1234:5347\]/);
  assert.match(out, /MSI: eventfd signalled \(count 1\)\n {2}done: 4 commands completed, fence 0x2a, no error\n/);
  assert.match(out, /guest memory at iova 0x200000: 00 ee ff c0 00 ee ff c0\.\.\.; framebuffer \(BAR1 mmap\): 00 ee ff c0 00 ee ff c0\.\.\./);
  assert.match(out, /exists: false; capacity restored: simgpu-0B 16, simgpu-0Q 16, simgpu-1B 8, simgpu-1Q 8, simgpu-2B 4, simgpu-2Q 4, simgpu-4Q 2, simgpu-8Q 1\n/);
});
