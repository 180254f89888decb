// The vfio-user client against our own server in another process: `vgpu serve` (the
// daemon, on the mock kernel, serving every vGPU on <run dir>/<uuid>.sock) for the
// simgpu guest's batches with their MSI, the display's screenshot equal to the one made
// in-process, and `vgpu info`/`vgpu screenshot` of a socket; fixtures/probe-server.ts
// (attachVfioUser with the server suite's probe vendor, which DMAs by read/write where
// simgpu pins) for DMA into memory the server cannot map (DMA_READ and DMA_WRITE). And no
// fd or mapping left in the client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { createNativeSys } from '../../../src/sys/native.js';
import { pciIrq } from '../../../src/uapi/constants.js';
import { DisplayGuest, screenshotPng } from '../../../src/vendors/display/index.js';
import { SimGpuGuest } from '../../../src/vendors/simgpu/guest.js';
import { SimGpuInt, SimGpuOp } from '../../../src/vendors/simgpu/registers.js';
import { openVfioUserDevice, VfioUserDeviceHandle } from '../../../src/vfio/index.js';
import { PROBE, PROBE_CMD } from '../../vfio-user/fixtures/probe-vendor.js';
import { killDaemon, runVgpu, startDaemon } from '../../cli/cli-process.js';
import { displayWorld, memfdMappings, testUuid } from '../../vendors/display-world.js';
import { fdSnapshot, newFds, settled } from './fixtures/fds.js';
import { startServer } from './fixtures/server-process.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/probe-server.js', import.meta.url));
const SIMGPU = testUuid(0x51);
const DISPLAY = testUuid(0xd1);
const PROBE_VGPU = testUuid(0x9b);

/** `vgpu serve` with a simgpu and a display vGPU started on it; `socketOf` gives a vGPU's vfio-user socket. */
async function withDaemon(fn: (dir: string, socketOf: (uuid: string) => string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-serve-'));
  const socket = join(dir, 'vgpu.sock');
  const daemon = await startDaemon(socket, join(dir, 'defs'));
  try {
    for (const [uuid, parent, type] of [[SIMGPU, 'simgpu0', 'simgpu-0Q'], [DISPLAY, 'display0', 'display-vga']] as const) {
      const started = await runVgpu(['--socket', socket, 'start', '-u', uuid, '-p', parent, '-t', type]);
      assert.equal(started.code, 0, started.stderr);
    }
    await fn(dir, (uuid) => join(dir, `${uuid}.sock`));
  } finally {
    daemon.child.kill('SIGTERM');
    const ended = await Promise.race([daemon.exited, new Promise((resolve) => setTimeout(resolve, 5000, 'late'))]);
    if (ended === 'late') killDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The fixture server with the probe vendor's vGPU. */
async function withProbeServer(fn: (socket: string) => Promise<void>): Promise<void> {
  const server = await startServer(SCRIPT, ['{dir}', `probe0:probe-P1:${PROBE_VGPU}`]);
  try {
    const sockets = (server.log.find((e) => e['event'] === 'listening')!['sockets']) as Record<string, string>;
    await fn(sockets[PROBE_VGPU]!);
  } finally {
    await server.stop();
  }
}

/**
 * Runs `fn` until the server has let the previous client go: it notices the end of a
 * connection on its own event loop, so a connect right after a close may still meet
 * EBUSY for a moment.
 */
async function onceFree<T>(fn: () => T): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return fn();
    } catch (err) {
      if ((err as { code?: string }).code !== 'EBUSY' || tries >= 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function pixels(png: Buffer): { width: number; height: number; data: Buffer } {
  const image = PNG.sync.read(png);
  return { width: image.width, height: image.height, data: image.data };
}

test('simgpu through vfio-user: FILL, COPY, BLIT and FENCE in one batch, its MSI through an eventfd, memory the server maps by fd', () => withDaemon(async (_dir, socketOf) => {
  const before = fdSnapshot();
  const guest = SimGpuGuest.open(createNativeSys(), socketOf(SIMGPU));
  try {
    assert.ok(guest.handle instanceof VfioUserDeviceHandle);
    assert.deepEqual(guest.info, { typeId: 12, framebufferSize: 512 * 1024 * 1024, heads: 2, maxWidth: 2560, maxHeight: 1600 });
    const src = guest.allocate(2 * 4096, 0x100000n);
    const dst = guest.allocate(2 * 4096, 0x200000n);
    const fence = guest.allocate(4096, 0x300000n);
    let interrupts = 0n;
    const listener = guest.device.irqs.on(pciIrq.VFIO_PCI_MSI_IRQ_INDEX, 0, (n) => { interrupts += n; });
    const result = await guest.submit([
      { op: SimGpuOp.FILL, length: 4096, dst: src.iova, src: 0x44332211n },
      { op: SimGpuOp.COPY, length: 3000, dst: dst.iova + 100n, src: src.iova + 4n },
      { op: SimGpuOp.BLIT_TO_FB, length: 4096, dst: 0x1000n, src: src.iova },
      { op: SimGpuOp.FENCE, length: 8, dst: fence.iova, src: 0x77n },
    ]);
    listener.close();
    assert.deepEqual(result, { intStatus: SimGpuInt.DONE, completed: 4, fence: 0x77 });
    assert.ok(interrupts >= 1n);
    assert.deepEqual([...src.bytes.subarray(0, 8)], [0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x33, 0x44]);
    assert.deepEqual(dst.bytes.subarray(100, 3100), src.bytes.subarray(4, 3004));
    assert.equal(new DataView(fence.bytes.buffer).getBigUint64(0, true), 0x77n);
    const fb = guest.mapFramebuffer(0, 0x2000);
    assert.deepEqual(fb.bytes.subarray(0x1000, 0x2000), src.bytes.subarray(0, 4096), 'the blit, seen through the framebuffer\'s mmap');
  } finally {
    guest.close();
  }
  await settled();
  assert.deepEqual(newFds(before), []);
  assert.deepEqual(memfdMappings('vfio-user-dma'), [0, 0]);
}));

test('DMA into memory without an fd: the server reaches it by DMA_READ and DMA_WRITE, answered while the client waits for its own reply', () => withProbeServer(async (socket) => {
  const native = createNativeSys();
  const memory = native.allocate(2 * 4096);
  const handle = openVfioUserDevice(socket);
  try {
    const bar0 = handle.device.bar(0);
    const bytes = new Uint8Array(memory.buffer);
    bytes.set(Uint8Array.from({ length: 256 }, (_, i) => (i * 13) & 0xff), 0xf80);
    handle.dma.map({ iova: 0x40000, memory, read: true, write: true });
    // The probe reads 200 bytes across the page boundary into its DATA registers...
    bar0.write32(PROBE.ADDR_LO, 0x40f80);
    bar0.write32(PROBE.ADDR_HI, 0);
    bar0.write32(PROBE.LEN, 200);
    bar0.write32(PROBE.CMD, PROBE_CMD.READ);
    assert.equal(bar0.read32(PROBE.STATUS), 0);
    assert.deepEqual(bar0.read(PROBE.DATA, 200), bytes.subarray(0xf80, 0xf80 + 200));
    // ...and writes them back elsewhere.
    bar0.write32(PROBE.ADDR_LO, 0x40010);
    bar0.write32(PROBE.CMD, PROBE_CMD.WRITE);
    assert.equal(bar0.read32(PROBE.STATUS), 0);
    assert.deepEqual(bytes.subarray(0x10, 0x10 + 200), bytes.subarray(0xf80, 0xf80 + 200));
    // Unmapped, the same access is the device's DMA fault.
    assert.equal(handle.dma.unmap(0x40000, 2 * 4096), BigInt(2 * 4096));
    bar0.write32(PROBE.CMD, PROBE_CMD.WRITE);
    assert.equal(bar0.read32(PROBE.STATUS), 14);
  } finally {
    handle.close();
    native.munmap(memory);
  }
}));

test('simgpu pins guest memory, as an mdev driver does: memory without an fd is a DMA fault it reports', () => withDaemon(async (_dir, socketOf) => {
  const guest = SimGpuGuest.open(createNativeSys(), socketOf(SIMGPU));
  const native = createNativeSys();
  const memory = native.allocate(4096);
  try {
    guest.handle.dma.map({ iova: 0x800000, memory });
    const result = await guest.fill(0x800000n, 64, 1);
    assert.equal(result.error?.errno, 14, 'EFAULT: nothing the server could pin');
  } finally {
    guest.close();
    native.munmap(memory);
  }
}));

test('the display through vfio-user: the screenshot equals the one made in-process, pixel for pixel', () => withDaemon(async (dir, socketOf) => {
  const before = fdSnapshot();
  const guest = DisplayGuest.open(createNativeSys(), socketOf(DISPLAY));
  let remote: Buffer;
  try {
    guest.setMode(640, 480);
    guest.drawTestPattern('vfio-user');
    remote = screenshotPng(guest.device.sys, guest.device);
  } finally {
    guest.close();
  }
  // In-process: the same vGPU type on the mock kernel, drawn the same way.
  const world = displayWorld();
  let local: Buffer;
  try {
    const uuid = world.create('vga', testUuid(1));
    const inProcess = DisplayGuest.open(world.sys, uuid);
    try {
      inProcess.setMode(640, 480);
      inProcess.drawTestPattern('vfio-user');
      local = screenshotPng(world.sys, inProcess.device);
    } finally {
      inProcess.close();
    }
  } finally {
    world.close();
  }
  const [a, b] = [pixels(remote), pixels(local)];
  assert.deepEqual([a.width, a.height], [640, 480]);
  assert.ok(a.data.equals(b.data), 'the same pixels');
  // By path, as `vgpu screenshot` would: the guest has gone, the picture stays.
  const again = pixels(await onceFree(() => screenshotPng(createNativeSys(), socketOf(DISPLAY))));
  assert.ok(again.data.equals(b.data));
  // And by `vgpu screenshot SOCKET FILE.png`.
  const file = join(dir, 'shot.png');
  const run = await runVgpu(['screenshot', socketOf(DISPLAY), file]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /: 640x480 PNG of .*\.sock/);
  assert.ok(pixels(readFileSync(file)).data.equals(b.data));
  await settled();
  assert.deepEqual(newFds(before), []);
}));

test('vgpu info SOCKET reads the vGPU through the client, as it reads a group, in the vgpu process (the daemon serving it is not asked)', () => withDaemon(async (dir, socketOf) => {
  // The daemon is the socket's server: were it asked, its client would wait on itself.
  const run = await runVgpu(['--socket', join(dir, 'vgpu.sock'), 'info', socketOf(SIMGPU)]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`^${socketOf(SIMGPU).replace(/[.]/g, '\\.')}: vfio-user 0\\.\\d`));
  assert.match(run.stdout, /BAR0 4 KiB rw at offset 0x0/);
  assert.match(run.stdout, /BAR1 512 MiB rw mmap .*\(server offset 0x[0-9a-f]+, fd\)/);
  assert.match(run.stdout, /MSI: 1 vector/);
  assert.match(run.stdout, /Display controller|VGA compatible controller/);
  // The device is free again: a guest can open it.
  const guest = await onceFree(() => SimGpuGuest.open(createNativeSys(), socketOf(SIMGPU)));
  guest.close();
  const missing = await runVgpu(['info', `${dir}/none.sock`]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no vfio-user socket/);
}));
