// Bad migration streams over vfio-user, against real vGPUs served by `vgpu serve`: a
// corrupted, truncated or replayed stream, one from another type or another vendor, are
// refused (EINVAL) with the target left usable after a reset, and the source, stopped to
// give its stream, runs on unchanged, its user's work intact. A move with migrateDevice
// onto a vGPU of another type fails saying where, and puts everything back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSysError } from '../../../src/addon/errors.js';
import { migStates as S } from '../../../src/uapi/migration.js';
import { SimGpuGuest } from '../../../src/vendors/simgpu/guest.js';
import { SimGpuWorkload } from '../../../src/vendors/simgpu/workload.js';
import { DeviceMigration, migrateDevice, openVfioUserDevice, type VfioUserDeviceHandle } from '../../../src/vfio/index.js';
import { killDaemon, runVgpu, startDaemon, type DaemonProcess } from '../../cli/cli-process.js';
import { testUuid } from '../../vendors/display-world.js';
import { fdSnapshot, newFds, settled } from './fixtures/fds.js';

const SOURCE = testUuid(0x51);
const TARGET = testUuid(0x52);
const DISPLAY = testUuid(0xd5);
const OTHER_TYPE = testUuid(0x1b);

interface Daemon { dir: string; daemon: DaemonProcess; socketOf(uuid: string): string }

async function daemonWith(vgpus: readonly (readonly [string, string, string])[]): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-migbad-'));
  const socket = join(dir, 'vgpu.sock');
  const daemon = await startDaemon(socket, join(dir, 'defs'));
  for (const [uuid, parent, type] of vgpus) {
    const started = await runVgpu(['--socket', socket, 'start', '-u', uuid, '-p', parent, '-t', type]);
    assert.equal(started.code, 0, started.stderr);
  }
  return { dir, daemon, socketOf: (uuid) => join(dir, `${uuid}.sock`) };
}

async function stop(d: Daemon): Promise<void> {
  d.daemon.child.kill('SIGTERM');
  const ended = await Promise.race([d.daemon.exited, new Promise((resolve) => setTimeout(resolve, 5000, 'late'))]);
  if (ended === 'late') killDaemon(d.daemon);
  rmSync(d.dir, { recursive: true, force: true });
}

const control = (h: { sys: VfioUserDeviceHandle['sys']; device: VfioUserDeviceHandle['device'] }): DeviceMigration => new DeviceMigration(h.sys, h.device.fd);

/** Loads `stream` into the target: the errno of the refusal (at a write or at RESUMING -> STOP), or 'accepted'. */
function load(target: VfioUserDeviceHandle, stream: Uint8Array): string {
  const mig = control(target);
  const fd = mig.setState(S.VFIO_DEVICE_STATE_RESUMING)!;
  try {
    fd.writeAll(stream);
    mig.setState(S.VFIO_DEVICE_STATE_STOP);
    return 'accepted';
  } catch (err) {
    assert.ok(isSysError(err), String(err));
    return err.code;
  } finally {
    fd.close();
  }
}

test('bad streams are refused over vfio-user; the target stays usable and the source unchanged', async () => {
  const a = await daemonWith([[SOURCE, 'simgpu0', 'simgpu-0Q'], [TARGET, 'simgpu0', 'simgpu-0Q'], [DISPLAY, 'display0', 'display-xga']]);
  const b = await daemonWith([[OTHER_TYPE, 'simgpu0', 'simgpu-1Q']]);
  const handles: VfioUserDeviceHandle[] = [];
  const open = (socket: string): VfioUserDeviceHandle => {
    const h = openVfioUserDevice(socket);
    handles.push(h);
    return h;
  };
  const guest = SimGpuGuest.attach(openVfioUserDevice(a.socketOf(SOURCE)));
  try {
    const work = new SimGpuWorkload(guest, 4);
    await work.run(6);
    // The source gives its stream (STOP_COPY) and runs again.
    const source = control(guest.handle as VfioUserDeviceHandle);
    const fd = source.setState(S.VFIO_DEVICE_STATE_STOP_COPY)!;
    const stream = fd.drain();
    fd.close();
    source.setState(S.VFIO_DEVICE_STATE_RUNNING);
    assert.ok(stream.byteLength > 64);

    const target = open(a.socketOf(TARGET));
    const corrupted = stream.slice();
    corrupted[Math.floor(corrupted.byteLength / 2)]! ^= 0x55;
    const bad: Record<string, Uint8Array> = {
      corrupted,
      truncated: stream.subarray(0, Math.floor(stream.byteLength / 2)),
      'cut before its end record': stream.subarray(0, stream.byteLength - 24),
      replayed: Buffer.concat([stream, stream]),
      empty: new Uint8Array(0),
      'not a stream': new TextEncoder().encode('GIF89a this is not a vGPU stream at all'),
    };
    for (const [what, bytes] of Object.entries(bad)) {
      assert.equal(load(target, bytes), 'EINVAL', what);
      assert.equal(control(target).state(), S.VFIO_DEVICE_STATE_RESUMING, `${what}: the target stays in RESUMING`);
      target.device.reset();
      assert.equal(control(target).state(), S.VFIO_DEVICE_STATE_RUNNING, `${what}: a reset brings it back`);
    }
    assert.equal(load(open(b.socketOf(OTHER_TYPE)), stream), 'EINVAL', 'a stream of another type');
    assert.equal(load(open(a.socketOf(DISPLAY)), stream), 'EINVAL', 'a stream of another vendor');

    // The refused target still works: its own guest runs a workload on it.
    const other = SimGpuGuest.attach(handles.splice(handles.indexOf(target), 1)[0]!);
    try {
      const w = new SimGpuWorkload(other, 2);
      await w.run(3);
      assert.deepEqual(w.failures, []);
    } finally {
      other.close();
    }
    // The source runs on with its framebuffer and memory as they were.
    await work.run(3);
    assert.deepEqual(work.failures, []);
    assert.deepEqual(work.checkFramebuffer((offset, length) => guest.device.bar(1).read(offset, length)), []);
  } finally {
    guest.close();
    for (const h of handles) h.close();
    await Promise.all([stop(a), stop(b)]);
  }
});

test('migrateDevice onto a vGPU of another type fails saying where, the source running on and the target reset', async () => {
  const a = await daemonWith([[SOURCE, 'simgpu0', 'simgpu-0Q']]);
  const b = await daemonWith([[OTHER_TYPE, 'simgpu0', 'simgpu-1Q']]);
  const before = fdSnapshot();
  const guest = SimGpuGuest.attach(openVfioUserDevice(a.socketOf(SOURCE)));
  const target = openVfioUserDevice(b.socketOf(OTHER_TYPE));
  try {
    const work = new SimGpuWorkload(guest, 4);
    await work.run(4);
    await assert.rejects(migrateDevice(guest.device, target.device, { precopyRounds: 2 }),
      (err: unknown) => isSysError(err) && err.code === 'EINVAL' && /pre-copy round 1/.test(err.message));
    assert.equal(control(guest.handle as VfioUserDeviceHandle).state(), S.VFIO_DEVICE_STATE_RUNNING);
    assert.equal(control(target).state(), S.VFIO_DEVICE_STATE_RUNNING);
    await work.run(2);
    assert.deepEqual(work.failures, []);
    assert.deepEqual(work.checkFramebuffer((offset, length) => guest.device.bar(1).read(offset, length)), []);
    guest.close();
    target.close();
    await settled();
    assert.deepEqual(newFds(before), [], 'the failed move left no fd');
  } finally {
    guest.close();
    target.close();
    await Promise.all([stop(a), stop(b)]);
  }
});
