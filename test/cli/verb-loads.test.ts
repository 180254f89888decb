// Each verb loads what it uses and no more (issue 14: a command that answers at once):
// the definition verbs without a daemon load neither the addon, nor the vGPU core, nor
// the mock kernel, nor any package; through a daemon, list and types load its client (and
// the addon only where SO_PEERCRED must be asked) but still no host of their own. The
// command is one bundled file for the verbs that need no host (package.json "bundle:cli"):
// what it holds is read from esbuild's metafile, what each process loads besides it from
// the ES and CommonJS modules it loaded (loads/preload.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { killDaemon, vgpuJs, startDaemon, vgpuEnv, type DaemonProcess } from './cli-process.js';

/** The parts of esbuild's metafile read here. */
interface EsbuildMetafile {
  inputs: Record<string, unknown>;
  outputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>;
}

const preload = fileURLToPath(new URL('./loads/preload.js', import.meta.url));
const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));
const UUID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

/** Runs `vgpu args` (exit 0 expected) and returns the package files it loaded, relative to the package. */
function loads(dir: string, args: string[], env: NodeJS.ProcessEnv): string[] {
  const record = join(dir, `loads-${Math.random().toString(36).slice(2)}`);
  const result = spawnSync(process.execPath, ['--import', preload, vgpuJs, ...args], { env: { ...env, VGPU_TEST_LOADS: record }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 0, `vgpu ${args.join(' ')}: ${result.stderr}`);
  return readFileSync(record, 'utf8').split('\n').filter((url) => url.startsWith('file:'))
    .map((url) => fileURLToPath(url).slice(packageRoot.length)).filter((path) => !path.startsWith('dist/test/'));
}

/** What no definition verb may load: the addon, the layers below the host, the full Host, any package. */
const heavy = (path: string): boolean => path === 'dist/src/addon/addon.js' || path.startsWith('node_modules/') || path.startsWith('build/') ||
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

  it('the bundle holds no heavy module (the addon loader aside) and imports nothing at load but a few builtins', () => {
    const meta = JSON.parse(readFileSync(join(packageRoot, 'dist/src/cli/vgpu.meta.json'), 'utf8')) as EsbuildMetafile;
    const inputs = Object.keys(meta.inputs);
    for (const path of ['dist/src/cli/verbs/list.js', 'dist/src/host/definitions.js', 'dist/src/host/daemon-client.js']) assert.ok(inputs.includes(path), `${path} in ${inputs.join(' ')}`);
    // addon.js only defines addon(): nothing loads the .node file until a daemon verb calls it.
    assert.deepEqual(inputs.filter((path) => heavy(path) && path !== 'dist/src/addon/addon.js'), []);
    const imports = meta.outputs['dist/src/cli/vgpu.js']!.imports;
    const atLoad = imports.filter((i) => i.kind === 'import-statement').map((i) => i.path);
    // node:net is Node's own stdout/stderr stream on a pipe or terminal; node:module and
    // node:url load the addon (for the daemon's SO_PEERCRED) when a daemon verb asks for it.
    assert.deepEqual([...new Set(atLoad)].sort(), ['node:fs', 'node:module', 'node:net', 'node:os', 'node:path', 'node:url', 'node:util']);
  });

  it('list -d loads the bundle alone; a verb left out of it loads from the compiled tree', () => {
    const loaded = loads(dir, ['--socket', join(dir, 'none.sock'), '--root', join(dir, 'defs'), 'list', '-d'], env);
    assert.deepEqual(loaded, ['dist/src/cli/vgpu.js']);
    const start = loads(dir, ['--socket', join(dir, 'vgpu.sock'), 'start', '-p', 'simgpu0', '-t', 'simgpu-1Q'], env);
    assert.ok(start.includes('dist/src/cli/verbs/start.js'), start.join(' '));
    // The recorder sees CommonJS too: a host in this process loads the addon through bindings.
    const local = loads(dir, ['--socket', join(dir, 'none.sock'), '--root', join(dir, 'defs'), 'types'], env);
    for (const path of ['node_modules/bindings/bindings.js', 'build/Release/vfio_vgpu.node']) assert.ok(local.includes(path), `${path} in ${local.join(' ')}`);
  });

  it('a usage error from a verb of the compiled tree (a UsageError class of its own) still exits 2 with the hint', () => {
    const result = spawnSync(process.execPath, [vgpuJs, '--socket', join(dir, 'vgpu.sock'), 'info'], { env, encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stderr, "vgpu: info needs a UUID, a PCI address or a socket path\ntry 'vgpu info --help'\n");
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
    it(`${verb} through the daemon: its client alone, no addon where the file system vouches for the socket, no host of its own`, () => {
      // The daemon's client is in the bundle. The socket is ours, in a folder of ours, so
      // the file system vouches for the listener: no SO_PEERCRED, so neither bindings nor
      // the addon's .node file load (socket-owner.ts).
      const loaded = loads(dir, ['--socket', join(dir, 'vgpu.sock'), verb], env);
      assert.deepEqual(loaded, ['dist/src/cli/vgpu.js']);
    });
  }
});
