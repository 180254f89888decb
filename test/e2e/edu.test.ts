// QEMU's edu device end to end through the VFIO client API only, on whatever fd layer
// openSys() picks: the mock kernel's simulated edu here, the real one in a QEMU guest
// (VGPU_SYS=native, run by test/kernel). Real edu DMA takes ~100 ms a transfer under
// TCG, so transfers are few and every wait has a generous timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSys } from '../../src/sys/index.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import type { Mapping, SysLayer } from '../../src/sys/types.js';
import { pciIrq } from '../../src/uapi/constants.js';
import { openPciDevice, pciCommand, type PciDeviceHandle, type Region } from '../../src/vfio/index.js';
import {
  EDU_DEVICE, EDU_DMA_BUFFER, EDU_DMA_LIMIT, EDU_ID, EDU_VENDOR, eduDma, eduFactorial, eduRegs,
} from '../../src/vendors/edu/edu-driver.js';

const address = process.env['VGPU_TEST_DEVICE'] ?? '0000:00:04.0';
const TIMEOUT = 10_000;

let sys: SysLayer;
let handle: PciDeviceHandle;
let bar0: Region;
const memory: Mapping[] = [];

function allocate(fill: number): Mapping {
  const m = sys.allocate(sys.pageSize);
  new Uint8Array(m.buffer).fill(fill);
  memory.push(m);
  return m;
}

before(() => {
  // On the mock kernel, simulate the edu at the address under test.
  sys = openSys({ mock: { devices: [createEduDevice(address)] } });
  handle = openPciDevice(sys, address);
  handle.device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
  bar0 = handle.device.bar(0);
});

after(() => {
  handle?.close();
  for (const m of memory) sys.munmap(m);
});

test('the device is edu: config ids 1234:11e8 and id register 0x010000ed', () => {
  assert.equal(handle.device.config.vendorId, EDU_VENDOR);
  assert.equal(handle.device.config.deviceId, EDU_DEVICE);
  assert.equal(bar0.size, 1 << 20);
  assert.equal(bar0.read32(eduRegs.ID), EDU_ID);
});

test('liveness reads back the bitwise NOT of what was written', () => {
  for (const value of [0x12345678, 0, 0xffffffff, 0x80000001]) {
    bar0.write32(eduRegs.LIVENESS, value);
    assert.equal(bar0.read32(eduRegs.LIVENESS), ~value >>> 0);
  }
});

test('factorial, polling status bit 0', { timeout: TIMEOUT * 2 }, async () => {
  assert.equal(await eduFactorial(bar0, 10, TIMEOUT), 3628800);
  assert.equal(await eduFactorial(bar0, 12, TIMEOUT), 479001600);
});

test('DMA round trip through the IOMMU: RAM -> device buffer -> RAM elsewhere', { timeout: TIMEOUT * 3 }, async () => {
  const { container } = handle;
  const src = allocate(0);
  const dst = allocate(0);
  const pattern = new Uint8Array(src.buffer, 0, 600);
  for (let i = 0; i < pattern.byteLength; i++) pattern[i] = (i * 7 + 3) & 0xff;
  const from = container.map({ iova: 0x100000, memory: src, write: false });
  const to = container.map({ iova: 0x180000, memory: dst, read: false });
  assert.ok(to.end < EDU_DMA_LIMIT);
  try {
    await eduDma(bar0, { src: from.iova, dst: EDU_DMA_BUFFER + 0x100n, count: 600, toRam: false }, TIMEOUT);
    await eduDma(bar0, { src: EDU_DMA_BUFFER + 0x100n, dst: to.iova + 0x80n, count: 600, toRam: true }, TIMEOUT);
    const out = new Uint8Array(dst.buffer);
    assert.deepEqual(out.subarray(0x80, 0x80 + 600), pattern);
    assert.ok(out.subarray(0, 0x80).every((b) => b === 0), 'bytes before the transfer untouched');
    assert.ok(out.subarray(0x80 + 600).every((b) => b === 0), 'bytes after the transfer untouched');
  } finally {
    assert.equal(from.unmap(), BigInt(sys.pageSize));
    assert.equal(to.unmap(), BigInt(sys.pageSize));
  }
});

test('DMA to an IOVA that was unmapped leaves memory untouched', { timeout: TIMEOUT * 3 }, async () => {
  const { container } = handle;
  // Put bytes that differ from the victim's fill into the device buffer first.
  const source = allocate(0x55);
  const victim = allocate(0xaa);
  const from = container.map({ iova: 0x300000, memory: source, write: false });
  await eduDma(bar0, { src: from.iova, dst: EDU_DMA_BUFFER, count: 256, toRam: false }, TIMEOUT);
  from.unmap();
  const gone = container.map({ iova: 0x400000, memory: victim });
  assert.equal(gone.unmap(), BigInt(sys.pageSize));
  assert.equal(container.mappings.length, 0);
  await eduDma(bar0, { src: EDU_DMA_BUFFER, dst: 0x400000n, count: 256, toRam: true }, TIMEOUT);
  assert.ok(new Uint8Array(victim.buffer).every((b) => b === 0xaa), 'the IOMMU blocked the write');
});

test('an MSI raised through register 0x60 reaches an eventfd listener', { timeout: TIMEOUT * 2 }, async () => {
  const { irqs } = handle.device;
  const msi = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
  assert.equal(irqs.info(msi)?.count, 1);
  const [fd] = irqs.enable(msi);
  assert.ok(fd !== undefined && fd >= 0);
  try {
    const delivered = irqs.once(msi, 0, TIMEOUT);
    bar0.write32(eduRegs.IRQ_RAISE, 0x5);
    assert.equal(await delivered, 1n);
    assert.equal(bar0.read32(eduRegs.IRQ_STATUS), 0x5);
    bar0.write32(eduRegs.IRQ_ACK, 0x5);
    assert.equal(bar0.read32(eduRegs.IRQ_STATUS), 0);
  } finally {
    irqs.disable(msi);
  }
  assert.equal(irqs.enabled(msi), false);
});

test('INTx fires once, stays masked until unmask, fires again after', { timeout: TIMEOUT * 3 }, async () => {
  const { irqs } = handle.device;
  const intx = pciIrq.VFIO_PCI_INTX_IRQ_INDEX;
  assert.equal(irqs.info(intx)?.automasked, true);
  irqs.enable(intx);
  try {
    const first = irqs.once(intx, 0, TIMEOUT);
    bar0.write32(eduRegs.IRQ_RAISE, 0x1);
    assert.equal(await first, 1n);
    bar0.write32(eduRegs.IRQ_ACK, 0x1);
    irqs.unmask(intx);
    const second = irqs.once(intx, 0, TIMEOUT);
    bar0.write32(eduRegs.IRQ_RAISE, 0x2);
    assert.equal(await second, 1n);
    bar0.write32(eduRegs.IRQ_ACK, 0x2);
    assert.equal(bar0.read32(eduRegs.IRQ_STATUS), 0);
  } finally {
    irqs.disable(intx);
  }
});
