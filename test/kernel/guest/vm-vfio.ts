// Runs inside the vm guest (vm-vfio phase): the simgpu vGPU, attached by QEMU over
// vfio-user and bound to the guest's own vfio-pci in its own IOMMU group, driven by the
// project's simgpu guest driver through Linux's real VFIO (VGPU_SYS=native): a batch
// whose DMA goes through the guest's IOMMU (QEMU turns the guest's mappings into
// DMA_MAP messages to our server), its MSI delivered into the guest, and DMA to IOVAs
// the guest never mapped (or unmapped) failing inside the vGPU with guest memory
// untouched. Not a *.test.ts: it runs only in the guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { createNativeSys } from '../../../src/sys/native.js';
import { pciIrq } from '../../../src/uapi/constants.js';
import { SimGpuGuest } from '../../../src/vendors/simgpu/guest.js';
import { SimGpuError, SimGpuInt, SimGpuOp } from '../../../src/vendors/simgpu/registers.js';
import { reportFigure } from './ask-host.js';

const device = process.env['VGPU_TEST_DEVICE'] ?? '0000:00:06.0';
/** What vfio_pin_pages answers for an IOVA with no mapping, and so the vGPU's DMA fault. */
const unmapped = { code: SimGpuError.DMA_FAULT, index: 0, errno: 22 /* EINVAL */ };

function withGuest(fn: (guest: SimGpuGuest) => Promise<void>): Promise<void> {
  const guest = SimGpuGuest.open(createNativeSys(), device);
  return fn(guest).finally(() => guest.close());
}

test(`${device} is the simgpu vGPU, bound to the guest's vfio-pci in an IOMMU group of its own`, () => {
  const sysfs = `/sys/bus/pci/devices/${device}`;
  assert.equal(basename(readlinkSync(`${sysfs}/driver`)), 'vfio-pci');
  const group = readlinkSync(`${sysfs}/iommu_group`);
  assert.match(basename(group), /^\d+$/);
  assert.deepEqual(readdirSync(`${sysfs}/iommu_group/devices`), [device], 'alone in its group');
});

test('the simgpu guest driver opens the vGPU by its PCI address through Linux VFIO: identity registers', () => withGuest(async (guest) => {
  assert.deepEqual(guest.info, { typeId: 12, framebufferSize: 512 * 1024 * 1024, heads: 2, maxWidth: 2560, maxHeight: 1600 });
}));

test('FILL, COPY, BLIT_TO_FB and FENCE in one batch: DMA through the guest IOMMU, completion by MSI into the guest', () => withGuest(async (guest) => {
  const src = guest.allocate(2 * 4096, 0x100000n);
  const dst = guest.allocate(2 * 4096, 0x200000n);
  const fence = guest.allocate(4096, 0x300000n);
  let interrupts = 0n;
  const listener = guest.device.irqs.on(pciIrq.VFIO_PCI_MSI_IRQ_INDEX, 0, (n) => { interrupts += n; });
  const start = performance.now();
  const result = await guest.submit([
    { op: SimGpuOp.FILL, length: 4096, dst: src.iova, src: 0x44332211n },
    { op: SimGpuOp.COPY, length: 3000, dst: dst.iova + 100n, src: src.iova + 4n },
    { op: SimGpuOp.BLIT_TO_FB, length: 4096, dst: 0x1000n, src: src.iova },
    { op: SimGpuOp.FENCE, length: 8, dst: fence.iova, src: 0x77n },
  ]);
  const ms = performance.now() - start;
  listener.close();
  reportFigure('simgpu-batch-ms', ms.toFixed(1));
  assert.deepEqual(result, { intStatus: SimGpuInt.DONE, completed: 4, fence: 0x77 });
  assert.ok(interrupts >= 1n, 'the MSI reached the guest\'s eventfd');
  assert.deepEqual([...src.bytes.subarray(0, 8)], [0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x33, 0x44]);
  assert.deepEqual(dst.bytes.subarray(100, 3100), src.bytes.subarray(4, 3004));
  assert.equal(new DataView(fence.bytes.buffer, fence.bytes.byteOffset).getBigUint64(0, true), 0x77n);
  const fb = guest.mapFramebuffer(0, 0x2000);
  assert.deepEqual(fb.bytes.subarray(0x1000, 0x2000), src.bytes.subarray(0, 4096), 'the blit, seen through BAR1\'s mmap');
}));

test('a FILL to an IOVA the guest never mapped fails inside the vGPU (a DMA fault, EINVAL as vfio_pin_pages); guest memory untouched', () => withGuest(async (guest) => {
  const buf = guest.allocate(4096, 0x400000n);
  buf.bytes.fill(0x5a);
  const result = await guest.fill(0x7000000n, 4096, 0x11111111);
  assert.deepEqual(result.error, unmapped);
  assert.ok(buf.bytes.every((b) => b === 0x5a));
  // The vGPU goes on working after the fault.
  const ok = await guest.fill(buf.iova, 64, 0x01010101);
  assert.equal(ok.error, undefined);
  assert.ok(buf.bytes.subarray(0, 64).every((b) => b === 1));
}));

test('after the guest unmaps a buffer, DMA to it fails inside the vGPU; its bytes stay as they were', () => withGuest(async (guest) => {
  const buf = guest.allocate(4096, 0x500000n);
  buf.bytes.fill(0xa5);
  assert.equal(buf.unmapDma(), 4096n);
  const result = await guest.fill(0x500000n, 4096, 0x22222222);
  assert.deepEqual(result.error, unmapped);
  assert.ok(buf.bytes.every((b) => b === 0xa5));
}));
