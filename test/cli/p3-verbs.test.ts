// The verbs in-process against a recording fake HostApi: flags become exactly the
// requests mdevctl's semantics ask for, output is what a user (or libvirt) reads, the
// daemon/in-process choice is right, hosts are closed, and every mistake is one line.
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Definition, DefineRequest, DeviceReport, HostApi, LiveDevice, ModifyRequest, Screenshot, StartRequest, TypeInfo } from '../../src/host/api.js';
import { runCli } from '../../src/cli/cli.js';
import type { ClosableHost } from '../../src/cli/host-link.js';
import type { HostProvider } from '../../src/cli/context.js';
import { sysError } from '../../src/addon/errors.js';

const U1 = '11111111-2222-4333-8444-555555555555';
const U2 = '66666666-7777-4888-9999-aaaaaaaaaaaa';

class FakeHost implements ClosableHost {
  calls: [string, unknown][] = [];
  closed = 0;
  defs: Definition[] = [];
  live: LiveDevice[] = [];
  typeList: TypeInfo[] = [];
  undefineCount = 1;
  failWith: Error | undefined;

  private record<T>(name: string, arg: unknown, result: T): Promise<T> {
    this.calls.push([name, arg]);
    return this.failWith ? Promise.reject(this.failWith) : Promise.resolve(result);
  }
  types(filter?: { parent?: string }): Promise<TypeInfo[]> { return this.record('types', filter, this.typeList.filter((t) => !filter?.parent || t.parent === filter.parent)); }
  list(filter?: { uuid?: string; parent?: string }): Promise<LiveDevice[]> { return this.record('list', filter, this.live); }
  listDefined(filter?: { uuid?: string; parent?: string }): Promise<Definition[]> { return this.record('listDefined', filter, this.defs); }
  start(request: StartRequest): Promise<string> { return this.record('start', request, request.uuid ?? U2); }
  stop(uuid: string): Promise<void> { return this.record('stop', uuid, undefined); }
  define(request: DefineRequest): Promise<string> { return this.record('define', request, request.uuid ?? U2); }
  undefine(uuid: string, parent?: string): Promise<number> { return this.record('undefine', { uuid, parent }, this.undefineCount); }
  modify(request: ModifyRequest): Promise<Definition> { return this.record('modify', request, this.defs[0] as Definition); }
  info(target: string): Promise<DeviceReport> { return this.record('info', target, { name: target, lines: [`${target}: a device`, 'Regions:'] }); }
  shot = Buffer.alloc(0);
  screenshot(uuid: string): Promise<Screenshot> { return this.record('screenshot', uuid, { uuid, width: 1, height: 1, pngBase64: this.shot.toString('base64') }); }
  close(): void { this.closed++; }
}

interface Run {
  code: number;
  out: string[];
  err: string[];
  daemon: FakeHost;
  local: FakeHost;
  /** Where each in-process host was asked for (its root). */
  roots: string[];
  sockets: string[];
}

async function vgpu(args: string[], options: { daemon?: boolean; color?: boolean; env?: NodeJS.ProcessEnv; setup?: (daemon: FakeHost, local: FakeHost) => void } = {}): Promise<Run> {
  const daemon = new FakeHost();
  const local = new FakeHost();
  options.setup?.(daemon, local);
  const run: Run = { code: -1, out: [], err: [], daemon, local, roots: [], sockets: [] };
  const hosts: HostProvider = {
    daemon: async (socket) => { run.sockets.push(socket); return options.daemon ? daemon : undefined; },
    inProcess: (root) => { run.roots.push(root); return local; },
  };
  run.code = await runCli(args, {
    output: { out: (l = '') => run.out.push(l), err: (l = '') => run.err.push(l), color: options.color ?? false },
    hosts,
    env: options.env ?? {},
  });
  return run;
}

const api = (host: HostApi & { calls: [string, unknown][] }): [string, unknown][] => host.calls;

describe('vgpu verbs (fake host)', () => {
  it('global flags before or after the verb, then env, then the defaults', async () => {
    let r = await vgpu(['--root', '/r1', 'list', '-d']);
    assert.deepEqual(r.roots, ['/r1']);
    assert.deepEqual(r.sockets, ['/run/vfio-vgpu/vgpu.sock']);
    r = await vgpu(['list', '-d', '--root=/r2', '--socket', '/s2']);
    assert.deepEqual([r.roots, r.sockets], [['/r2'], ['/s2']]);
    r = await vgpu(['list', '-d'], { env: { VGPU_DEFINITIONS_ROOT: '/e', VGPU_SOCKET: '/es' } });
    assert.deepEqual([r.roots, r.sockets], [['/e'], ['/es']]);
    r = await vgpu(['--socket=/f', 'list', '-d'], { env: { VGPU_SOCKET: '/es' } });
    assert.deepEqual([r.roots, r.sockets], [['/etc/vfio-vgpu.d'], ['/f']]);
    r = await vgpu(['--root', 'lsmdev']);
    assert.deepEqual([r.code, r.err], [2, ["vgpu: no verb given; verbs: types, list, start, stop, define, undefine, modify, info, screenshot, migrate, serve, kubevirt, repl, demo", "try 'vgpu --help'"]]);
  });

  it('--version, --help and VERB --help print and exit 0 without a host', async () => {
    let r = await vgpu(['--version']);
    assert.deepEqual([r.code, r.out], [0, ['vgpu 0.1.0']]);
    r = await vgpu(['--help']);
    assert.equal(r.code, 0);
    assert.equal(r.out[0], 'usage: vgpu [--root DIR] [--socket PATH] VERB [flags]');
    assert.ok(r.out.some((l) => /^ {2}modify +Change a saved definition/.test(l)), r.out.join('\n'));
    r = await vgpu(['start', '-h']);
    assert.equal(r.out[0], 'usage: vgpu start [-u UUID] [-p PARENT (-t TYPE | --jsonfile FILE)]');
    assert.deepEqual([r.sockets, r.roots], [[], []]);
    r = await vgpu(['--help', 'stop']);
    assert.equal(r.out[0], 'usage: vgpu stop -u UUID [-f|--force]');
  });

  it('start -p -t: the request, the generated UUID printed alone; -u: nothing printed', async () => {
    let r = await vgpu(['start', '-p', 'simgpu0', '-t', 'simgpu-1Q'], { daemon: true });
    assert.deepEqual([r.code, r.out, r.err], [0, [U2], []]);
    assert.deepEqual(api(r.daemon), [['start', { parent: 'simgpu0', type: 'simgpu-1Q' }]]);
    assert.equal(r.daemon.closed, 1);
    r = await vgpu(['start', '--uuid', U1], { daemon: true });
    assert.deepEqual([r.code, r.out], [0, []]);
    assert.deepEqual(api(r.daemon), [['start', { uuid: U1 }]]);
  });

  it('start and stop need the daemon: one line saying how to start one', async () => {
    for (const args of [['start', '-p', 'p', '-t', 't'], ['stop', '-u', U1]]) {
      const r = await vgpu(['--socket', '/tmp/none.sock', ...args]);
      assert.deepEqual([r.code, r.out, r.err], [1, [], ['vgpu: no vgpu daemon runs at /tmp/none.sock; start one with `vgpu serve`']]);
      assert.deepEqual(r.roots, [], 'no in-process host for live verbs that must outlive the command');
    }
  });

  it('start --jsonfile: mdevctl\'s JSON read and passed as the definition', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpu-json-'));
    try {
      const file = join(dir, 'def.json');
      writeFileSync(file, JSON.stringify({ mdev_type: 'simgpu-2Q', start: 'auto', attrs: [{ a: '1' }, { b: '2' }] }));
      const r = await vgpu(['start', '-p', 'simgpu0', '--jsonfile', file], { daemon: true });
      assert.deepEqual([r.code, r.err], [0, []]);
      assert.deepEqual(api(r.daemon), [['start', { parent: 'simgpu0', definition: { type: 'simgpu-2Q', start: 'auto', attrs: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }] } }]]);
      writeFileSync(file, '{"start": "auto"');
      const bad = await vgpu(['start', '-p', 'simgpu0', '--jsonfile', file], { daemon: true });
      assert.equal(bad.code, 1);
      assert.equal(bad.err.length, 1);
      assert.match(bad.err[0] as string, new RegExp(`^vgpu: --jsonfile ${file}: not valid JSON`));
      assert.deepEqual(api(bad.daemon), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('define: -p -t -a through the definitions host; -u alone from a live vGPU needs the daemon', async () => {
    let r = await vgpu(['define', '-p', 'simgpu0', '-t', 'simgpu-1Q', '-a']);
    assert.deepEqual([r.code, r.out], [0, [U2]]);
    assert.deepEqual(api(r.local), [['define', { parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto' }]]);
    assert.equal(r.local.closed, 1);
    r = await vgpu(['define', '-u', U1, '-p', 'simgpu0', '-t', 'simgpu-1Q'], { daemon: true });
    assert.deepEqual([r.code, r.out], [0, []]);
    assert.deepEqual(api(r.daemon), [['define', { uuid: U1, parent: 'simgpu0', type: 'simgpu-1Q' }]]);
    r = await vgpu(['define', '-u', U1]);
    assert.deepEqual([r.code, r.err], [1, ['vgpu: no vgpu daemon runs at /run/vfio-vgpu/vgpu.sock; start one with `vgpu serve`']]);
    r = await vgpu(['define', '-u', U1], { daemon: true });
    assert.deepEqual(api(r.daemon), [['define', { uuid: U1 }]]);
  });

  it('modify: each flag becomes its request', async () => {
    const cases: [string[], ModifyRequest][] = [
      [['-t', 'simgpu-2Q'], { uuid: U1, type: 'simgpu-2Q' }],
      [['--auto', '-p', 'simgpu0'], { uuid: U1, parent: 'simgpu0', start: 'auto' }],
      [['-m'], { uuid: U1, start: 'manual' }],
      [['--addattr', 'x', '--value', 'y'], { uuid: U1, addAttr: { name: 'x', value: 'y' } }],
      [['--addattr', 'x', '--value', '', '--index', '2'], { uuid: U1, addAttr: { name: 'x', value: '', index: 2 } }],
      [['--delattr'], { uuid: U1, delAttr: {} }],
      [['--delattr', '--index', '0'], { uuid: U1, delAttr: { index: 0 } }],
    ];
    for (const [flags, request] of cases) {
      const r = await vgpu(['modify', '-u', U1, ...flags]);
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.err.join('\n')}`);
      assert.deepEqual(api(r.local), [['modify', request]], flags.join(' '));
    }
  });

  it('usage errors: one line and a hint, exit 2, no host touched', async () => {
    const cases: [string[], string][] = [
      [['modify', '-u', U1, '--auto', '--manual'], 'vgpu: --auto cannot be used with --manual'],
      [['modify', '-u', U1, '--value', 'v'], 'vgpu: --value goes with --addattr'],
      [['modify', '-u', U1, '--addattr', 'a'], 'vgpu: --addattr needs --value'],
      [['modify', '-u', U1, '--index', '1'], 'vgpu: --index goes with --addattr or --delattr'],
      [['modify', '-u', U1, '--delattr', '--index', '-1'], "vgpu: option --index needs a value (one starting with '-' is written --index=VALUE)"],
      [['modify', '-u', U1, '--delattr', '--index', 'one'], "vgpu: --index must be a number from 0, not 'one'"],
      [['modify', '-u', U1], 'vgpu: modify needs a change: -t, --auto, --manual, --addattr, --delattr or --jsonfile'],
      [['modify', '-t', 'x'], 'vgpu: modify needs --uuid UUID'],
      [['modify', '-u', U1, '--jsonfile', 'f', '--auto'], 'vgpu: --jsonfile cannot be used with --auto'],
      [['define', '-t', 'simgpu-1Q'], 'vgpu: define needs -p PARENT with -t'],
      [['define'], 'vgpu: define needs -p PARENT with -t TYPE or --jsonfile FILE, or -u UUID of a live vGPU'],
      [['define', '-a', '--jsonfile', 'f', '-p', 'x'], 'vgpu: --jsonfile cannot be used with --auto'],
      [['start'], 'vgpu: start needs -u UUID of a definition, or -p PARENT with -t TYPE or --jsonfile FILE'],
      [['start', '-t', 'x'], 'vgpu: start needs -p PARENT with -t'],
      [['start', '-t', 'x', '--jsonfile', 'f', '-p', 'p'], 'vgpu: --jsonfile cannot be used with --type'],
      [['stop'], 'vgpu: stop needs --uuid UUID'],
      [['undefine', '-p', 'x'], 'vgpu: undefine needs --uuid UUID'],
      [['info'], 'vgpu: info needs a UUID, a PCI address or a socket path'],
      [['list', 'extra'], "vgpu: unexpected argument 'extra'"],
      [['stop', '-u', U1, '-u', U2], 'vgpu: option --uuid given more than once'],
      [['stop', '--uuid', U1, `--uuid=${U2}`], 'vgpu: option --uuid given more than once'],
      [['--version', 'extra'], "vgpu: --version takes no arguments (got 'extra')"],
      [['list', '-x'], "vgpu: unknown option '-x'"],
      [['types', '-p'], 'vgpu: option --parent needs a value'],
      [['types', '--dumpjson=yes'], "vgpu: option '--dumpjson' does not take an argument"],
      [['--frob', 'list'], "vgpu: unknown option '--frob' (global options: --root DIR, --socket PATH, --help, --version)"],
    ];
    for (const [args, message] of cases) {
      const r = await vgpu(args, { daemon: true });
      assert.equal(r.code, 2, args.join(' '));
      assert.deepEqual(r.err, [message, args[0]?.startsWith('--') ? "try 'vgpu --help'" : `try 'vgpu ${args[0]} --help'`], args.join(' '));
      assert.deepEqual([r.out, api(r.daemon), api(r.local)], [[], [], []], args.join(' '));
    }
  });

  it('undefine: the count; none removed is an error naming the UUID', async () => {
    let r = await vgpu(['undefine', '-u', U1, '-p', 'simgpu0']);
    assert.deepEqual([r.code, api(r.local)], [0, [['undefine', { uuid: U1, parent: 'simgpu0' }]]]);
    r = await vgpu(['undefine', '-u', U1, '-p', 'simgpu0'], { setup: (_d, l) => { l.undefineCount = 0; } });
    assert.deepEqual([r.code, r.err], [1, [`vgpu: no definition of ${U1} under simgpu0`]]);
  });

  it('list: mdevctl\'s lines, one space between fields; -v attrs and groups; the in-process note on stderr', async () => {
    const setup = (d: FakeHost, l: FakeHost): void => {
      for (const h of [d, l]) {
        h.live = [{ uuid: U1, parent: 'simgpu0', type: 'simgpu-1Q', group: 3, open: true, defined: 'auto' }, { uuid: U2, parent: '0000:00:02.0', type: 'i915-GVTg_V5_4', group: 7, open: false }];
        h.defs = [{ uuid: U1, parent: 'simgpu0', type: 'simgpu-1Q', start: 'auto', attrs: [{ name: 'a', value: '1' }, { name: 'b', value: 'x y' }] }];
      }
    };
    let r = await vgpu(['list', '-v', '-p', 'simgpu0'], { daemon: true, setup });
    assert.deepEqual(api(r.daemon), [['list', { parent: 'simgpu0' }]]);
    assert.deepEqual(r.out, [
      `${U1} simgpu0 simgpu-1Q auto (defined)`,
      '  group 3 (/dev/vfio/3), open',
      `${U2} 0000:00:02.0 i915-GVTg_V5_4 manual`,
      '  group 7 (/dev/vfio/7), not open',
    ]);
    assert.deepEqual(r.err, []);
    r = await vgpu(['list', '-d', '-v', '-u', U1], { setup });
    assert.deepEqual(api(r.local), [['listDefined', { uuid: U1 }]]);
    assert.deepEqual(r.out, [`${U1} simgpu0 simgpu-1Q auto`, '  Attrs:', '    @{0}: {"a":"1"}', '    @{1}: {"b":"x y"}']);
    r = await vgpu(['list'], { setup });
    assert.equal(r.code, 0);
    assert.deepEqual(r.err, ['vgpu: note: no daemon runs at /run/vfio-vgpu/vgpu.sock; answering from a host in this process (nothing stays running)']);
    assert.equal(r.local.closed, 1);
  });

  it('types: a table; colour only when the output takes it', async () => {
    const setup = (d: FakeHost): void => {
      d.typeList = [
        { parent: 'simgpu0', id: 'simgpu-1Q', name: 'GRID M60-1Q', description: 'num_heads=2', deviceApi: 'vfio-pci', availableInstances: 8, attributes: {} },
        { parent: 'simgpu0', id: 'simgpu-8Q', name: 'GRID M60-8Q', description: 'num_heads=4', deviceApi: 'vfio-pci', availableInstances: 0, attributes: {} },
      ];
    };
    let r = await vgpu(['types'], { daemon: true, setup });
    assert.deepEqual(r.out, [
      'PARENT   TYPE       AVAILABLE  API       NAME         DESCRIPTION',
      'simgpu0  simgpu-1Q  8          vfio-pci  GRID M60-1Q  num_heads=2',
      'simgpu0  simgpu-8Q  0          vfio-pci  GRID M60-8Q  num_heads=4',
    ]);
    r = await vgpu(['types'], { daemon: true, setup, color: true });
    assert.equal(r.out[0], '\x1b[1mPARENT\x1b[0m   \x1b[1mTYPE\x1b[0m       \x1b[1mAVAILABLE\x1b[0m  \x1b[1mAPI\x1b[0m       \x1b[1mNAME\x1b[0m         \x1b[1mDESCRIPTION\x1b[0m');
    assert.equal(r.out[2], 'simgpu0  \x1b[36msimgpu-8Q\x1b[0m  \x1b[31m0\x1b[0m          vfio-pci  GRID M60-8Q  num_heads=4');
    r = await vgpu(['types', '-p', 'nope'], { daemon: true, setup: (d) => { setup(d); d.failWith = Object.assign(sysError('ENOENT', 'host'), { message: 'unknown parent nope (parents: simgpu0)' }); } });
    assert.deepEqual([r.code, r.out, r.err], [1, [], ['vgpu: unknown parent nope (parents: simgpu0)']]);
  });

  it('screenshot: the host\'s PNG written to the file; a missing file name is a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpu-cli-shot-'));
    try {
      const file = join(dir, 'shot.png');
      const r = await vgpu(['screenshot', U1, file], { daemon: true, setup: (d) => { d.shot = Buffer.from('PNG bytes'); } });
      assert.deepEqual([r.code, api(r.daemon)], [0, [['screenshot', U1]]]);
      assert.deepEqual(r.out, [`${file}: 1x1 PNG of ${U1}`]);
      assert.equal(readFileSync(file, 'utf8'), 'PNG bytes');
      const bad = await vgpu(['screenshot', U1]);
      assert.deepEqual([bad.code, bad.err[0]], [2, 'vgpu: screenshot needs a UUID or socket path and a file name']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('screenshot -: the PNG on stdout and the summary on stderr; no file named "-"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpu-cli-shot-'));
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      const bytes: Uint8Array[] = [];
      const err: string[] = [];
      const code = await runCli(['screenshot', U1, '-'], {
        output: { out: () => assert.fail('a line on stdout'), err: (l = '') => err.push(l), bytes: (d) => bytes.push(d), color: false },
        hosts: { daemon: async () => { const d = new FakeHost(); d.shot = Buffer.from('PNG bytes'); return d; }, inProcess: () => new FakeHost() },
        env: {},
      });
      assert.deepEqual([code, Buffer.concat(bytes).toString(), err], [0, 'PNG bytes', [`stdout: 1x1 PNG of ${U1}`]]);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('screenshot refuses to replace a symlink or a folder, and says write errors plainly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpu-cli-shot-'));
    try {
      const secret = join(dir, 'secret');
      writeFileSync(secret, 'keep');
      const link = join(dir, 'link.png');
      symlinkSync(secret, link);
      const shoot = (file: string) => vgpu(['screenshot', U1, file], { daemon: true, setup: (d) => { d.shot = Buffer.from('PNG bytes'); } });
      let r = await shoot(link);
      assert.deepEqual([r.code, r.err], [1, [`vgpu: will not replace ${link}: it is a symbolic link, not a regular file`]]);
      assert.equal(lstatSync(link).isSymbolicLink(), true);
      assert.equal(readFileSync(secret, 'utf8'), 'keep');
      r = await shoot(dir);
      assert.deepEqual([r.code, r.err], [1, [`vgpu: will not replace ${dir}: it is a folder, not a regular file`]]);
      const missing = join(dir, 'no-such-folder', 'shot.png');
      r = await shoot(missing);
      assert.deepEqual([r.code, r.err], [1, [`vgpu: cannot write ${missing}: its folder does not exist`]]);
      assert.deepEqual(readdirSync(dir).sort(), ['link.png', 'secret']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('info: the host\'s report as it stands', async () => {
    const r = await vgpu(['info', '0000:00:04.0'], { daemon: true });
    assert.deepEqual([r.code, r.out], [0, ['0000:00:04.0: a device', 'Regions:']]);
  });

  it('errors: the first line only; the stack only with VGPU_DEBUG=1; hosts closed', async () => {
    const failing = (d: FakeHost): void => { d.failWith = new Error('bad thing\n    at somewhere'); };
    let r = await vgpu(['stop', '-u', U1], { daemon: true, setup: failing });
    assert.deepEqual([r.code, r.err], [1, ['vgpu: bad thing']]);
    assert.equal(r.daemon.closed, 1);
    r = await vgpu(['stop', '-u', U1], { daemon: true, setup: failing, env: { VGPU_DEBUG: '1' } });
    assert.equal(r.err[0], 'vgpu: bad thing');
    assert.match(r.err[1] as string, /^Error: bad thing\n/);
  });
});
