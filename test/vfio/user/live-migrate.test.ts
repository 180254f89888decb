// A live migration of a simgpu vGPU between two `vgpu serve` daemons (two processes,
// each serving its vGPUs over vfio-user), this test being the VMM with a workload in the
// guest before, during and after the move: the guest's checks pass, and the registers,
// the framebuffer and the guest memory of the source at the stop equal the target's
// after RUNNING, byte for byte. The same move between two vGPUs of the mock kernel in
// this process (the bench's baseline) keeps everything too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockSys } from '../../../src/sys/index.js';
import { liveMigrate, liveMigrateSimGpu } from '../../../src/vendors/simgpu/live-migrate.js';
import { SimGpuBoard, simgpuDriver } from '../../../src/vendors/simgpu/index.js';
import { openDevice } from '../../../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../../../src/vgpu/index.js';
import { killDaemon, runVgpu, startDaemon, type DaemonProcess } from '../../cli/cli-process.js';
import { memfdMappings, testUuid } from '../../vendors/display-world.js';
import { fdSnapshot, newFds, settled } from './fixtures/fds.js';

const UUID = testUuid(0x3e);

interface Daemon { dir: string; socket: string; daemon: DaemonProcess }

async function daemonWith(type: string | undefined): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-mig-'));
  const socket = join(dir, 'vgpu.sock');
  const daemon = await startDaemon(socket, join(dir, 'defs'));
  if (type) {
    const started = await runVgpu(['--socket', socket, 'start', '-u', UUID, '-p', 'simgpu0', '-t', type]);
    assert.equal(started.code, 0, started.stderr);
  }
  return { dir, socket, daemon };
}

async function stop(d: Daemon): Promise<void> {
  d.daemon.child.kill('SIGTERM');
  const ended = await Promise.race([d.daemon.exited, new Promise((resolve) => setTimeout(resolve, 5000, 'late'))]);
  if (ended === 'late') killDaemon(d.daemon);
  rmSync(d.dir, { recursive: true, force: true });
}

for (const busy of [true, false]) {
  test(`${busy ? 'a busy' : 'an idle'} simgpu vGPU moves between two daemons with its user's work intact`, async () => {
    const [a, b] = [await daemonWith('simgpu-0Q'), await daemonWith('simgpu-0Q')];
    try {
      const before = fdSnapshot();
      const report = await liveMigrateSimGpu(join(a.dir, `${UUID}.sock`), join(b.dir, `${UUID}.sock`), { busy, precopyRounds: 3 });
      await settled();
      assert.deepEqual(newFds(before), [], 'no fd of the move is left (data fds, memfds, sockets)');
      assert.deepEqual(memfdMappings('vfio-user-dma'), [0, 0], 'no guest memory is left mapped');
      assert.deepEqual(report.failures, []);
      assert.deepEqual(report.same, { registers: true, framebuffer: true, guestMemory: true });
      assert.equal(report.stepsBefore, 8);
      assert.equal(report.stepsAfter, 8);
      if (busy) assert.ok(report.stepsDuring > 0, 'the workload ran during pre-copy');
      else assert.equal(report.stepsDuring, 0);
      assert.ok(report.precopyBytes > 0 && report.stopCopyBytes > 0);
      assert.ok(report.downtimeMs > 0 && report.downtimeMs <= report.totalMs);
    } finally {
      await Promise.all([stop(a), stop(b)]);
    }
  });
}

test('the same move between two vGPUs on the in-process mock kernel (kernel fds, no socket)', async () => {
  const sys = createMockSys({ devices: [] });
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('simgpu', new SimGpuBoard({ framebufferSize: 2 * 1024 ** 3 }));
  const a = registry.create('simgpu0', 'simgpu-1Q').uuid;
  const b = registry.create('simgpu0', 'simgpu-1Q').uuid;
  const report = await liveMigrate(() => openDevice(sys, a), () => openDevice(sys, b), { busy: true, precopyRounds: 2 });
  assert.deepEqual(report.failures, []);
  assert.deepEqual(report.same, { registers: true, framebuffer: true, guestMemory: true });
  assert.ok(report.stepsDuring > 0);
  assert.ok(!registry.list().some((v) => v.isOpen), 'both vGPUs are closed again');
});
