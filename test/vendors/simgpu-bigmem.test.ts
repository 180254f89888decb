// simgpu with framebuffers larger than one ArrayBuffer (4 GiB on Node 20): the 8 GiB
// "8Q" on a default board, driven through sysfs and the VFIO client only; and the
// framebuffer windows BLIT_TO_FB maps, which never outlive their command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SimGpuGuest } from '../../src/vendors/simgpu/guest.js';
import { SimGpuError, SimGpuOp } from '../../src/vendors/simgpu/registers.js';
import { simgpuWorld, testUuid } from './simgpu-world.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Mappings of a memfd in this process: [count, bytes], from /proc/self/maps. */
function mappingsOf(memfd: string): [number, number] {
  let count = 0;
  let bytes = 0;
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    if (!line.includes(`/memfd:${memfd} `)) continue;
    const [start, end] = line.split(' ')[0]!.split('-').map((h) => BigInt(`0x${h}`));
    count++;
    bytes += Number(end! - start!);
  }
  return [count, bytes];
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

test('8Q: an 8 GiB vGPU on a default board, a BLIT above 4 GiB read back by pread and mmap of BAR1, memory stays sparse', async () => {
  const rssBefore = process.memoryUsage().rss;
  const world = simgpuWorld([{}], { memlockLimit: 64 * MiB, capIpcLock: false });
  const { sysfs } = world.sys;
  const memfd = 'simgpu0-fb-0';
  try {
    assert.equal(world.boards[0]!.framebufferSize, 8 * GiB, 'the default board');
    assert.equal(sysfs.read(`${world.typeDir('8Q')}/available_instances`), '1');
    assert.equal(sysfs.read(`${world.typeDir('8Q')}/framebuffer`), String(8 * GiB));
    const uuid = world.create('8Q', testUuid(8));
    assert.equal(sysfs.read(`${world.typeDir('8Q')}/available_instances`), '0');
    assert.equal(sysfs.read(`${world.typeDir('0B')}/available_instances`), '0', 'the board is full');
    const guest = SimGpuGuest.open(world.sys, uuid);
    try {
      assert.equal(guest.info.framebufferSize, 8 * GiB, 'FB_SIZE_LO/HI');
      assert.equal(guest.info.typeId, 18);
      const bar1 = guest.device.bar(1);
      assert.equal(bar1.size, 8 * GiB);
      assert.equal(bar1.mmappable, true);
      // BAR sizing through config space: a 64-bit prefetchable BAR of 2^33 bytes.
      const config = guest.device.config;
      config.write32(0x14, 0xffffffff);
      config.write32(0x18, 0xffffffff);
      assert.deepEqual([config.bar(1), config.bar(2)], [0x0000000c, 0xfffffffe]);

      const image = pattern(3 * 4096 + 123, 5);
      const src = guest.allocate(4 * 4096, 0x100000n);
      src.bytes.set(image);
      const at = 8 * GiB - 5 * 4096 + 7; // well above 4 GiB, not page-aligned, across four pages
      const result = await guest.blitToFramebuffer(at, src.iova, image.byteLength);
      assert.equal(result.error, undefined);
      assert.equal(result.completed, 1);
      assert.deepEqual(bar1.read(at, image.byteLength), image, 'pread of BAR1');
      assert.deepEqual([...bar1.read(at - 2, 2)], [0, 0], 'nothing before it');
      const window = guest.mapFramebuffer(8 * GiB - 64 * 1024, 64 * 1024);
      const within = at - (8 * GiB - 64 * 1024);
      assert.deepEqual(window.bytes.subarray(within, within + image.byteLength), image, 'mmap of a window of BAR1');
      // Both ways: the guest draws through the window; pwrite lands in it.
      window.bytes.fill(0x42, 0, 16);
      assert.deepEqual([...bar1.read(8 * GiB - 64 * 1024, 4)], [0x42, 0x42, 0x42, 0x42]);
      bar1.write(8 * GiB - 4, Uint8Array.of(9, 8, 7, 6));
      assert.deepEqual([...window.bytes.subarray(64 * 1024 - 4)], [9, 8, 7, 6]);
      assert.throws(() => bar1.read(8 * GiB, 1), { code: 'EINVAL' }, 'at the end of BAR1');
      // A BLIT past the end is refused by the vGPU, nothing written.
      const past = await guest.blitToFramebuffer(8 * GiB - 10, src.iova, 11);
      assert.equal(past.error?.code, SimGpuError.FB_RANGE);

      // Sparse: only the guest's 64 KiB window maps the framebuffer; little memory was used.
      assert.deepEqual(mappingsOf(memfd), [1, 64 * 1024]);
      const grown = process.memoryUsage().rss - rssBefore;
      assert.ok(grown < 64 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    } finally {
      guest.close();
    }
    assert.deepEqual(mappingsOf(memfd), [0, 0], 'closing the device unmapped the window');
    world.remove(uuid);
    assert.equal(sysfs.read(`${world.typeDir('8Q')}/available_instances`), '1');
  } finally {
    world.close();
  }
});

test('BLIT_TO_FB windows: mapped while the command runs, unmapped when it ends, fails or is stopped', async () => {
  const world = simgpuWorld([{ name: 'winboard0', framebufferSize: GiB, bytesPerStep: 4096 }], { memlockLimit: 64 * MiB, capIpcLock: false });
  const memfd = 'winboard0-fb-0';
  const uuid = world.create('1Q', testUuid(1), 'winboard0');
  let guest = SimGpuGuest.open(world.sys, uuid);
  const model = world.boards[0]!.vgpus[0]!;
  try {
    const length = 64 * 1024;
    let src = guest.allocate(length, 0x100000n);
    src.bytes.set(pattern(length, 1));
    // Runs to the end: one window while it runs, none after.
    let during: [number, number] = [0, 0];
    let ok = await guest.submit([{ op: SimGpuOp.BLIT_TO_FB, length, dst: BigInt(GiB - length - 4096 + 100), src: src.iova }], {
      whileRunning: () => { during = mappingsOf(memfd); },
    });
    assert.equal(ok.error, undefined);
    assert.deepEqual(during, [1, length + 4096], 'the pages the blit writes, and no more');
    assert.deepEqual(mappingsOf(memfd), [0, 0]);
    assert.equal(model.engine.mappedWindows, 0);
    // Fails mid-way (the source is unmapped): the window goes with the command.
    ok = await guest.submit([{ op: SimGpuOp.BLIT_TO_FB, length, dst: 0n, src: src.iova }], {
      whileRunning: () => {
        during = mappingsOf(memfd);
        src.unmapDma();
      },
    });
    assert.equal(ok.error?.code, SimGpuError.DMA_UNMAPPED);
    assert.deepEqual(during, [1, length]);
    assert.deepEqual(mappingsOf(memfd), [0, 0]);
    // A source that is not mapped at all: the pin fails before any window is made.
    const noSource = await guest.blitToFramebuffer(0, 0x100000n, 16);
    assert.deepEqual(noSource.error?.code, SimGpuError.DMA_FAULT);
    assert.deepEqual(mappingsOf(memfd), [0, 0]);
    // Stopped: the device is closed while the blit runs.
    src = guest.allocate(length, 0x200000n);
    const pending = guest.submit([{ op: SimGpuOp.BLIT_TO_FB, length, dst: 0n, src: src.iova }], {
      whileRunning: () => {
        during = mappingsOf(memfd);
        guest.close();
      },
    });
    await assert.rejects(pending, { code: 'ECANCELED' });
    assert.deepEqual(during, [1, length]);
    assert.deepEqual(mappingsOf(memfd), [0, 0]);
    assert.equal(model.engine.mappedWindows, 0);
    // And the vGPU still works after all that.
    guest = SimGpuGuest.open(world.sys, uuid);
    src = guest.allocate(4096, 0x100000n);
    src.bytes.fill(0x3c);
    assert.equal((await guest.blitToFramebuffer(4096, src.iova, 4096)).error, undefined);
    assert.ok(guest.device.bar(1).read(4096, 4096).every((b) => b === 0x3c));
    assert.deepEqual(mappingsOf(memfd), [0, 0]);
  } finally {
    guest.close();
    world.close();
  }
});
