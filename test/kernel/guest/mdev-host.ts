// Guest phase `mdev-host`: the vgpu command on the kernel's own mdev parents (the samples
// mtty, mdpy and mbochs, loaded by /init), in this process (the Host the CLI makes when
// no daemon runs) and through `vgpu serve`; and Debian's mdevctl on the same sysfs and
// the same /etc/mdevctl.d: its `types`, `list` and `list --defined` JSON must be the
// vgpu command's byte for byte, and each tool reads and changes the other's definitions.
// Every device made here is removed again: the phases after this one share the bus.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { LocalHost } from '../../../src/cli/local-host.js';
import { isSysError, type ErrnoCode } from '../../../src/addon/errors.js';
import { killDaemon, runVgpu, startDaemon, vgpuEnv, type DaemonProcess, type RunResult } from '../../cli/cli-process.js';

const root = '/etc/mdevctl.d';
const runDir = '/run/vgpu-mdev-host';
const socket = `${runDir}/vgpu.sock`;
const env = vgpuEnv({ VGPU_SYS: 'native' });
const bus = '/sys/class/mdev_bus';
const devices = '/sys/bus/mdev/devices';

/** The three samples, one type each for the session, and every type they offer. */
const parents = { mtty: ['mtty-1', 'mtty-2'], mdpy: ['mdpy-hd', 'mdpy-vga', 'mdpy-xga'], mbochs: ['mbochs-large', 'mbochs-medium', 'mbochs-small'] };
const session: Array<[string, string]> = [['mtty', 'mtty-2'], ['mdpy', 'mdpy-vga'], ['mbochs', 'mbochs-small']];

const AUTO = '6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const THEIRS = '0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9';
const DUP = '11111111-2222-4333-8444-555555555555';

const typeFile = (parent: string, type: string, file: string): string =>
  readFileSync(`${bus}/${parent}/mdev_supported_types/${type}/${file}`, 'utf8').trim();
const available = (parent: string, type: string): number => Number(typeFile(parent, type, 'available_instances'));
const liveUuids = (): string[] => (existsSync(devices) ? readdirSync(devices).sort() : []);

function mdevctl(...args: string[]): RunResult {
  const r = spawnSync('mdevctl', args, { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** One `vgpu:` line on stderr, exit 1, nothing on stdout. */
function oneLineError(r: RunResult, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code (stdout: ${r.stdout}, stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0] as string, /^vgpu: /);
  assert.match(lines[0] as string, pattern);
}

/** Removes every mdev left (a failed case must not spoil the phases after it). */
function removeAll(): void {
  for (const uuid of liveUuids()) {
    try {
      writeFileSync(`${devices}/${uuid}/remove`, '1');
    } catch {
      // reported by the case that left it
    }
  }
}

function freshRoot(): void {
  rmSync(root, { recursive: true, force: true });
  // mdevctl refuses to run without its callout folders (Debian's package ships them).
  mkdirSync(`${root}/scripts.d/callouts`, { recursive: true });
  mkdirSync(`${root}/scripts.d/notifiers`, { recursive: true });
}

before(() => {
  assert.ok(existsSync('/usr/bin/mdevctl'), 'mdevctl is not in the guest (install Debian\'s mdevctl on the host)');
  assert.deepEqual(readdirSync(bus).sort(), Object.keys(parents).sort(), 'the samples are loaded');
  assert.deepEqual(liveUuids(), [], 'no mdev exists before this phase');
  freshRoot();
  mkdirSync(runDir, { recursive: true });
});

after(() => {
  removeAll();
  rmSync(root, { recursive: true, force: true });
});

describe('the vgpu host in this process on mtty, mdpy and mbochs', { timeout: 120_000 }, () => {
  let host: LocalHost;
  before(() => { host = new LocalHost(root); });
  after(async () => { await host.close(); removeAll(); });

  it('types: every parent and type, as sysfs reads', async () => {
    const types = await host.types();
    for (const [parent, ids] of Object.entries(parents)) {
      const mine = types.filter((t) => t.parent === parent);
      assert.deepEqual(mine.map((t) => t.id).sort(), ids);
      for (const t of mine) {
        assert.equal(t.availableInstances, available(parent, t.id));
        assert.equal(t.name, typeFile(parent, t.id, 'name'));
        assert.equal(t.deviceApi, 'vfio-pci');
      }
    }
  });

  for (const [parent, type] of session) {
    it(`start, list, info, stop: ${type} on ${parent}`, async () => {
      const before = available(parent, type);
      const uuid = await host.start({ parent, type });
      assert.ok(existsSync(`${devices}/${uuid}`), 'the kernel made the mdev');
      assert.equal(available(parent, type), before - 1);
      const [live] = await host.list({ uuid });
      assert.ok(live);
      assert.deepEqual({ ...live, group: 0 }, { uuid, parent, type, open: false, group: 0 });
      assert.ok(statSync(`/dev/vfio/${live.group}`).isCharacterDevice(), `/dev/vfio/${live.group}`);
      const info = (await host.info(uuid)).lines;
      assert.equal(info[0], `${uuid}: ${type} on ${parent}, IOMMU group ${live.group}`);
      assert.ok(info.some((l) => /BAR0 /.test(l)), info.join('\n'));
      assert.ok(info.some((l) => /Kernel driver|Control:|Status:/.test(l)), `config space decoded:\n${info.join('\n')}`);
      await host.stop(uuid);
      assert.equal(existsSync(`${devices}/${uuid}`), false);
      assert.equal(available(parent, type), before);
    });
  }

  it('define --auto, modify, undefine: mdevctl\'s file', async () => {
    await host.define({ uuid: AUTO, parent: 'mdpy', type: 'mdpy-xga', start: 'auto' });
    const file = `${root}/mdpy/${AUTO}`;
    assert.equal(readFileSync(file, 'utf8'), '{\n  "mdev_type": "mdpy-xga",\n  "start": "auto",\n  "attrs": []\n}');
    await host.modify({ uuid: AUTO, type: 'mdpy-hd', start: 'manual' });
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { mdev_type: 'mdpy-hd', start: 'manual', attrs: [] });
    assert.deepEqual(await host.listDefined(), [{ uuid: AUTO, parent: 'mdpy', type: 'mdpy-hd', start: 'manual', attrs: [] }]);
    assert.equal(await host.undefine(AUTO), 1);
    assert.equal(existsSync(file), false);
  });

  it('bad inputs: unknown parent or type, a duplicate UUID; nothing left behind', async () => {
    const fails = async (p: Promise<unknown>, code: ErrnoCode, pattern: RegExp): Promise<void> => {
      await assert.rejects(p, (err: unknown) => isSysError(err, code) && pattern.test((err as Error).message));
    };
    await fails(host.start({ parent: 'mtty0', type: 'mtty-1' }), 'ENOENT', /unknown parent mtty0/);
    await fails(host.start({ parent: 'MTTY', type: 'mtty-1' }), 'ENOENT', /did you mean mtty\?/);
    await fails(host.start({ parent: 'mtty', type: 'mtty-3' }), 'ENOENT', /parent mtty has no type mtty-3 \(types: mtty-1, mtty-2\)/);
    await host.start({ uuid: DUP, parent: 'mtty', type: 'mtty-1' });
    await fails(host.start({ uuid: DUP, parent: 'mdpy', type: 'mdpy-vga' }), 'EEXIST', new RegExp(`Device already exists: ${DUP}`));
    await host.stop(DUP);
    assert.deepEqual(liveUuids(), []);
  });

  it('no capacity: mbochs-large until available_instances is 0, then one more', async () => {
    const made: string[] = [];
    const total = available('mbochs', 'mbochs-large');
    assert.ok(total > 0);
    for (let i = 0; i < total; i++) made.push(await host.start({ parent: 'mbochs', type: 'mbochs-large' }));
    assert.equal(available('mbochs', 'mbochs-large'), 0);
    await assert.rejects(host.start({ parent: 'mbochs', type: 'mbochs-large' }),
      (err: unknown) => isSysError(err, 'EUSERS') && /^No available instances of mbochs-large on mbochs$/.test((err as Error).message));
    for (const uuid of made) await host.stop(uuid);
    assert.equal(available('mbochs', 'mbochs-large'), total);
  });

  it('close: what this host started is removed', async () => {
    const uuid = await host.start({ parent: 'mtty', type: 'mtty-1' });
    await host.close();
    assert.equal(existsSync(`${devices}/${uuid}`), false);
  });
});

describe('the vgpu command through vgpu serve, beside Debian\'s mdevctl', { timeout: 300_000 }, () => {
  let daemon: DaemonProcess | undefined;
  const vgpu = (...args: string[]): Promise<RunResult> => runVgpu(['--socket', socket, '--root', root, ...args], { env, timeoutMs: 60_000 });
  const same = async (args: string[]): Promise<string> => {
    const ours = ok(await vgpu(...args), `vgpu ${args.join(' ')}`);
    const theirs = ok(mdevctl(...args), `mdevctl ${args.join(' ')}`);
    assert.equal(ours, theirs, `vgpu and mdevctl ${args.join(' ')} differ`);
    return ours;
  };
  let oneOff = '';

  before(() => freshRoot());
  after(() => { killDaemon(daemon); removeAll(); });

  it('serve: ready on the native fd layer with the three kernel parents', async () => {
    daemon = await startDaemon(socket, root, env, 60_000);
    assert.match(daemon.stderr(), /^vgpu serve: ready: fd layer native, definitions in \/etc\/mdevctl\.d, .*parents: (mbochs|mdpy|mtty)(, (mbochs|mdpy|mtty)){2}$/m);
  });

  it('types --dumpjson: byte for byte mdevctl\'s, all parents and one', async () => {
    const json = JSON.parse(await same(['types', '--dumpjson'])) as Array<Record<string, unknown[]>>;
    assert.deepEqual(Object.keys(json[0] ?? {}), ['mbochs', 'mdpy', 'mtty']);
    await same(['types', '-p', 'mtty', '--dumpjson']);
  });

  it('start through the daemon, list --dumpjson: the same as mdevctl\'s; info reads it', async () => {
    const r = await vgpu('start', '-p', 'mtty', '-t', 'mtty-2');
    oneOff = ok(r, 'start').trim();
    assert.match(oneOff, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(r.stderr, '');
    assert.equal(ok(await vgpu('list'), 'list'), `${oneOff} mtty mtty-2 manual\n`);
    const json = await same(['list', '--dumpjson']);
    assert.deepEqual(JSON.parse(json), [{ mtty: [{ [oneOff]: { mdev_type: 'mtty-2', start: 'manual', attrs: [] } }] }]);
    const info = ok(await vgpu('info', oneOff), 'info');
    assert.match(info, new RegExp(`^${oneOff}: mtty-2 on mtty, IOMMU group \\d+\\n`));
  });

  it('mdevctl start: the vgpu command lists the device it made', async () => {
    const theirs = ok(mdevctl('start', '-p', 'mdpy', '-t', 'mdpy-vga'), 'mdevctl start').trim();
    assert.ok(existsSync(`${devices}/${theirs}`));
    const lines = ok(await vgpu('list'), 'list').split('\n').filter(Boolean).sort();
    assert.deepEqual(lines, [`${oneOff} mtty mtty-2 manual`, `${theirs} mdpy mdpy-vga manual`].sort());
    await same(['list', '--dumpjson']);
    ok(await vgpu('stop', '-u', theirs), 'vgpu stop of mdevctl\'s device');
    ok(mdevctl('stop', '-u', oneOff), 'mdevctl stop of ours');
    assert.deepEqual(liveUuids(), []);
    assert.equal(await same(['list', '--dumpjson']), '[]\n');
  });

  it('definitions: each tool reads and changes the other\'s', async () => {
    ok(await vgpu('define', '--auto', '-u', AUTO, '-p', 'mbochs', '-t', 'mbochs-small'), 'vgpu define');
    ok(mdevctl('define', '-u', THEIRS, '-p', 'mtty', '-t', 'mtty-1'), 'mdevctl define');
    const both = await same(['list', '--defined', '--dumpjson']);
    assert.deepEqual(JSON.parse(both), [{
      mbochs: [{ [AUTO]: { mdev_type: 'mbochs-small', start: 'auto', attrs: [] } }],
      mtty: [{ [THEIRS]: { mdev_type: 'mtty-1', start: 'manual', attrs: [] } }],
    }]);
    // Each changes the other's definition; the files stay mdevctl's.
    ok(await vgpu('modify', '-u', THEIRS, '--auto'), 'vgpu modify of mdevctl\'s definition');
    ok(mdevctl('modify', '-u', AUTO, '-t', 'mbochs-medium'), 'mdevctl modify of ours');
    await same(['list', '--defined', '--dumpjson']);
    assert.equal(readFileSync(`${root}/mtty/${THEIRS}`, 'utf8'), '{\n  "mdev_type": "mtty-1",\n  "start": "auto",\n  "attrs": []\n}');
    assert.equal(readFileSync(`${root}/mbochs/${AUTO}`, 'utf8'), '{\n  "mdev_type": "mbochs-medium",\n  "start": "auto",\n  "attrs": []\n}');
    // mdevctl starts the vgpu command's definition; the vgpu command stops it.
    ok(mdevctl('start', '-u', AUTO), 'mdevctl start of our definition');
    assert.equal(ok(await vgpu('list', '-u', AUTO), 'list -u'), `${AUTO} mbochs mbochs-medium auto (defined)\n`);
    await same(['list', '--dumpjson']);
    ok(await vgpu('stop', '-u', AUTO), 'stop');
  });

  it('restart: both auto definitions start with the daemon, then stop with it', async () => {
    const running = daemon as DaemonProcess;
    running.child.kill('SIGTERM');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    assert.deepEqual(liveUuids(), []);
    daemon = await startDaemon(socket, root, env, 60_000);
    assert.match(daemon.stderr(), new RegExp(`started auto definition ${AUTO}`));
    assert.match(daemon.stderr(), new RegExp(`started auto definition ${THEIRS}`));
    assert.deepEqual(liveUuids(), [THEIRS, AUTO].sort());
    const json = await same(['list', '--dumpjson']);
    assert.deepEqual(JSON.parse(json), [{
      mbochs: [{ [AUTO]: { mdev_type: 'mbochs-medium', start: 'auto', attrs: [] } }],
      mtty: [{ [THEIRS]: { mdev_type: 'mtty-1', start: 'auto', attrs: [] } }],
    }]);
  });

  it('bad inputs: one clear line and exit 1 each, nothing changed', async () => {
    const defined = await same(['list', '--defined', '--dumpjson']);
    oneLineError(await vgpu('start', '-p', 'mtty0', '-t', 'mtty-1'), /^vgpu: unknown parent mtty0 \(parents: /);
    oneLineError(await vgpu('start', '-p', 'mdpy', '-t', 'mdpy-4k'), /^vgpu: parent mdpy has no type mdpy-4k \(types: mdpy-hd, mdpy-vga, mdpy-xga\)$/);
    oneLineError(await vgpu('start', '-u', AUTO, '-p', 'mbochs', '-t', 'mbochs-small'), new RegExp(`Device already exists: ${AUTO}`));
    // mdevctl fills the type (a node start costs seconds under TCG); the daemon sees it full.
    const made: string[] = [];
    while (available('mdpy', 'mdpy-hd') > 0) made.push(ok(mdevctl('start', '-p', 'mdpy', '-t', 'mdpy-hd'), 'mdevctl start').trim());
    oneLineError(await vgpu('start', '-p', 'mdpy', '-t', 'mdpy-hd'), /^vgpu: No available instances of mdpy-hd on mdpy$/);
    for (const uuid of made) ok(mdevctl('stop', '-u', uuid), 'mdevctl stop');
    assert.equal(await same(['list', '--defined', '--dumpjson']), defined);
  });

  it('undefine: by either tool; stop with the daemon; nothing left', async () => {
    ok(await vgpu('undefine', '-u', THEIRS), 'vgpu undefine of mdevctl\'s definition');
    ok(mdevctl('undefine', '-u', AUTO), 'mdevctl undefine of ours');
    assert.equal(await same(['list', '--defined', '--dumpjson']), '[]\n');
    const running = daemon as DaemonProcess;
    running.child.kill('SIGTERM');
    assert.deepEqual(await running.exited, { code: 0, signal: null });
    assert.deepEqual(liveUuids(), [], 'the daemon removed what it started');
  });
});
