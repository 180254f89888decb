// `vgpu repl` driven a line at a time (each sent once the prompt shows): the guide, the
// host's calls, the client API on a vGPU, a one-screen summary, and an error shown with
// its code and errno; .exit ends the process with 0 and its vGPUs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { vgpuJs, vgpuEnv } from './cli-process.js';

const PROMPT = 'vgpu> ';

it('vgpu repl: guide, host calls, client objects, errors with code and errno', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-repl-'));
  const child = spawn(process.execPath, [vgpuJs, 'repl', '--root', join(dir, 'defs'), '--socket', join(dir, 'none.sock')], { env: vgpuEnv({ NO_COLOR: '1' }) });
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  try {
    const inputs = [
      'host',
      'await host.types().then((t) => t.map((x) => x.id).join(" "))',
      'const uuid = await host.start({ parent: "simgpu0", type: "simgpu-1Q" })',
      'const handle = openPciDevice(sys, uuid)',
      'handle.device.regions.get(0)',
      'handle',
      'handle.close()',
      'await host.start({ parent: "simgpu9", type: "simgpu-1Q" })',
      '.exit',
    ];
    const outputs: string[] = [];
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      buffer += s;
      while (buffer.includes(PROMPT)) {
        const at = buffer.indexOf(PROMPT);
        outputs.push(buffer.slice(0, at));
        buffer = buffer.slice(at + PROMPT.length);
        const next = inputs.shift();
        if (next !== undefined) child.stdin.write(`${next}\n`);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0);
    const [guide, hostLine, typeIds, , , region, handle, , error] = outputs;
    assert.match(guide as string, /^vgpu repl: a host of its own on the mock fd layer, parents simgpu0, display0, definitions in .*defs\n/);
    assert.ok((guide as string).split('\n').length - 1 >= 5 && (guide as string).split('\n').length - 1 <= 8, guide);
    assert.match(guide as string, /daemon {5}undefined: no daemon runs at .*none\.sock/);
    assert.match(hostLine as string, /^Host \{ fd layer mock, definitions .*defs, parents: simgpu0, display0 \}\n$/);
    assert.equal(typeIds, "'simgpu-0B simgpu-0Q simgpu-1B simgpu-1Q simgpu-2B simgpu-2Q simgpu-4Q simgpu-8Q display-vga display-xga display-hd'\n");
    assert.equal(region, 'Region BAR0 4 KiB rw at fd offset 0x0\n');
    assert.match(handle as string, /1234:5347/);
    assert.ok((handle as string).split('\n').length <= 25, `one screen: ${handle}`);
    assert.equal(error, 'Uncaught ENOENT (errno 2, host): unknown parent simgpu9 (parents: simgpu0, display0)\n');
  } finally {
    clearTimeout(killer);
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
