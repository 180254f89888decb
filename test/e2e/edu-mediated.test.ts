// The mediated edu driver end to end on whatever fd layer openSys() picks. The parent
// is the physical edu opened through the VFIO client: in a QEMU guest (VGPU_SYS=native,
// run by test/kernel) the real one, through the addon and Linux's vfio-pci, with real
// VFIO_IOMMU_MAP_DMA into its container and its real MSI. The vGPUs are served
// in-process by the vGPU core on a mock kernel of their own (the mdev bus is the mock's),
// so each vGPU user is a mock-kernel client whose memory is ordinary process memory:
// what the physical device reaches of it is what the driver pinned and mapped for real.
// On the mock, one mock kernel serves both sides. Real edu DMA takes ~100 ms a
// transfer under TCG: the scenario is kept small and waits are generous.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { createMockSys, openSys, type MockSysLayer } from '../../src/sys/index.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import type { SysLayer } from '../../src/sys/types.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { EDU_DMA_BUFFER, EduMediatedParent, eduMediatedDriver, eduDmaCmd, eduRegs, EDU_MEDIATED_DMA_ERROR } from '../../src/vendors/edu/index.js';
import { EduGuest, factorial32, MSI } from '../vendors/edu-mediated-guest.js';
import { measureMediatedDma } from '../../bench/edu-mediated.js';

const address = process.env['VGPU_TEST_DEVICE'] ?? '0000:00:04.0';
const TYPES = `/sys/class/mdev_bus/${address}/mdev_supported_types/edu-mediated`;
const UUID_A = '0e1d2c3b-4a59-4687-8a9b-0000000000a1';
const UUID_B = '0e1d2c3b-4a59-4687-8a9b-0000000000b2';
const TIMEOUT = 120_000;

let sys: SysLayer;
let vsys: MockSysLayer;
let registry: VgpuRegistry;
let parent: EduMediatedParent;
let parentOpen = false;

function closeParent(): void {
  if (!parentOpen) return;
  parentOpen = false;
  registry.removeParent(address);
  parent.close();
}

before(() => {
  sys = openSys({ mock: { devices: [createEduDevice(address)] } });
  vsys = sys.kind === 'mock' ? (sys as MockSysLayer) : createMockSys({ devices: [] });
  registry = new VgpuRegistry();
  registry.registerDriver(eduMediatedDriver);
  attachMockKernel(registry, vsys.kernel);
  parent = EduMediatedParent.open(sys, address);
  parentOpen = true;
  registry.addParent('edu', parent);
  vsys.sysfs.write(`${TYPES}/create`, UUID_A);
  vsys.sysfs.write(`${TYPES}/create`, UUID_B);
});

after(() => closeParent());

test('the parent is the physical edu on this fd layer, offering edu-mediated', () => {
  assert.equal(parent.physical.handle.container.sys.kind, sys.kind);
  assert.equal(parent.physical.handle.device.config.deviceId, 0x11e8);
  assert.equal(vsys.sysfs.read(`${TYPES}/available_instances`), '2');
});

test('two vGPUs: concurrent DMA round trips and factorials, each its own data and interrupts', { timeout: TIMEOUT }, async () => {
  const a = new EduGuest(vsys, UUID_A, 0x100000n);
  const b = new EduGuest(vsys, UUID_B, 0x100000n);
  try {
    const work = async (g: EduGuest, seed: number): Promise<void> => {
      const [{ sent, back }, fact] = await Promise.all([g.roundTrip(seed, 1500 + seed, 64 * seed), g.factorialPoll(6 + seed)]);
      assert.deepEqual(back, sent, `${g.uuid}: its own bytes came back`);
      assert.equal(fact, factorial32(6 + seed));
      const second = await g.roundTrip(seed + 10, 4095);
      assert.deepEqual(second.back, second.sent);
      assert.equal(await g.factorialIrq(8 + seed), factorial32(8 + seed));
    };
    await Promise.all([work(a, 1), work(b, 2)]);
    assert.equal(a.interrupts, 5n, 'A: 4 DMA MSIs and 1 factorial MSI');
    assert.equal(b.interrupts, 5n, 'B: 4 DMA MSIs and 1 factorial MSI');
    assert.equal(parent.physical.counts.vgpu, 8);
    assert.equal(parent.physical.handle.container.mappings.length, 1, 'only the shadow pages stay mapped');
  } finally {
    a.close();
    b.close();
  }
});

test('isolation: an IOVA the vGPU user never mapped fails inside the vGPU and never reaches the physical engine', { timeout: TIMEOUT }, async () => {
  const a = new EduGuest(vsys, UUID_A, 0x100000n);
  try {
    const before = parent.physical.counts.vgpu + parent.physical.counts.save + parent.physical.counts.restore;
    assert.equal(await a.dma(0x8000000n, 0, 256, true), constants.errno.EINVAL, 'buffer -> unmapped RAM');
    assert.equal(await a.dma(0x8000000n, 0, 256, false), constants.errno.EINVAL, 'unmapped RAM -> buffer');
    const ro = vsys.allocate(vsys.pageSize);
    new Uint8Array(ro.buffer).fill(0xaa);
    const roMap = a.handle.container.map({ iova: 0x400000, memory: ro, write: false });
    assert.equal(await a.dma(0x400000n, 0, 256, true), constants.errno.EPERM, 'read-only RAM is not written');
    roMap.unmap();
    assert.ok(new Uint8Array(ro.buffer).every((x) => x === 0xaa));
    vsys.munmap(ro);
    const after = parent.physical.counts.vgpu + parent.physical.counts.save + parent.physical.counts.restore;
    assert.equal(after, before, 'the physical engine ran nothing for them');
    assert.equal(parent.physical.handle.container.mappings.length, 1);
  } finally {
    a.close();
  }
});

test('unmapping the pages of a transfer: nothing stays pinned or mapped in the physical container', { timeout: TIMEOUT }, async () => {
  const a = new EduGuest(vsys, UUID_A, 0x100000n);
  try {
    const victim = vsys.allocate(vsys.pageSize);
    new Uint8Array(victim.buffer).fill(0x5a);
    const vmap = a.handle.container.map({ iova: 0x300000, memory: victim });
    const done = a.handle.device.irqs.once(MSI, 0, TIMEOUT);
    a.bar0.write32(eduRegs.DMA_SRC, Number(EDU_DMA_BUFFER));
    a.bar0.write32(eduRegs.DMA_DST, 0x300000);
    a.bar0.write32(eduRegs.DMA_COUNT, 512);
    a.bar0.write32(eduRegs.DMA_CMD, eduDmaCmd.START | eduDmaCmd.TO_RAM | eduDmaCmd.IRQ);
    const physical = parent.physical;
    const started = physical.counts.vgpu;
    while (physical.counts.vgpu === started) await new Promise((r) => setTimeout(r, 1));
    vmap.unmap();
    assert.equal(physical.handle.container.mappings.length, 1, 'the page left the physical container with the unmap');
    await done;
    const error = a.bar0.read32(EDU_MEDIATED_DMA_ERROR);
    // The real engine finishes the transfer before dma_unmap returns; the mock's is cut off.
    const bytes = new Uint8Array(victim.buffer);
    if (sys.kind === 'native') {
      assert.equal(error, 0);
      assert.ok(bytes.subarray(0, 512).every((x) => x === 0), 'the vGPU\'s fresh buffer (zeros) landed');
      assert.ok(bytes.subarray(512).every((x) => x === 0x5a));
    } else {
      assert.equal(error, constants.errno.ECANCELED);
      await new Promise((r) => setTimeout(r, 20));
      assert.ok(bytes.every((x) => x === 0x5a), 'no byte written after the unmap');
    }
    vsys.munmap(victim);
  } finally {
    a.close();
  }
});

test('removing one vGPU while the other keeps working', { timeout: TIMEOUT }, async () => {
  const a = new EduGuest(vsys, UUID_A, 0x100000n);
  const b = new EduGuest(vsys, UUID_B, 0x100000n);
  try {
    const busy = (async () => {
      for (let i = 0; i < 2; i++) {
        const { sent, back } = await b.roundTrip(20 + i, 777 + i);
        assert.deepEqual(back, sent);
      }
      return b.factorialIrq(10);
    })();
    assert.equal(await a.factorialPoll(7), 5040);
    assert.throws(() => vsys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1'), { code: 'EBUSY' });
    a.close();
    vsys.sysfs.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
    assert.equal(vsys.sysfs.read(`${TYPES}/available_instances`), '3');
    assert.equal(await busy, 3628800);
  } finally {
    a.close();
    b.close();
  }
});

test('DMA throughput through a vGPU against direct use of the physical edu (bench/edu-mediated.ts)', { timeout: TIMEOUT }, async (t) => {
  closeParent(); // direct use needs the device's group: the driver lets it go first
  const f = await measureMediatedDma(sys, address, sys.kind === 'native' ? 20 : 100);
  const line = `edu-mediated bench (${sys.kind}): ${f.transfers} transfers of 4095 bytes (alternating directions): direct ${(f.direct / 1e3).toFixed(1)} kB/s, `
    + `mediated ${(f.mediated / 1e3).toFixed(1)} kB/s, ratio ${f.ratio.toFixed(3)}; MSI physical -> vGPU listener `
    + `median ${f.latencyMedianUs.toFixed(0)} us, p99 ${f.latencyP99Us.toFixed(0)} us`;
  t.diagnostic(line);
  process.stderr.write(`${line}\n`);
  assert.ok(f.direct > 0 && f.mediated > 0 && Number.isFinite(f.latencyMedianUs));
  // The ratio is reported, not asserted: speed belongs to bench/edu-mediated.ts, and a
  // bar here failed guests on a loaded machine (0.59-0.78 at load 12, 0.9+ when idle).
});
