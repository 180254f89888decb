// The scripted CI session: `vgpu serve` on the mock kernel and the CLI run as a user
// runs it: types, start, list, info, define --auto, a daemon restart that brings the
// auto vGPU back, stop, undefine; then the bad inputs a new user tries. Every JSON
// output is checked field by field; every failure is one line on stderr and a non-zero
// exit, with the definitions on disk untouched.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { killDaemon, runVgpu, startDaemon, type DaemonProcess, type RunResult } from './cli-process.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const AUTO = '6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const GOOD = '0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9';
const CORRUPT = 'ffffffff-0000-4000-8000-000000000001';

const simgpuTypes: [string, number, string][] = [
  ['simgpu-0B', 16, 'GRID M60-0B'], ['simgpu-0Q', 16, 'GRID M60-0Q'], ['simgpu-1B', 8, 'GRID M60-1B'], ['simgpu-1Q', 8, 'GRID M60-1Q'],
  ['simgpu-2B', 4, 'GRID M60-2B'], ['simgpu-2Q', 4, 'GRID M60-2Q'], ['simgpu-4Q', 2, 'GRID M60-4Q'], ['simgpu-8Q', 1, 'GRID M60-8Q'],
];

/** stderr as lines, the last newline dropped. */
const lines = (text: string): string[] => text.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');

/** A failure as the brief wants it: exit 1, nothing on stdout, one `vgpu: ` line on stderr matching `pattern`. */
function assertOneLineError(result: RunResult, pattern: RegExp): void {
  assert.equal(result.code, 1, `exit code (stderr: ${result.stderr})`);
  assert.equal(result.stdout, '');
  const errLines = lines(result.stderr);
  assert.equal(errLines.length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.match(errLines[0] as string, /^vgpu: /);
  assert.match(errLines[0] as string, pattern);
}

function assertOk(result: RunResult): void {
  assert.equal(result.code, 0, `exit code (stderr: ${result.stderr})`);
  assert.equal(result.stderr, '');
}

describe('vgpu: the scripted session against the daemon on the mock kernel', { timeout: 120_000 }, () => {
  let dir: string;
  let socket: string;
  let root: string;
  let daemon: DaemonProcess | undefined;
  const vgpu = (...args: string[]): Promise<RunResult> => runVgpu(['--socket', socket, '--root', root, ...args]);
  const definitionText = (uuid: string): string => readFileSync(join(root, 'simgpu0', uuid), 'utf8');

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vgpu-session-'));
    socket = join(dir, 'run', 'vgpu.sock');
    root = join(dir, 'defs');
  });
  after(() => {
    killDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  });

  let oneOff = '';
  let autoFile = '';

  it('serve: listens on the socket, mode 0600', async () => {
    daemon = await startDaemon(socket, root);
    assert.match(daemon.stderr(), /^vgpu serve: ready: fd layer mock, definitions in .*defs, vfio-user sockets in .*run, parents: simgpu0, display0$/m);
  });

  it('serve: a second daemon on the same socket is refused', async () => {
    const second = await runVgpu(['serve', '--socket', socket, '--root', root]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /already/);
    assert.ok(existsSync(socket), 'the first daemon keeps its socket');
  });

  it('types --dumpjson: mdevctl\'s shape, field by field', async () => {
    const result = await vgpu('types', '--dumpjson');
    assertOk(result);
    const json = JSON.parse(result.stdout) as Record<string, Record<string, Record<string, unknown>>[]>[];
    assert.equal(json.length, 1);
    assert.deepEqual(Object.keys(json[0] as object).sort(), ['display0', 'simgpu0']);
    const types = (json[0] as Record<string, Record<string, Record<string, unknown>>[]>)['simgpu0'] as Record<string, Record<string, unknown>>[];
    assert.deepEqual(types.map((t) => Object.keys(t)[0]), simgpuTypes.map(([id]) => id));
    types.forEach((entry, i) => {
      const [id, available, name] = simgpuTypes[i] as [string, number, string];
      const info = entry[id] as Record<string, unknown>;
      assert.deepEqual(Object.keys(info), ['available_instances', 'device_api', 'name', 'description']);
      assert.equal(info['available_instances'], available);
      assert.equal(info['device_api'], 'vfio-pci');
      assert.equal(info['name'], name);
      assert.match(info['description'] as string, new RegExp(`max_instance=${available}$`));
    });
    assert.equal((types[3] as Record<string, Record<string, unknown>>)['simgpu-1Q']?.['description'],
      'num_heads=2, framebuffer=1024M, max_resolution=4096x2160, max_instance=8');
  });

  it('types: an aligned table', async () => {
    const result = await vgpu('types', '-p', 'simgpu0');
    assertOk(result);
    const rows = lines(result.stdout);
    assert.equal(rows.length, 1 + simgpuTypes.length);
    assert.match(rows[0] as string, /^PARENT {3}TYPE {7}AVAILABLE {2}API {7}NAME {9}DESCRIPTION$/);
    assert.match(rows[4] as string, /^simgpu0 {2}simgpu-1Q {2}8 {10}vfio-pci {2}GRID M60-1Q {2}num_heads=2/);
  });

  it('a --root other than the daemon\'s is not ignored silently: a note names both', async () => {
    const elsewhere = join(dir, 'elsewhere');
    const result = await runVgpu(['--socket', socket, '--root', elsewhere, 'list', '-d']);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, `vgpu: note: the daemon at ${socket} uses the definitions in ${root}, not ${elsewhere}\n`);
    assert.equal((await vgpu('list', '-d')).stderr, '', 'the same root: no note');
  });

  it('start -p -t: prints the generated UUID alone', async () => {
    const result = await vgpu('start', '-p', 'simgpu0', '-t', 'simgpu-1Q');
    assertOk(result);
    assert.match(result.stdout, /^[0-9a-f-]{36}\n$/);
    oneOff = result.stdout.trim();
    assert.match(oneOff, UUID);
    const types = JSON.parse((await vgpu('types', '--dumpjson')).stdout) as Record<string, Record<string, { available_instances: number }>[]>[];
    const oneQ = types[0]?.['simgpu0']?.find((t) => 'simgpu-1Q' in t);
    assert.equal(oneQ?.['simgpu-1Q']?.available_instances, 7);
  });

  it('list and list --dumpjson show it', async () => {
    const human = await vgpu('list');
    assertOk(human);
    assert.equal(human.stdout, `${oneOff} simgpu0 simgpu-1Q manual\n`);
    const json = await vgpu('list', '--dumpjson');
    assertOk(json);
    // Each vGPU is served over vfio-user beside the daemon's socket, mode 0600.
    const vfioUserSocket = join(dirname(socket), `${oneOff}.sock`);
    assert.deepEqual(JSON.parse(json.stdout), [{ simgpu0: [{ [oneOff]: { mdev_type: 'simgpu-1Q', start: 'manual', attrs: [], vfio_user_socket: vfioUserSocket } }] }]);
    assert.equal(statSync(vfioUserSocket).isSocket(), true);
    assert.equal(statSync(vfioUserSocket).mode & 0o777, 0o600);
    const verbose = await vgpu('list', '-v', '-u', oneOff);
    assert.match(verbose.stdout, /^ {2}group \d+ \(\/dev\/vfio\/\d+\), not open$/m);
    assert.match(verbose.stdout, new RegExp(`^ {2}vfio-user ${vfioUserSocket}$`, 'm'));
  });

  it('info UUID: regions, interrupts, config space, DMA', async () => {
    const result = await vgpu('info', oneOff);
    assertOk(result);
    const out = result.stdout;
    assert.match(out, new RegExp(`^${oneOff}: simgpu-1Q on simgpu0`));
    assert.match(out, /^ {2}BAR0 4 KiB/m);
    assert.match(out, /^ {2}BAR1 1 GiB rw mmap/m);
    assert.match(out, /^ {2}MSI: 1 vector/m);
    assert.match(out, /VGA compatible controller \[0300\]: Device 1234:5347/);
    assert.match(out, /^DMA mappings: /m);
  });

  it('define --auto -u: saves mdevctl\'s file, prints nothing', async () => {
    const result = await vgpu('define', '--auto', '-u', AUTO, '-p', 'simgpu0', '-t', 'simgpu-2Q');
    assertOk(result);
    assert.equal(result.stdout, '');
    autoFile = definitionText(AUTO);
    const parsed = JSON.parse(autoFile) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['mdev_type', 'start', 'attrs']);
    assert.deepEqual(parsed, { mdev_type: 'simgpu-2Q', start: 'auto', attrs: [] });
    assert.ok(autoFile.startsWith('{\n  "mdev_type": "simgpu-2Q",\n  "start": "auto",\n  "attrs": []\n}'), autoFile);
    const defined = await vgpu('list', '-d', '--dumpjson');
    assertOk(defined);
    assert.deepEqual(JSON.parse(defined.stdout), [{ simgpu0: [{ [AUTO]: { mdev_type: 'simgpu-2Q', start: 'auto', attrs: [] } }] }]);
    assert.equal((await vgpu('list', '-d')).stdout, `${AUTO} simgpu0 simgpu-2Q auto\n`);
  });

  it('start -p --jsonfile /dev/stdin: libvirt\'s way, the UUID on stdout', async () => {
    const result = await runVgpu(['--socket', socket, 'start', '-p', 'simgpu0', '--jsonfile', '/dev/stdin'],
      { input: '{"mdev_type": "simgpu-1Q", "start": "manual", "attrs": []}' });
    assertOk(result);
    const uuid = result.stdout.trim();
    assert.match(uuid, UUID);
    assert.equal((await vgpu('list', '-u', uuid)).stdout, `${uuid} simgpu0 simgpu-1Q manual\n`);
    assertOk(await vgpu('stop', '-u', uuid));
    assert.equal((await vgpu('list', '-u', uuid)).stdout, '');
  });

  it('modify --addattr/--delattr: the file follows, in mdevctl\'s shape (a kernel mdev parent\'s definition)', async () => {
    // Attributes are for kernel mdev parents whose vendor driver has them: a definition for
    // one this host does not have (it starts where that parent exists).
    const NV = 'c0ffee00-0000-4000-8000-00000000a771';
    assertOk(await vgpu('define', '-u', NV, '-p', '0000:65:00.0', '-t', 'nvidia-63'));
    const nvText = (): string => readFileSync(join(root, '0000:65:00.0', NV), 'utf8');
    const plain = nvText();
    assertOk(await vgpu('modify', '-u', NV, '--addattr', 'vgpu_params', '--value', 'frame_rate_limiter=0'));
    assertOk(await vgpu('modify', '-u', NV, '--addattr', 'lead', '--value', 'zeroth', '--index', '0'));
    assert.deepEqual(JSON.parse(nvText()), { mdev_type: 'nvidia-63', start: 'manual', attrs: [{ lead: 'zeroth' }, { vgpu_params: 'frame_rate_limiter=0' }] });
    const verbose = await vgpu('list', '-d', '-v', '-u', NV);
    assertOk(verbose);
    assert.equal(verbose.stdout, `${NV} 0000:65:00.0 nvidia-63 manual\n  Attrs:\n    @{0}: {"lead":"zeroth"}\n    @{1}: {"vgpu_params":"frame_rate_limiter=0"}\n`);
    assertOk(await vgpu('modify', '-u', NV, '--delattr', '--index', '0'));
    assertOk(await vgpu('modify', '-u', NV, '--delattr'));
    assert.equal(nvText(), plain);
    assertOk(await vgpu('undefine', '-u', NV));
  });

  it('modify --addattr on a simulated parent\'s definition: refused, the file unchanged (its vGPUs have no attribute)', async () => {
    assertOneLineError(await vgpu('modify', '-u', AUTO, '--addattr', 'note', '--value', 'first'),
      /^vgpu: simgpu-2Q on simgpu0 takes no attributes \("note"\): its vGPUs have no per-device sysfs attribute to write, so the definition could never start; attributes are for kernel mdev parents whose vendor driver has them$/);
    assert.equal(definitionText(AUTO), autoFile);
  });

  it('SIGTERM: the daemon exits 0, its socket gone, the definition intact', async () => {
    const running = daemon as DaemonProcess;
    running.child.kill('SIGTERM');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    assert.equal(existsSync(socket), false);
    assert.deepEqual(readdirSync(dirname(socket)).filter((name) => name.endsWith('.sock')), [], 'no vfio-user socket left');
    assert.equal(definitionText(AUTO), autoFile);
  });

  it('without a daemon: start and stop say how to run one', async () => {
    assertOneLineError(await vgpu('start', '-p', 'simgpu0', '-t', 'simgpu-1Q'), new RegExp(`^vgpu: no vgpu daemon runs at ${socket}; start one with \`vgpu serve\`$`));
    assertOneLineError(await vgpu('stop', '-u', AUTO), /no vgpu daemon runs at/);
    const list = await vgpu('list');
    assert.equal(list.code, 0);
    assert.equal(list.stdout, '');
    assert.match(list.stderr, /^vgpu: note: no daemon runs at .*nothing stays running\)\n$/);
    const defined = await vgpu('list', '-d');
    assertOk(defined);
    assert.equal(defined.stdout, `${AUTO} simgpu0 simgpu-2Q auto\n`);
  });

  it('restart: the auto vGPU comes back, the one-off does not', async () => {
    daemon = await startDaemon(socket, root);
    assert.match(daemon.stderr(), new RegExp(`started auto definition ${AUTO}`));
    const human = await vgpu('list');
    assertOk(human);
    assert.equal(human.stdout, `${AUTO} simgpu0 simgpu-2Q auto (defined)\n`);
    const json = await vgpu('list', '--dumpjson');
    const vfio_user_socket = join(dirname(socket), `${AUTO}.sock`);
    assert.deepEqual(JSON.parse(json.stdout), [{ simgpu0: [{ [AUTO]: { mdev_type: 'simgpu-2Q', start: 'auto', attrs: [], vfio_user_socket } }] }]);
  });

  it('bad inputs: one clear line and exit 1 each', async () => {
    assertOneLineError(await vgpu('start', '-p', 'simgpu1', '-t', 'simgpu-2Q'), /^vgpu: unknown parent simgpu1 \(parents: simgpu0, display0\)$/);
    assertOneLineError(await vgpu('start', '-p', 'SimGPU0', '-t', 'simgpu-2Q'), /did you mean simgpu0\?/);
    assertOneLineError(await vgpu('start', '-p', 'simgpu0', '-t', 'simgpu-2q'), /no type simgpu-2q \(did you mean simgpu-2Q\?\)/);
    assertOneLineError(await vgpu('start', '-p', 'simgpu0', '-t', 'simgpu-9Q'), /no type simgpu-9Q \(types: simgpu-0B,/);
    assertOneLineError(await vgpu('start', '-u', '6f1e2d3c-4b5a-4968-8776', '-p', 'simgpu0', '-t', 'simgpu-2Q'), /invalid UUID "6f1e2d3c-4b5a-4968-8776"/);
    assertOneLineError(await vgpu('define', '-u', 'x/../../etc', '-p', 'simgpu0', '-t', 'simgpu-2Q'), /invalid UUID/);
    assertOneLineError(await vgpu('start', '-u', AUTO, '-p', 'simgpu0', '-t', 'simgpu-2Q'), new RegExp(`Device already exists: ${AUTO}`));
    assertOneLineError(await vgpu('info', '11111111-2222-4333-8444-555555555555'), /11111111-2222-4333-8444-555555555555/);
    assertOneLineError(await vgpu('undefine', '-u', '11111111-2222-4333-8444-555555555555'), /no definition of 11111111-2222-4333-8444-555555555555/);
    assertOneLineError(await vgpu('start', '-p', 'simgpu0', '--jsonfile', join(dir, 'missing.json')), /cannot read --jsonfile .*missing\.json: ENOENT/);
  });

  it('no capacity: start until available_instances is 0, then one more', async () => {
    // The 2Q auto vGPU is live: fill the board with 2Qs.
    const available = async (): Promise<number> => {
      const types = JSON.parse((await vgpu('types', '-p', 'simgpu0', '--dumpjson')).stdout) as Record<string, Record<string, { available_instances: number }>[]>[];
      return types[0]?.['simgpu0']?.find((t) => 'simgpu-2Q' in t)?.['simgpu-2Q']?.available_instances ?? -1;
    };
    assert.equal(await available(), 3);
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await vgpu('start', '-p', 'simgpu0', '-t', 'simgpu-2Q');
      assertOk(result);
      made.push(result.stdout.trim());
    }
    assert.equal(await available(), 0);
    assertOneLineError(await vgpu('start', '-p', 'simgpu0', '-t', 'simgpu-2Q'), /^vgpu: No available instances of simgpu-2Q on simgpu0$/);
    for (const uuid of made) assertOk(await vgpu('stop', '-u', uuid));
    assert.equal(await available(), 3);
  });

  it('usage errors: one line and a hint, exit 2', async () => {
    for (const [args, message] of [
      [['list', '--bogus'], "vgpu: unknown option '--bogus'"],
      [['start', '-u'], 'vgpu: option --uuid needs a value'],
      [['define', '-p', 'simgpu0', '-t', 'simgpu-1Q', '--jsonfile', '/dev/null'], 'vgpu: --jsonfile cannot be used with --type'],
      [['frobnicate'], "vgpu: unknown verb 'frobnicate'; verbs: types, list, start, stop, define, undefine, modify, info, screenshot, migrate, serve, kubevirt, repl, demo"],
    ] as [string[], string][]) {
      const result = await vgpu(...args);
      assert.equal(result.code, 2, args.join(' '));
      assert.equal(result.stdout, '');
      const [first, hint, ...more] = lines(result.stderr);
      assert.equal(first, message);
      assert.match(hint as string, /^try 'vgpu( \w+)? --help'$/);
      assert.deepEqual(more, []);
    }
  });

  it('an unreadable definition: list -d names its path and still lists the others', async () => {
    assertOk(await vgpu('define', '-u', GOOD, '-p', 'simgpu0', '-t', 'simgpu-1Q'));
    mkdirSync(join(root, 'simgpu0'), { recursive: true });
    writeFileSync(join(root, 'simgpu0', CORRUPT), '{"mdev_type": "simgpu-1Q", "sta');
    const result = await vgpu('list', '-d');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, `${GOOD} simgpu0 simgpu-1Q manual\n${AUTO} simgpu0 simgpu-2Q auto\n`);
    const errLines = lines(result.stderr);
    assert.equal(errLines.length, 1, result.stderr);
    assert.match(errLines[0] as string, new RegExp(`^vgpu: unreadable definition ${join(root, 'simgpu0', CORRUPT)}: `));
    const json = await vgpu('list', '-d', '--dumpjson');
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), [{ simgpu0: [
      { [GOOD]: { mdev_type: 'simgpu-1Q', start: 'manual', attrs: [] } },
      { [AUTO]: { mdev_type: 'simgpu-2Q', start: 'auto', attrs: [] } },
    ] }]);
    // Filtered to other files, the corrupt one is not theirs to fail for; filtered to it, it is.
    const other = await vgpu('list', '-d', '-u', GOOD);
    assert.deepEqual([other.code, other.stdout, other.stderr], [0, `${GOOD} simgpu0 simgpu-1Q manual\n`, '']);
    assert.deepEqual([(await vgpu('list', '-d', '-p', 'simgpu9')).code, (await vgpu('list', '-d', '-u', CORRUPT)).code], [0, 1]);
    // Nothing was lost: the corrupt file is left for its owner, the others are whole.
    assert.equal(readFileSync(join(root, 'simgpu0', CORRUPT), 'utf8'), '{"mdev_type": "simgpu-1Q", "sta');
    assert.equal(definitionText(AUTO), autoFile);
    rmSync(join(root, 'simgpu0', CORRUPT));
    assertOk(await vgpu('undefine', '-u', GOOD));
  });

  it('stop -u and undefine -u: nothing live, nothing defined', async () => {
    assertOk(await vgpu('stop', '-u', AUTO));
    const list = await vgpu('list');
    assertOk(list);
    assert.equal(list.stdout, '');
    assert.equal(definitionText(AUTO), autoFile, 'stop keeps the definition');
    assertOk(await vgpu('undefine', '-u', AUTO));
    const defined = await vgpu('list', '-d');
    assertOk(defined);
    assert.equal(defined.stdout, '');
    const json = await vgpu('list', '-d', '--dumpjson');
    assertOk(json);
    assert.deepEqual(JSON.parse(json.stdout), []);
    assert.deepEqual(existsSync(join(root, 'simgpu0')) ? readdirSync(join(root, 'simgpu0')) : [], []);
  });

  it('SIGTERM again: exit 0', async () => {
    const running = daemon as DaemonProcess;
    running.child.kill('SIGTERM');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    assert.equal(existsSync(socket), false);
  });
});

