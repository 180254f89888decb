// Each verb loads what it uses and no more (issue 14: a command that answers at once):
// the definition verbs without a daemon load neither the addon, nor the vGPU core, nor
// the mock kernel, nor any package; through a daemon, list and types load its client and
// the addon (for SO_PEERCRED) but still no host of their own. Read from the ES modules
// each process loaded (loads/hooks.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { killDaemon, mainJs, startDaemon, vgpuEnv, type DaemonProcess } from './cli-process.js';

const preload = fileURLToPath(new URL('./loads/preload.js', import.meta.url));
const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));
const UUID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

/** Runs `vgpu args` (exit 0 expected) and returns the package files it loaded, relative to the package. */
function loads(dir: string, args: string[], env: NodeJS.ProcessEnv): string[] {
  const record = join(dir, `loads-${Math.random().toString(36).slice(2)}`);
  const result = spawnSync(process.execPath, ['--import', preload, mainJs, ...args], { env: { ...env, VGPU_TEST_LOADS: record }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 0, `vgpu ${args.join(' ')}: ${result.stderr}`);
  return readFileSync(record, 'utf8').split('\n').filter((url) => url.startsWith('file:'))
    .map((url) => fileURLToPath(url).slice(packageRoot.length)).filter((path) => !path.startsWith('dist/test/'));
}

/** What no definition verb may load: the addon, the layers below the host, the full Host, any package. */
const heavy = (path: string): boolean => path === 'dist/src/addon/addon.js' || path.startsWith('node_modules/') ||
  /^dist\/src\/(sys\/mock|vfio|device|uapi)\//.test(path) || path === 'dist/src/sys/index.js' ||
  (path.startsWith('dist/src/vgpu/') && path !== 'dist/src/vgpu/uuid.js') ||
  ['dist/src/host/host.js', 'dist/src/host/daemon.js', 'dist/src/cli/host-link.js'].includes(path);

describe('what each verb loads', () => {
  let dir: string;
  let daemon: DaemonProcess | undefined;
  const env = vgpuEnv();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vgpu-verb-loads-'));
    daemon = await startDaemon(join(dir, 'vgpu.sock'), join(dir, 'daemon-defs'));
  });
  after(() => {
    killDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the recorder sees what a verb loads', () => {
    const loaded = loads(dir, ['--socket', join(dir, 'none.sock'), '--root', join(dir, 'defs'), 'list', '-d'], env);
    for (const path of ['dist/src/cli/main.js', 'dist/src/cli/verbs/list.js', 'dist/src/host/definitions.js']) assert.ok(loaded.includes(path), `${path} in ${loaded.join(' ')}`);
  });

  const definitionVerbs: [string, string[]][] = [
    ['define -p -t', ['define', '-u', UUID, '-p', 'simgpu0', '-t', 'simgpu-1Q']],
    ['list -d', ['list', '-d']],
    ['modify -t', ['modify', '-u', UUID, '-t', 'simgpu-2Q']],
    ['modify --manual', ['modify', '-u', UUID, '-p', 'simgpu0', '--manual']],
    ['undefine', ['undefine', '-u', UUID]],
  ];
  for (const [name, args] of definitionVerbs) {
    it(`${name}, no daemon: no addon, no vGPU core, no mock kernel, no package`, () => {
      const loaded = loads(dir, ['--socket', join(dir, 'none.sock'), '--root', join(dir, 'defs'), ...args], env);
      assert.deepEqual(loaded.filter(heavy), []);
    });
  }

  for (const verb of ['list', 'types']) {
    it(`${verb} through the daemon: its client and the addon, no host of its own`, () => {
      const loaded = loads(dir, ['--socket', join(dir, 'vgpu.sock'), verb], env);
      assert.ok(loaded.includes('dist/src/host/daemon-client.js'), loaded.join(' '));
      assert.deepEqual(loaded.filter((path) => heavy(path) && path !== 'dist/src/addon/addon.js'), []);
      assert.deepEqual(loaded.filter((path) => path.startsWith('dist/src/host/definition')), []);
    });
  }
});
