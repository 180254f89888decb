import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { openPciDevice } from '../../src/vfio/index.js';
import { pciIrq } from '../../src/uapi/constants.js';
import { EDU, mockSys } from './helpers.js';

test('inspect gives a one-screen summary of each object', () => {
  const sys = mockSys();
  const handle = openPciDevice(sys, EDU);
  const memory = sys.allocate(sys.pageSize);
  try {
    const { device, group, container } = handle;
    assert.equal(inspect(device),
      'Device 0000:00:04.0 [1234:11e8] 9 regions: BAR0 1 MiB rw mmap, CONFIG 256 B rw; irqs: INTx 1, MSI 1, REQ 1');
    device.irqs.enable(pciIrq.VFIO_PCI_MSI_IRQ_INDEX);
    assert.match(inspect(device), /; irqs: INTx 1, MSI 1 on, REQ 1$/);
    assert.equal(inspect(device.irqs), 'Irqs INTx 1, MSI 1 (enabled, 1 bound), MSI-X 0, REQ 1');
    assert.equal(inspect(device.bar(0)), 'Region BAR0 1 MiB rw mmap at fd offset 0x0');
    assert.equal(inspect(device.bar(1)), 'Region BAR1 unimplemented at fd offset 0x10000000000');
    assert.equal(inspect(group), `Group ${group.number} fd ${group.fd} viable, container set, devices [0000:00:04.0]`);
    assert.equal(inspect(container), `Container fd ${container.fd} TYPE1v2, groups [${group.number}], 0 DMA mappings (0 B)`);
    const dma = container.map({ iova: 0x100000, memory, write: false });
    const vaddr = `0x${memory.address.toString(16)}`;
    assert.equal(inspect(dma), `DmaMapping iova 0x100000-0x100fff (4 KiB) r- -> vaddr ${vaddr}`);
    assert.equal(inspect(container), `Container fd ${container.fd} TYPE1v2, groups [${group.number}], 1 DMA mapping (4 KiB)\n  ${inspect(dma)}`);
    const mapping = device.bar(0).mmap({ offset: 0x1000, size: 0x1000 });
    assert.equal(inspect(mapping), `RegionMapping BAR0+0x1000 4 KiB at 0x${mapping.address.toString(16)}`);
    assert.match(inspect(device.config), /^PciConfig 1234:11e8 rev 0x10 class 0x00ff00 command 0x\w{4} status 0x\w{4} caps \[MSI@0x\w{2}\]$/);
    assert.equal(inspect(handle), [inspect(device), `  ${inspect(group)}`, `  ${inspect(container)}`].join('\n'));
    handle.close();
    assert.equal(inspect(device), 'Device 0000:00:04.0 (closed)');
    assert.equal(inspect(group), `Group ${group.number} (closed)`);
    assert.equal(inspect(container), 'Container (closed)');
    assert.equal(inspect(mapping), 'RegionMapping BAR0+0x1000 (unmapped)');
  } finally {
    handle.close();
    sys.munmap(memory);
  }
});
