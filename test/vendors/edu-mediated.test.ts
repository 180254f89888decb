// The mediated edu driver on the mock kernel: two vGPUs on one simulated physical edu,
// each opened through the VFIO client by UUID as a guest driver would, with the
// physical device's BAR writes recorded at the mock kernel (the device fd's pwrite).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { createMockSys, type MockSysLayer } from '../../src/sys/index.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import {
  EDU_DEVICE, EDU_DMA_BUFFER, EDU_ID, EDU_VENDOR, EduMediatedParent, eduMediatedDriver, eduDmaCmd, eduRegs,
  EDU_MEDIATED_DMA_ERROR,
} from '../../src/vendors/edu/index.js';
import { EduGuest, factorial32 } from './edu-mediated-guest.js';

const ADDRESS = '0000:00:04.0';
const TYPES = `/sys/class/mdev_bus/${ADDRESS}/mdev_supported_types/edu-mediated`;
const UUID_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const UUID_B = 'bbbbbbbb-0000-4000-8000-000000000002';

interface BarWrite { offset: number; value: number }

interface World {
  sys: MockSysLayer;
  registry: VgpuRegistry;
  parent: EduMediatedParent;
  /** Every 4-byte write to the physical BAR0, in order. */
  writes: BarWrite[];
  close(): void;
}

function world(): World {
  const edu = createEduDevice(ADDRESS);
  const writes: BarWrite[] = [];
  const write = edu.write.bind(edu);
  // BAR0 is region index 0: vfio-pci's offsets put it at 0 << 40.
  edu.write = (buf: Uint8Array, offset: bigint): number => {
    if (offset < 1n << 40n && buf.byteLength === 4) {
      writes.push({ offset: Number(offset), value: new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, true) });
    }
    return write(buf, offset);
  };
  const sys = createMockSys({ devices: [edu] });
  const registry = new VgpuRegistry();
  registry.registerDriver(eduMediatedDriver);
  attachMockKernel(registry, sys.kernel);
  const parent = EduMediatedParent.open(sys, ADDRESS);
  registry.addParent('edu', parent);
  return {
    sys, registry, parent, writes,
    close() {
      registry.removeParent(ADDRESS);
      parent.close();
    },
  };
}

function create(w: World, uuid: string): void {
  w.sys.sysfs.write(`${TYPES}/create`, uuid);
}

/** The physical engine's programmed transfers: [src, dst, count, cmd] per DMA_CMD write. */
function physicalTransfers(writes: readonly BarWrite[]): number[][] {
  const regs = new Map<number, number>();
  const out: number[][] = [];
  for (const { offset, value } of writes) {
    regs.set(offset, value);
    if (offset === eduRegs.DMA_CMD) out.push([regs.get(eduRegs.DMA_SRC)!, regs.get(eduRegs.DMA_DST)!, regs.get(eduRegs.DMA_COUNT)!, value]);
  }
  return out;
}

test('the type: four instances of edu-mediated on the physical edu', () => {
  const w = world();
  try {
    assert.equal(w.sys.sysfs.read(`${TYPES}/available_instances`), '4');
    assert.equal(w.sys.sysfs.read(`${TYPES}/name`), 'Mediated edu');
    assert.equal(w.sys.sysfs.read(`${TYPES}/device_api`), 'vfio-pci');
    for (let i = 1; i <= 4; i++) create(w, `00000000-0000-4000-8000-00000000000${i}`);
    assert.equal(w.sys.sysfs.read(`${TYPES}/available_instances`), '0');
    assert.throws(() => create(w, '00000000-0000-4000-8000-000000000005'), { code: 'ENOSPC' });
  } finally {
    w.close();
  }
});

test('a vGPU is an edu: ids, BAR0 1 MiB, ID, liveness, ~0 where edu has no register, 1/2-byte accesses', () => {
  const w = world();
  create(w, UUID_A);
  const a = new EduGuest(w.sys, UUID_A, 0x10000n);
  try {
    assert.equal(a.handle.device.config.vendorId, EDU_VENDOR);
    assert.equal(a.handle.device.config.deviceId, EDU_DEVICE);
    assert.equal(a.bar0.size, 1 << 20);
    assert.equal(a.bar0.read32(eduRegs.ID), EDU_ID);
    a.bar0.write32(eduRegs.LIVENESS, 0x12345678);
    assert.equal(a.bar0.read32(eduRegs.LIVENESS), 0xedcba987);
    assert.equal(a.bar0.read32(0x84), 0xffffffff);
    assert.equal(a.bar0.read16(eduRegs.ID), 0);
    a.bar0.write16(eduRegs.LIVENESS, 0);
    assert.equal(a.bar0.read32(eduRegs.LIVENESS), 0xedcba987);
    assert.equal(a.handle.device.irqs.info(1)?.count, 1, 'one MSI');
    assert.equal(w.writes.filter((x) => x.offset === eduRegs.LIVENESS).length, 0, 'registers are the vGPU\'s own');
  } finally {
    a.close();
    w.close();
  }
});

test('two vGPUs: concurrent DMA round trips and factorials, each its own data and interrupts', { timeout: 30_000 }, async () => {
  const w = world();
  create(w, UUID_A);
  create(w, UUID_B);
  // Both guests map their memory at the same IOVA: their address spaces are their own.
  const a = new EduGuest(w.sys, UUID_A, 0x200000n);
  const b = new EduGuest(w.sys, UUID_B, 0x200000n);
  try {
    const work = async (g: EduGuest, seed: number): Promise<void> => {
      for (let i = 0; i < 4; i++) {
        const count = [600, 4095, 1, 2048][i]!;
        const [{ sent, back }, fact] = await Promise.all([g.roundTrip(seed + i, count, i === 1 ? 0 : 100), g.factorialPoll(5 + i + seed)]);
        assert.deepEqual(back, sent, `${g.uuid} round trip ${i}`);
        assert.equal(fact, factorial32(5 + i + seed));
      }
      assert.equal(await g.factorialIrq(12), 479001600);
    };
    await Promise.all([work(a, 1), work(b, 2)]);
    assert.equal(a.interrupts, 9n, 'A: 8 DMA + 1 factorial MSIs');
    assert.equal(b.interrupts, 9n, 'B: 8 DMA + 1 factorial MSIs');
    const { counts } = w.parent.physical;
    assert.equal(counts.vgpu, 16, 'every vGPU transfer ran on the physical engine');
    assert.ok(counts.restore >= 2, `the buffer switched between the vGPUs (${counts.restore} restores)`);
    assert.equal(w.parent.physical.handle.container.mappings.length, 1, 'only the shadow pages stay mapped');
  } finally {
    a.close();
    b.close();
    w.close();
  }
});

test('the device buffer is per vGPU: B never reads what A wrote, A keeps its bytes across B\'s use', { timeout: 30_000 }, async () => {
  const w = world();
  create(w, UUID_A);
  create(w, UUID_B);
  const a = new EduGuest(w.sys, UUID_A, 0x10000n);
  const b = new EduGuest(w.sys, UUID_B, 0x10000n);
  try {
    const page = BigInt(w.sys.pageSize);
    const secret = a.fill(0, 4095, 9);
    assert.equal(await a.dma(0x10000n, 0, 4095, false), 0);
    b.bytes.fill(0x77);
    assert.equal(await b.dma(0x10000n + page, 0, 4095, true), 0);
    assert.ok(b.bytes.subarray(4096, 4096 + 4095).every((x) => x === 0), 'B\'s buffer reads zeros');
    b.fill(0, 300, 3);
    assert.equal(await b.dma(0x10000n, 10, 300, false), 0);
    a.bytes.fill(0, 4096);
    assert.equal(await a.dma(0x10000n + page, 0, 4095, true), 0);
    assert.deepEqual(a.bytes.slice(4096, 4096 + 4095), secret, 'A\'s buffer survived B\'s transfers');
  } finally {
    a.close();
    b.close();
    w.close();
  }
});

test('isolation: an IOVA the vGPU user never mapped fails inside the vGPU; the physical engine never sees it', { timeout: 30_000 }, async () => {
  const w = world();
  create(w, UUID_A);
  const a = new EduGuest(w.sys, UUID_A, 0x10000n);
  try {
    a.fill(0, 256, 5);
    assert.equal(await a.dma(0x10000n, 0, 256, false), 0, 'a good transfer first');
    const before = physicalTransfers(w.writes).length;
    const writesBefore = w.writes.length;
    // 0x8000000: inside edu's mask, outside anything the user mapped; both directions.
    assert.equal(await a.dma(0x8000000n, 0, 256, true), constants.errno.EINVAL);
    assert.equal(await a.dma(0x8000000n, 0, 256, false), constants.errno.EINVAL);
    // Straddling the end of the mapping: the second page is not the user's.
    assert.equal(await a.dma(0x10000n + 2n * 4096n - 16n, 0, 256, true), constants.errno.EINVAL);
    // A device-side range QEMU would abort on never reaches the engine either.
    assert.equal(await a.dma(0x10000n, 0xf00, 0x200, true), constants.errno.EINVAL);
    assert.equal(w.writes.length, writesBefore, 'no write at all reached the physical BAR');
    assert.equal(physicalTransfers(w.writes).length, before);
    // Mapped read-only: the device may not write it (pin EPERM), and the memory stays.
    const ro = w.sys.allocate(4096);
    new Uint8Array(ro.buffer).fill(0xaa);
    const roMap = a.handle.container.map({ iova: 0x400000, memory: ro, write: false });
    assert.equal(await a.dma(0x400000n, 0, 256, true), constants.errno.EPERM);
    assert.ok(new Uint8Array(ro.buffer).every((x) => x === 0xaa));
    assert.equal(w.writes.length, writesBefore);
    roMap.unmap();
    w.sys.munmap(ro);
    // The physical transfers only ever named driver IOVAs below 256 MiB.
    for (const [src, dst, count] of physicalTransfers(w.writes)) {
      const ram = src! >= Number(EDU_DMA_BUFFER) && src! < Number(EDU_DMA_BUFFER) + 4096 ? dst! : src!;
      assert.ok(ram >= 0x100000 && ram < 0x10000000, `ram side 0x${ram.toString(16)}`);
      assert.ok(count! <= 4095);
    }
    assert.equal(await a.dma(0x10000n, 0, 256, true), 0, 'the vGPU still works');
  } finally {
    a.close();
    w.close();
  }
});

test('unmapping pages mid-transfer: the pins and the physical mapping go before dma_unmap returns', { timeout: 30_000 }, async () => {
  const w = world();
  create(w, UUID_A);
  const a = new EduGuest(w.sys, UUID_A, 0x10000n);
  try {
    const victim = w.sys.allocate(4096);
    new Uint8Array(victim.buffer).fill(0x5a);
    const vmap = a.handle.container.map({ iova: 0x300000, memory: victim });
    const done = a.handle.device.irqs.once(1, 0, 10_000);
    a.bar0.write32(eduRegs.DMA_SRC, Number(EDU_DMA_BUFFER));
    a.bar0.write32(eduRegs.DMA_DST, 0x300000);
    a.bar0.write32(eduRegs.DMA_COUNT, 512);
    a.bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.TO_RAM | eduDmaCmd.IRQ);
    // Let the job start on the physical engine (restore, then the transfer), then unmap.
    const physical = w.parent.physical;
    while (physical.counts.vgpu === 0) await new Promise((r) => setImmediate(r));
    assert.equal(physical.handle.container.mappings.length, 2, 'the victim page is mapped for the transfer');
    vmap.unmap();
    assert.equal(physical.handle.container.mappings.length, 1, 'gone from the physical container');
    await done;
    assert.equal(a.bar0.read32(EDU_MEDIATED_DMA_ERROR), constants.errno.ECANCELED);
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(new Uint8Array(victim.buffer).every((x) => x === 0x5a), 'no byte of the unmapped page was written');
    w.sys.munmap(victim);
  } finally {
    a.close();
    w.close();
  }
});

test('removing one vGPU while the other works', { timeout: 30_000 }, async () => {
  const w = world();
  create(w, UUID_A);
  create(w, UUID_B);
  const a = new EduGuest(w.sys, UUID_A, 0x10000n);
  const b = new EduGuest(w.sys, UUID_B, 0x10000n);
  try {
    const busy = (async () => {
      for (let i = 0; i < 6; i++) {
        const { sent, back } = await b.roundTrip(i, 1000 + i);
        assert.deepEqual(back, sent);
      }
    })();
    a.fill(0, 100, 1);
    // A transfer queued behind B's, dropped when A closes under it.
    a.bar0.write32(eduRegs.DMA_SRC, 0x10000);
    a.bar0.write32(eduRegs.DMA_DST, Number(EDU_DMA_BUFFER));
    a.bar0.write32(eduRegs.DMA_COUNT, 100);
    a.bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.IRQ);
    assert.throws(() => w.sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1'), { code: 'EBUSY' });
    a.close();
    w.sys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
    assert.equal(w.sys.sysfs.read(`${TYPES}/available_instances`), '3');
    await busy;
    assert.equal(await b.factorialIrq(10), 3628800);
    // A new vGPU in A's slot starts with a zeroed buffer.
    create(w, UUID_A);
    const c = new EduGuest(w.sys, UUID_A, 0x10000n);
    c.bytes.fill(0xff);
    assert.equal(await c.dma(0x10000n + 4096n, 0, 4095, true), 0);
    assert.ok(c.bytes.subarray(4096, 4096 + 4095).every((x) => x === 0));
    c.close();
  } finally {
    b.close();
    w.close();
  }
});

test('a vGPU\'s own interrupts: IRQ_RAISE by INTx, then the DMA interrupt by INTx after an unmask; the physical edu raises nothing for them', { timeout: 30_000 }, async () => {
  const w = world();
  create(w, UUID_A);
  const a = new EduGuest(w.sys, UUID_A, 0x10000n);
  try {
    const { irqs } = a.handle.device;
    irqs.disable(1);
    irqs.enable(0);
    const before = w.parent.physical.counts.interrupts;
    const raised = irqs.once(0, 0, 5000);
    a.bar0.write32(eduRegs.IRQ_RAISE, 0x40);
    assert.equal(await raised, 1n);
    assert.equal(a.bar0.read32(eduRegs.IRQ_STATUS), 0x40);
    a.bar0.write32(eduRegs.IRQ_ACK, 0x40);
    assert.equal(a.bar0.read32(eduRegs.IRQ_STATUS), 0);
    assert.equal(w.parent.physical.counts.interrupts, before, 'no physical MSI for a virtual raise');
    irqs.unmask(0);
    const dmaDone = irqs.once(0, 0, 5000);
    a.bar0.write32(eduRegs.DMA_SRC, 0x10000);
    a.bar0.write32(eduRegs.DMA_DST, Number(EDU_DMA_BUFFER));
    a.bar0.write32(eduRegs.DMA_COUNT, 64);
    a.bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.IRQ);
    assert.equal(await dmaDone, 1n);
    assert.equal(a.bar0.read32(eduRegs.IRQ_STATUS), 0x100);
    assert.equal(a.bar0.read32(EDU_MEDIATED_DMA_ERROR), 0);
  } finally {
    a.close();
    w.close();
  }
});
