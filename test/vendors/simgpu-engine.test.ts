// simgpu's command engine driven as a guest driver would: commands in a ring in guest
// memory, a doorbell, an MSI on completion; results checked byte for byte in guest
// memory and in the framebuffer; DMA faults and unmaps stay inside the vGPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { ioctls, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get } from '../../src/uapi/index.js';
import { SimGpuGuest, type GuestBuffer } from '../../src/vendors/simgpu/guest.js';
import { PciDeviceHandle } from '../../src/vfio/index.js';
import { SIMGPU_MAX_TRANSFER, SimGpuError, SimGpuInt, SimGpuOp, SimGpuReg, SimGpuStatus } from '../../src/vendors/simgpu/registers.js';
import { simgpuWorld, testUuid, type SimGpuWorld } from './simgpu-world.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const { EINVAL, EPERM, ENOMEM } = constants.errno;

/** A world with one 1 GiB board and one open 0Q vGPU; `run` gets both; everything is closed after. */
async function withGuest(
  run: (guest: SimGpuGuest, world: SimGpuWorld) => Promise<void>,
  options: { bytesPerStep?: number; memlockLimit?: number } = {},
): Promise<void> {
  const board = options.bytesPerStep === undefined ? { framebufferSize: GiB } : { framebufferSize: GiB, bytesPerStep: options.bytesPerStep };
  const world = simgpuWorld([board], { memlockLimit: options.memlockLimit ?? 64 * MiB, capIpcLock: false });
  const uuid = world.create('0Q', testUuid(1));
  const guest = SimGpuGuest.open(world.sys, uuid);
  try {
    await run(guest, world);
  } finally {
    guest.close();
  }
  const device = world.devices.get(uuid)!;
  assert.equal(device.forcedUnpins, 0, 'simgpu unpinned everything itself');
  assert.equal(world.sys.kernel.locked.lockedPages, 0, 'no locked memory left');
  world.close();
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);

test('FILL writes the 32-bit pattern little-endian from dst, exactly length bytes', () => withGuest(async (guest) => {
  const buf = guest.allocate(3 * 4096, 0x100000n);
  const result = await guest.fill(buf.iova + 5n, 2 * 4096 + 7, 0xdeadbeef);
  assert.deepEqual(result, { intStatus: SimGpuInt.DONE, completed: 1, fence: 0 });
  const expected = new Uint8Array(3 * 4096);
  for (let i = 0; i < 2 * 4096 + 7; i++) expected[5 + i] = [0xef, 0xbe, 0xad, 0xde][i % 4]!;
  assert.deepEqual(buf.bytes, expected);
}));

test('COPY moves guest memory across pages; FENCE writes 64 bits and shows the low half', () => withGuest(async (guest) => {
  const src = guest.allocate(2 * 4096, 0x200000n);
  const dst = guest.allocate(2 * 4096, 0x300000n);
  const data = pattern(6000, 9);
  src.bytes.set(data, 100);
  assert.equal((await guest.copy(dst.iova + 2000n, src.iova + 100n, 6000)).error, undefined);
  assert.deepEqual(dst.bytes.subarray(2000, 8000), data);
  assert.ok(allZero(dst.bytes.subarray(0, 2000)) && allZero(dst.bytes.subarray(8000)));
  const fenced = await guest.fence(dst.iova + 4092n, 0x1122_3344_5566_7788n);
  assert.equal(fenced.fence, 0x5566_7788);
  assert.deepEqual([...dst.bytes.subarray(4092, 4100)], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
}));

test('a batch runs in order with one interrupt; COMPLETED counts the commands', () => withGuest(async (guest) => {
  const a = guest.allocate(4096, 0x100000n);
  const b = guest.allocate(4096, 0x101000n);
  const f = guest.allocate(4096, 0x200000n);
  let interrupts = 0n;
  const listener = guest.device.irqs.on(1, 0, (n) => { interrupts += n; });
  const result = await guest.submit([
    { op: SimGpuOp.FILL, length: 4096, dst: a.iova, src: 0x03020100n },
    { op: SimGpuOp.COPY, length: 1000, dst: b.iova + 24n, src: a.iova + 2n },
    { op: SimGpuOp.NOP, length: 0, dst: 0n, src: 0n },
    { op: SimGpuOp.FENCE, length: 8, dst: f.iova, src: 42n },
  ]);
  listener.close();
  assert.deepEqual(result, { intStatus: SimGpuInt.DONE, completed: 4, fence: 42 });
  assert.equal(interrupts, 1n);
  const expectedB = new Uint8Array(4096);
  for (let i = 0; i < 1000; i++) expectedB[24 + i] = (i + 2) % 4;
  assert.deepEqual(b.bytes, expectedB);
  assert.equal(new DataView(f.bytes.buffer).getBigUint64(0, true), 42n);
  assert.equal(guest.bar0.read32(SimGpuReg.STATUS), 0);
  assert.equal(guest.bar0.read32(SimGpuReg.INT_STATUS), 0, 'acknowledged');
}));

test('DMA to an unmapped IOVA: DMA_FAULT EINVAL, nothing written, the next commands work', () => withGuest(async (guest) => {
  const buf = guest.allocate(4096, 0x100000n);
  const other = guest.allocate(4096, 0x101000n);
  // The range starts in a mapped page and runs into an unmapped one: no byte may move.
  const result = await guest.submit([
    { op: SimGpuOp.FILL, length: 16, dst: buf.iova, src: 0x11111111n },
    { op: SimGpuOp.FILL, length: 8192, dst: other.iova, src: 0xffffffffn },
    { op: SimGpuOp.FILL, length: 16, dst: buf.iova + 16n, src: 0x22222222n },
  ]);
  assert.deepEqual(result, { intStatus: SimGpuInt.ERROR, completed: 1, fence: 0, error: { code: SimGpuError.DMA_FAULT, index: 1, errno: EINVAL } });
  assert.ok(buf.bytes.subarray(0, 16).every((b) => b === 0x11));
  assert.ok(allZero(buf.bytes.subarray(16)), 'the command after the failing one did not run');
  assert.ok(allZero(other.bytes), 'the mapped half of the failing range is untouched');
  // COPY from an IOVA nobody mapped.
  const copy = await guest.copy(buf.iova, 0x7000_0000n, 64);
  assert.deepEqual(copy.error, { code: SimGpuError.DMA_FAULT, index: 0, errno: EINVAL });
  assert.ok(allZero(buf.bytes.subarray(16)));
  // The engine goes on after the acknowledgement.
  assert.equal((await guest.fill(buf.iova, 4, 0x01010101)).error, undefined);
  assert.equal(buf.bytes[3], 1);
}));

test('DMA without the permission: writing memory the device may only read is EPERM', () => withGuest(async (guest) => {
  const ro = guest.allocate(4096, 0x100000n, { write: false });
  const wo = guest.allocate(4096, 0x200000n, { read: false });
  ro.bytes.fill(7);
  assert.deepEqual((await guest.fill(ro.iova, 64, 0)).error, { code: SimGpuError.DMA_FAULT, index: 0, errno: EPERM });
  assert.ok(ro.bytes.every((b) => b === 7));
  assert.deepEqual((await guest.copy(ro.iova, wo.iova, 64)).error, { code: SimGpuError.DMA_FAULT, index: 0, errno: EPERM });
  assert.equal((await guest.copy(wo.iova, ro.iova, 64)).error, undefined, 'read from ro, write to wo');
  assert.ok(wo.bytes.subarray(0, 64).every((b) => b === 7));
}));

test('pinning beyond the locked-memory limit fails ENOMEM inside the vGPU', () => withGuest(async (guest) => {
  const big = guest.allocate(64 * 4096, 0x100000n);
  const result = await guest.fill(big.iova, 64 * 4096, 0x55555555);
  assert.deepEqual(result.error, { code: SimGpuError.DMA_FAULT, index: 0, errno: ENOMEM });
  assert.ok(allZero(big.bytes));
  assert.equal((await guest.fill(big.iova, 4096, 0x55555555)).error, undefined, 'a smaller pin fits');
}, { memlockLimit: 16 * 4096 }));

test('transfers of more than 512 pages are pinned in 512-page calls', () => withGuest(async (guest) => {
  const size = 1300 * 4096;
  const src = guest.allocate(size, 0x1000_0000_0n);
  const dst = guest.allocate(size, 0x2000_0000_0n);
  const data = pattern(size, 3);
  src.bytes.set(data);
  assert.equal((await guest.copy(dst.iova, src.iova, size)).error, undefined);
  assert.ok(Buffer.from(dst.bytes).equals(Buffer.from(data)));
}));

test('bad commands: opcode, length, overlap, framebuffer range, misprogrammed ring', () => withGuest(async (guest) => {
  const buf = guest.allocate(4096, 0x100000n);
  const code = async (cmd: Parameters<SimGpuGuest['submit']>[0][number]): Promise<number | undefined> => (await guest.submit([cmd])).error?.code;
  assert.equal(await code({ op: 99, length: 0, dst: 0n, src: 0n }), SimGpuError.BAD_OPCODE);
  assert.equal(await code({ op: SimGpuOp.FILL, length: SIMGPU_MAX_TRANSFER + 1, dst: buf.iova, src: 0n }), SimGpuError.BAD_LENGTH);
  assert.equal(await code({ op: SimGpuOp.FENCE, length: 4, dst: buf.iova, src: 0n }), SimGpuError.BAD_LENGTH);
  assert.equal(await code({ op: SimGpuOp.COPY, length: 100, dst: buf.iova + 50n, src: buf.iova }), SimGpuError.OVERLAP);
  assert.equal(await code({ op: SimGpuOp.BLIT_TO_FB, length: 4096, dst: BigInt(guest.info.framebufferSize - 4095), src: buf.iova }), SimGpuError.FB_RANGE);
  assert.ok(allZero(buf.bytes));
  // A ring of 3 entries is not a power of two: the doorbell halts the engine with BAD_RING.
  const bar0 = guest.bar0;
  bar0.write32(SimGpuReg.RING_SIZE, 3);
  bar0.write32(SimGpuReg.RING_TAIL, 1);
  const fired = guest.device.irqs.once(1, 0, 5000);
  bar0.write32(SimGpuReg.DOORBELL, 1);
  await fired;
  assert.equal(bar0.read32(SimGpuReg.STATUS), SimGpuStatus.HALTED);
  assert.equal(bar0.read32(SimGpuReg.ERROR_CODE), SimGpuError.BAD_RING);
  assert.equal(bar0.read32(SimGpuReg.INT_STATUS), SimGpuInt.ERROR);
  bar0.write32(SimGpuReg.DOORBELL, 1); // ignored while halted
  assert.equal(bar0.read32(SimGpuReg.STATUS), SimGpuStatus.HALTED);
  bar0.write8(SimGpuReg.INT_STATUS, SimGpuInt.ERROR); // write 1 to clear, one byte wide
  assert.equal(bar0.read32(SimGpuReg.STATUS), 0);
}));

test('BLIT_TO_FB: the framebuffer mmap and pread of BAR1 show what the vGPU blitted', () => withGuest(async (guest) => {
  const src = guest.allocate(4 * 4096, 0x100000n);
  const image = pattern(10_000, 77);
  src.bytes.set(image);
  const fb = guest.mapFramebuffer(0, 64 * 1024);
  fb.bytes.fill(0x20, 0, 16); // the guest draws through the mapping too
  assert.equal((await guest.blitToFramebuffer(4096 + 3, src.iova, image.byteLength)).error, undefined);
  assert.deepEqual(fb.bytes.subarray(4096 + 3, 4096 + 3 + image.byteLength), image);
  assert.ok(allZero(fb.bytes.subarray(16, 4096 + 3)));
  assert.deepEqual(guest.device.bar(1).read(4096 + 3, 32), image.subarray(0, 32));
  assert.deepEqual(guest.device.bar(1).read(0, 16), new Uint8Array(16).fill(0x20));
  // Blit to the very end of the framebuffer, seen through a mapping of the last page.
  const end = guest.info.framebufferSize;
  assert.equal((await guest.blitToFramebuffer(end - 100, src.iova, 100)).error, undefined);
  const last = guest.mapFramebuffer(end - 4096, 4096);
  assert.deepEqual(last.bytes.subarray(4096 - 100), image.subarray(0, 100));
}));

test('unmap while a command runs: the vendor unpins, the command fails DMA_UNMAPPED, the rest is untouched', () => withGuest(async (guest) => {
  const size = 4 * MiB;
  const buf = guest.allocate(size, 0x100000n);
  let doneAtUnmap = -1;
  const result = await guest.submit([{ op: SimGpuOp.FILL, length: size, dst: buf.iova, src: 0xa5a5a5a5n }], {
    whileRunning: () => {
      doneAtUnmap = guest.bar0.read32(SimGpuReg.PROGRESS);
      assert.equal(buf.unmapDma(), BigInt(size));
    },
  });
  assert.ok(doneAtUnmap > 0 && doneAtUnmap < size, `stopped mid-way (${doneAtUnmap})`);
  assert.deepEqual(result.error, { code: SimGpuError.DMA_UNMAPPED, index: 0, errno: 0 });
  assert.ok(buf.bytes.subarray(0, doneAtUnmap).every((b) => b === 0xa5));
  assert.ok(allZero(buf.bytes.subarray(doneAtUnmap)), 'nothing written after the unmap');
  // The IOVA is free again: remap other memory there and the engine follows the new mapping.
  const again = guest.allocate(4096, 0x100000n);
  assert.equal((await guest.fill(again.iova, 8, 0x01020304)).error, undefined);
  assert.deepEqual([...again.bytes.subarray(0, 8)], [4, 3, 2, 1, 4, 3, 2, 1]);
}, { bytesPerStep: 4096 }));

test('unmap of pending work before it starts: the pin fails when the command runs', () => withGuest(async (guest) => {
  const a = guest.allocate(4 * MiB, 0x100000n);
  const b = guest.allocate(4096, 0x800000n);
  const result = await guest.submit([
    { op: SimGpuOp.FILL, length: 4 * MiB, dst: a.iova, src: 0x01010101n },
    { op: SimGpuOp.FILL, length: 4096, dst: b.iova, src: 0x02020202n },
  ], { whileRunning: () => { b.unmapDma(); } });
  assert.deepEqual(result.error, { code: SimGpuError.DMA_FAULT, index: 1, errno: EINVAL });
  assert.ok(a.bytes.every((x) => x === 1), 'the first command completed');
  assert.ok(allZero(b.bytes));
}, { bytesPerStep: 64 * 1024 }));

test('closing the device while work runs stops it and leaves no pin behind', () => withGuest(async (guest, world) => {
  const buf = guest.allocate(4 * MiB, 0x100000n);
  const model = world.boards[0]!.vgpus[0]!;
  let pinnedWhileRunning = 0;
  const pending = guest.submit([{ op: SimGpuOp.FILL, length: 4 * MiB, dst: buf.iova, src: 0xffffffffn }], {
    whileRunning: () => {
      pinnedWhileRunning = world.sys.kernel.locked.lockedPages;
      guest.close();
    },
  });
  await assert.rejects(pending, { code: 'ECANCELED' });
  assert.ok(pinnedWhileRunning >= 1024, `the fill and the ring were pinned (${pinnedWhileRunning} pages)`);
  assert.equal(model.engine.pinnedRanges, 0);
  assert.equal(model.isOpen, false);
  assert.equal(world.sys.kernel.locked.lockedPages, 0);
}, { bytesPerStep: 4096 }));

test('two vGPUs on one board work independently, at the same IOVAs, at the same time', async () => {
  const world = simgpuWorld([{ framebufferSize: GiB, bytesPerStep: 16 * 1024 }], { memlockLimit: 64 * MiB, capIpcLock: false });
  const guests = [world.create('0B', testUuid(1)), world.create('0B', testUuid(2))].map((uuid) => SimGpuGuest.open(world.sys, uuid));
  const buffers: GuestBuffer[] = [];
  try {
    for (const g of guests) buffers.push(g.allocate(MiB, 0x100000n));
    const fbs = guests.map((g) => g.mapFramebuffer(0, 4096));
    const results = await Promise.all(guests.map((g, i) => g.submit([
      { op: SimGpuOp.FILL, length: MiB, dst: 0x100000n, src: BigInt(0x01010101 * (i + 1)) },
      { op: SimGpuOp.BLIT_TO_FB, length: 4096, dst: 0n, src: 0x100000n },
    ])));
    assert.deepEqual(results.map((r) => r.error), [undefined, undefined]);
    assert.ok(buffers[0]!.bytes.every((x) => x === 1));
    assert.ok(buffers[1]!.bytes.every((x) => x === 2));
    assert.ok(fbs[0]!.bytes.every((x) => x === 1));
    assert.ok(fbs[1]!.bytes.every((x) => x === 2));
    // An error on one does not disturb the other.
    const [bad, good] = await Promise.all([guests[0]!.fill(0x9000_0000n, 4, 0), guests[1]!.fill(0x100000n, 4, 0x03030303)]);
    assert.equal(bad.error?.code, SimGpuError.DMA_FAULT);
    assert.equal(good.error, undefined);
    assert.equal(buffers[1]!.bytes[0], 3);
    assert.equal(buffers[0]!.bytes[0], 1);
  } finally {
    for (const g of guests) g.close();
    world.close();
  }
  assert.equal(world.sys.kernel.locked.lockedPages, 0);
});

test('batches submitted at once run one after the other', () => withGuest(async (guest) => {
  const buf = guest.allocate(4096, 0x100000n);
  const results = await Promise.all([1, 2, 3].map((n) => guest.fill(buf.iova + BigInt(n * 4), 4, 0x01010101 * n)));
  assert.deepEqual(results.map((r) => r.completed), [1, 2, 3]);
  assert.deepEqual([...buf.bytes.subarray(4, 16)], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
}));

test('dirty page tracking reports exactly the pages the vGPU wrote', () => withGuest(async (guest) => {
  const PAGE = 4096;
  const buf = guest.allocate(8 * PAGE, 0x100000n);
  assert.ok(guest.handle instanceof PciDeviceHandle, 'dirty tracking is the kernel container\'s');
  const container = guest.handle.container;
  const sys = guest.sys;
  const bitmap = sys.allocate(PAGE);
  const bits = new Uint8Array(bitmap.buffer);
  const dirty = (flags: number): number => sys.ioctl(container.fd, ioctls.VFIO_IOMMU_DIRTY_PAGES, vfio_iommu_type1_dirty_bitmap.encode({ argsz: 8, flags }));
  const report = (): number => {
    const arg = vfio_iommu_type1_dirty_bitmap.encode({ argsz: 48, flags: 4 }, 48);
    vfio_iommu_type1_dirty_bitmap_get.write(arg, { iova: buf.iova, size: BigInt(8 * PAGE), bitmap_pgsize: BigInt(PAGE), bitmap_size: 8n, bitmap_data: bitmap.address }, 8);
    bits.fill(0, 0, 8);
    sys.ioctl(container.fd, ioctls.VFIO_IOMMU_DIRTY_PAGES, arg);
    return bits[0]!;
  };
  try {
    await guest.fill(buf.iova, 4, 0); // the group has pinned: reports cover pinned pages only
    assert.equal(dirty(1), 0); // START
    assert.equal(report(), 0, 'nothing is pinned at START, nothing written since');
    assert.equal((await guest.fill(buf.iova + BigInt(2 * PAGE + 100), PAGE, 0xffffffff)).error, undefined);
    assert.equal(report(), 0b0000_1100, 'pages 2 and 3 (the fill straddles them)');
    assert.equal(report(), 0, 'a report clears what is no longer pinned');
    assert.equal((await guest.copy(buf.iova + BigInt(7 * PAGE), buf.iova, 8)).error, undefined);
    assert.equal(report(), 0b1000_0001, 'the kernel marks every pinned page, so the copy\'s source page too');
    assert.equal(dirty(2), 0); // STOP
  } finally {
    sys.munmap(bitmap);
  }
}));

test('Bus Master Enable: the guest sets it; while clear the vGPU does no DMA, reports NO_BUS_MASTER and raises the interrupt', () => withGuest(async (guest, world) => {
  const MASTER = 0x4;
  const { config } = guest.device;
  assert.ok((config.command & MASTER) !== 0, 'the guest driver set Bus Master before any submit');
  const buf = guest.allocate(4 * MiB, 0x100000n);
  config.command = config.command & ~MASTER;
  const refused = await guest.fill(buf.iova, 4096, 0x11111111); // resolves on the interrupt
  assert.deepEqual(refused.error, { code: SimGpuError.NO_BUS_MASTER, index: 0, errno: 0 });
  assert.equal(refused.completed, 0);
  assert.ok(allZero(buf.bytes), 'nothing written');
  assert.equal(world.sys.kernel.locked.lockedPages, 0, 'not even the ring was pinned');
  config.enable(MASTER);
  assert.equal((await guest.fill(buf.iova, 4096, 0x22222222)).error, undefined);
  assert.ok(buf.bytes.subarray(0, 4096).every((b) => b === 0x22));
  // Cleared while a command runs: it stops there, what it wrote stays written.
  let doneAtClear = -1;
  const stopped = await guest.submit([{ op: SimGpuOp.FILL, length: 4 * MiB, dst: buf.iova, src: 0x33333333n }], {
    whileRunning: () => {
      doneAtClear = guest.bar0.read32(SimGpuReg.PROGRESS);
      config.command = config.command & ~MASTER;
    },
  });
  assert.deepEqual(stopped.error, { code: SimGpuError.NO_BUS_MASTER, index: 1, errno: 0 }, 'the ring entry after the fill');
  assert.ok(doneAtClear > 0 && doneAtClear < 4 * MiB, `stopped mid-way (${doneAtClear})`);
  assert.ok(buf.bytes.subarray(0, doneAtClear).every((b) => b === 0x33));
  assert.ok(allZero(buf.bytes.subarray(doneAtClear)), 'nothing written after the clear');
  assert.equal(world.boards[0]!.vgpus[0]!.engine.pinnedRanges, 0);
  config.enable(MASTER);
}, { bytesPerStep: 4096 }));
