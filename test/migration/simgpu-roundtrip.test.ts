// simgpu vGPUs migrated through the mock kernel's VFIO migration v2, as a VMM moves them:
// guest memory (copied by the VMM, the pages the device dirtied found by DMA logging),
// the framebuffer and the registers end up byte for byte the source's; a command in
// flight carries on on the destination with its pins taken again there; an 8 GiB
// framebuffer streams only what was written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimGpuGuest, type GuestBuffer } from '../../src/vendors/simgpu/guest.js';
import type { SimGpuVgpu } from '../../src/vendors/simgpu/vgpu.js';
import { SimGpuReg } from '../../src/vendors/simgpu/registers.js';
import { DeviceMigration } from '../../src/vfio/migration.js';
import { migStates as S } from '../../src/uapi/migration.js';
import { simgpuWorld, testUuid, type SimGpuWorld } from '../vendors/simgpu-world.js';
import { load, save } from './migrate.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BUF = 0x2000_0000n;

function model(world: SimGpuWorld, uuid: string): SimGpuVgpu {
  return world.devices.get(uuid)!.model as SimGpuVgpu;
}

/** The guest's ring (the VMM copies all guest RAM, the ring included). */
function ringOf(g: SimGpuGuest): GuestBuffer {
  return (g as unknown as { ring: GuestBuffer }).ring;
}

function registers(g: SimGpuGuest): number[] {
  const out: number[] = [];
  for (let at = 0; at <= SimGpuReg.PROGRESS; at += 4) if (at !== SimGpuReg.DOORBELL) out.push(g.bar0.read32(at));
  return out;
}

function framebufferBytes(world: SimGpuWorld, uuid: string, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  model(world, uuid).framebuffer.read(offset, out);
  return out;
}

test('simgpu: guest memory, framebuffer and registers arrive byte for byte; the destination keeps working', async () => {
  // iova_bitmap built (CONFIG_IOMMUFD_DRIVER): DMA_LOGGING_REPORT reports (Debian's 6.12 is built without).
  const world = simgpuWorld([{ framebufferSize: 1 * GiB }], { kernel: '6.12', iommufdDriver: true });
  const a = world.create('0B', testUuid(1));
  const b = world.create('0B', testUuid(2));
  const src = SimGpuGuest.open(world.sys, a);
  const dst = SimGpuGuest.open(world.sys, b);
  try {
    const sbuf = src.allocate(256 * 1024, BUF);
    const dbuf = dst.allocate(256 * 1024, BUF);
    const mig = new DeviceMigration(world.sys, src.device.fd);
    const page = mig.startLogging([{ iova: BUF, length: 256n * 1024n }, { iova: 0x1000_0000n, length: 1n << 20n }], 4096n);
    assert.equal(page, 4096n);
    sbuf.bytes.fill(0x5a, 0, 4096);
    assert.equal((await src.fill(BUF + 0x8000n, 0x3000, 0xc0ffee01)).completed, 1);
    assert.equal((await src.blitToFramebuffer(3 * MiB + 123, BUF, 8000)).completed, 2);
    assert.equal((await src.fence(BUF + 0x20000n, 0x1234_5678_9abcn)).fence, 0x5678_9abc);
    // The device's DMA writes, as DMA logging reports them: the FILL's three pages and the FENCE's one.
    const bitmap = mig.report(BUF, 256n * 1024n, 4096n);
    const dirty = [...Array(64).keys()].filter((i) => (bitmap[i >> 3]! >> (i & 7)) & 1);
    assert.deepEqual(dirty, [8, 9, 10, 32]);
    assert.equal(mig.report(BUF, 256n * 1024n, 4096n).some((x) => x !== 0), false, 'a report clears what it reported');
    mig.stopLogging();

    const before = registers(src);
    const run = save(world.sys, src.device.fd);
    // The VMM's part: guest RAM goes across.
    dbuf.bytes.set(sbuf.bytes);
    ringOf(dst).bytes.set(ringOf(src).bytes);
    load(world.sys, dst.device.fd, run.stream);

    assert.deepEqual(registers(dst), before, 'registers');
    assert.deepEqual(dbuf.bytes, sbuf.bytes, 'guest memory');
    assert.deepEqual(framebufferBytes(world, b, 3 * MiB, 16384), framebufferBytes(world, a, 3 * MiB, 16384), 'framebuffer');
    assert.ok(run.stream.byteLength < 256 * 1024, `only what was written travels (${run.stream.byteLength} bytes)`);
    // The source stays stopped and unchanged.
    assert.equal(mig.state(), S.VFIO_DEVICE_STATE_STOP);
    assert.deepEqual(registers(src), before);

    // The destination carries on from there.
    const next = await dst.fill(BUF + 0x30000n, 4096, 0x11223344);
    assert.equal(next.completed, 4);
    assert.equal(new DataView(dbuf.bytes.buffer, dbuf.bytes.byteOffset + 0x30000).getUint32(0, true), 0x11223344);
  } finally {
    src.close();
    dst.close();
    world.close();
  }
});

test('simgpu: a command in flight moves with its progress; its pins are taken again on the destination', async () => {
  const world = simgpuWorld([{ framebufferSize: 1 * GiB, bytesPerStep: 4096 }], { kernel: '6.12' });
  const a = world.create('0B', testUuid(3));
  const b = world.create('0B', testUuid(4));
  const src = SimGpuGuest.open(world.sys, a);
  const dst = SimGpuGuest.open(world.sys, b);
  try {
    const sbuf = src.allocate(1 * MiB, BUF);
    const dbuf = dst.allocate(1 * MiB, BUF);
    let progress = 0;
    let migrated = (): void => {};
    const migration = new Promise<void>((resolve) => { migrated = resolve; });
    const srcDone = src.submit([{ op: 1, length: 1 * MiB, dst: BUF, src: 0xababababn }], {
      whileRunning: () => {
        const run = save(world.sys, src.device.fd);
        progress = src.bar0.read32(SimGpuReg.PROGRESS);
        dbuf.bytes.set(sbuf.bytes);
        ringOf(dst).bytes.set(ringOf(src).bytes);
        load(world.sys, dst.device.fd, run.stream);
        // The migration is abandoned on the source side too: it goes on as if nothing happened.
        new DeviceMigration(world.sys, src.device.fd).setState(S.VFIO_DEVICE_STATE_RUNNING);
        migrated();
      },
    });
    await migration;
    assert.ok(progress > 0 && progress < MiB, `stopped mid-command (${progress} bytes done)`);
    assert.equal(model(world, b).engine.pinnedRanges, 2, 'ring and FILL destination pinned on the destination');
    const engineDone = new Promise<void>((resolve, reject) => {
      const t0 = Date.now();
      const poll = (): void => {
        if (dst.bar0.read32(SimGpuReg.COMPLETED) === 1) resolve();
        else if (Date.now() - t0 > 10_000) reject(new Error('destination never completed'));
        else setImmediate(poll);
      };
      poll();
    });
    await engineDone;
    await srcDone;
    const expect = new Uint8Array(MiB);
    new DataView(expect.buffer).setUint32(0, 0xabababab, true);
    for (let i = 4; i < MiB; i++) expect[i] = expect[i % 4]!;
    assert.deepEqual(dbuf.bytes, expect, 'the destination finished the FILL');
    assert.deepEqual(sbuf.bytes, expect, 'and so did the source, resumed');
    assert.equal(model(world, b).engine.pinnedRanges, 0, 'no pins left once done');
  } finally {
    src.close();
    dst.close();
    world.close();
  }
});

test('simgpu 8Q: an 8 GiB framebuffer streams what was written, not 8 GiB of zeros', async () => {
  const world = simgpuWorld([{}, {}], { kernel: '6.12', memlockLimit: 64 * MiB, capIpcLock: false });
  const a = world.create('8Q', testUuid(5), 'simgpu0');
  const b = world.create('8Q', testUuid(6), 'simgpu1');
  const src = SimGpuGuest.open(world.sys, a);
  const dst = SimGpuGuest.open(world.sys, b);
  try {
    const sbuf = src.allocate(MiB, BUF);
    sbuf.bytes.fill(0x77);
    assert.equal((await src.blitToFramebuffer(5 * GiB + 4096, BUF, MiB)).completed, 1);
    assert.equal((await src.blitToFramebuffer(17, BUF, 100)).completed, 2);
    const size = new DeviceMigration(world.sys, src.device.fd).dataSize();
    const run = save(world.sys, src.device.fd);
    assert.ok(run.stream.byteLength < 2 * MiB, `stream of ${run.stream.byteLength} bytes`);
    assert.ok(size >= BigInt(run.stream.byteLength) - 4096n && size < 2n * BigInt(MiB), `MIG_DATA_SIZE ${size}`);
    load(world.sys, dst.device.fd, run.stream);
    assert.deepEqual(framebufferBytes(world, b, 5 * GiB, 2 * MiB), framebufferBytes(world, a, 5 * GiB, 2 * MiB));
    assert.deepEqual(framebufferBytes(world, b, 0, 4096), framebufferBytes(world, a, 0, 4096));
  } finally {
    src.close();
    dst.close();
    world.close();
  }
});

test('simgpu: pre-copy sends the framebuffer while the guest runs, then only what changed', async () => {
  const world = simgpuWorld([{ framebufferSize: 1 * GiB }], { kernel: '6.12' });
  const a = world.create('0B', testUuid(7));
  const b = world.create('0B', testUuid(8));
  const src = SimGpuGuest.open(world.sys, a);
  const dst = SimGpuGuest.open(world.sys, b);
  try {
    const sbuf = src.allocate(MiB, BUF);
    sbuf.bytes.fill(0x42);
    await src.blitToFramebuffer(0, BUF, MiB);
    const mig = new DeviceMigration(world.sys, src.device.fd);
    const data = mig.setState(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    const info = data.precopyInfo();
    assert.ok(info.initialBytes > BigInt(MiB) && info.dirtyBytes === 0n, `initial ${info.initialBytes}`);
    const initial = data.drain();
    assert.deepEqual(data.precopyInfo(), { initialBytes: 0n, dirtyBytes: 0n });
    // The guest keeps working: one 64 KiB chunk changes, another page is written for the first time.
    sbuf.bytes.fill(0x43, 0, 4096);
    await src.blitToFramebuffer(4096, BUF, 4096);
    await src.blitToFramebuffer(300 * 1024 * 1024, BUF, 4096);
    const later = data.precopyInfo();
    assert.equal(later.initialBytes, 0n);
    assert.equal(later.dirtyBytes, 2n * (64n * 1024n + 24n), 'two chunks changed');
    const dirty = data.drain();
    mig.setState(S.VFIO_DEVICE_STATE_STOP_COPY);
    const rest = data.drain();
    data.close();
    assert.ok(rest.byteLength < 64 * 1024, `stop-copy sent ${rest.byteLength} bytes: nothing of the framebuffer was left`);
    const stream = new Uint8Array([...initial, ...dirty, ...rest]);
    load(world.sys, dst.device.fd, stream, 7);
    assert.deepEqual(framebufferBytes(world, b, 0, 2 * MiB), framebufferBytes(world, a, 0, 2 * MiB));
    assert.deepEqual(framebufferBytes(world, b, 300 * MiB, 8192), framebufferBytes(world, a, 300 * MiB, 8192));
  } finally {
    src.close();
    dst.close();
    world.close();
  }
});
