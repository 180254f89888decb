import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPciDevice, pciCommand } from '../../src/vfio/index.js';
import { pciIrq } from '../../src/uapi/constants.js';
import type { SysLayer } from '../../src/sys/types.js';
import { EDU, fdCount, mockSys } from './helpers.js';

/** Everything the API can hold open: mmaps, DMA mappings, eventfds, watchers. */
async function fullCycle(sys: SysLayer): Promise<void> {
  const handle = openPciDevice(sys, EDU);
  const memory = sys.allocate(2 * sys.pageSize);
  try {
    const { device, container } = handle;
    device.config.enable(pciCommand.MEMORY | pciCommand.MASTER);
    const bar0 = device.bar(0);
    const mapping = bar0.mmap();
    container.map({ iova: 0x100000, memory });
    container.map({ iova: 0x200000, memory: mapping, size: sys.pageSize }); // peer to peer
    device.irqs.enable(pciIrq.VFIO_PCI_MSI_IRQ_INDEX);
    device.irqs.on(pciIrq.VFIO_PCI_MSI_IRQ_INDEX, 0, () => {});
    const fired = device.irqs.once(pciIrq.VFIO_PCI_MSI_IRQ_INDEX, 0, 2000);
    bar0.write32(0x60, 1);
    await fired;
    assert.equal(container.dmaSummary().count, 2);
  } finally {
    handle.close();
    sys.munmap(memory);
  }
}

test('a full open/use/close cycle leaks no fd (counted in /proc/self/fd)', async () => {
  const sys = mockSys();
  await fullCycle(sys); // the first cycle may open what the mock keeps for its lifetime
  const before = fdCount();
  for (let i = 0; i < 3; i++) await fullCycle(sys);
  assert.equal(fdCount(), before);
});

test('closing the container first still closes device and group fds in order', () => {
  const sys = mockSys();
  const before = fdCount();
  const handle = openPciDevice(sys, EDU);
  assert.equal(fdCount(), before + 3);
  handle.container.close();
  assert.equal(handle.device.closed, true);
  assert.equal(handle.group.closed, true);
  assert.equal(fdCount(), before);
  handle.close();
  assert.equal(fdCount(), before);
});

test('the group can be reopened once everything is closed', () => {
  const sys = mockSys();
  openPciDevice(sys, EDU).close();
  const again = openPciDevice(sys, EDU);
  assert.equal(again.device.bar(0).size, 1 << 20);
  again.close();
});
