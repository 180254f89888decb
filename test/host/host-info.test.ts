// `info`: a vGPU nobody holds (opened, read, closed), a vGPU in use with live DMA
// mappings (what the model and the kernel know), the simulated edu by its PCI address.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createHost, type Host } from '../../src/host/host.js';
import { parseBdf } from '../../src/host/info.js';
import { createMockSys, type MockSysLayer } from '../../src/sys/index.js';
import { openPciDevice } from '../../src/vfio/index.js';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';

let root: string;
let sys: MockSysLayer;
let host: Host;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'vgpu-info-'));
  sys = createMockSys(); // the edu at 0000:00:04.0, group 0
  host = createHost({ sys, definitionsRoot: root });
});

afterEach(async () => {
  await host.close();
  rmSync(root, { recursive: true, force: true });
});

describe('info', () => {
  it('reads a free vGPU through the VFIO client and closes it again', async () => {
    await host.start({ parent: 'simgpu0', type: 'simgpu-1Q', uuid: A });
    const fdsBefore = sys.kernel.fds.fds().length;
    const group = sys.kernel.groupOf(A)!;
    const report = await host.info(A);
    assert.equal(report.name, A);
    assert.deepEqual(report.lines, [
      `${A}: simgpu-1Q on simgpu0, IOMMU group ${group}`,
      'VFIO device: PCI|RESET, 9 regions, 5 interrupt indexes',
      'Regions:',
      '  BAR0 4 KiB rw at offset 0x0',
      '  BAR1 1 GiB rw mmap at offset 0x10000000000',
      '  CONFIG 4 KiB rw at offset 0x70000000000',
      'Interrupts:',
      '  INTx: 1 vector (eventfd maskable automasked)',
      '  MSI: 1 vector (eventfd noresize)',
      '  MSI-X: 0 vectors (eventfd noresize)',
      '  ERR: 1 vector (eventfd noresize)',
      '  REQ: 1 vector (eventfd noresize)',
      'Config space:',
      '  VGA compatible controller [0300]: Device 1234:5347 (rev 01)',
      '  Subsystem: Device 1234:000e',
      '  Control: I/O- Mem+ BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-',
      '  Status: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
      '  Interrupt: pin A routed to IRQ 0',
      '  Region 0: Memory at <unassigned> (32-bit, non-prefetchable) [size=4K]',
      '  Region 1: Memory at <unassigned> (64-bit, prefetchable) [size=1G]',
      '  Capabilities: [84] MSI: Enable- Count=1/1 Maskable+ 64bit+',
      '  \tAddress: 0000000000000000  Data: 0000',
      '  Capabilities: [7c] Power Management version 3',
      '  \tStatus: D0 NoSoftRst+ PME-Enable-',
      '  Capabilities: [40] Express (v2) Endpoint',
      '  \tDevCtl: CorrErr- NonFatalErr- FatalErr- UnsupReq-',
      'DMA mappings: none (nobody has the device open)',
    ]);
    assert.equal(host.registry.get(A)!.isOpen, false);
    assert.equal(sys.kernel.fds.fds().length, fdsBefore);
    await host.stop(A); // nothing of info's open is left holding it
  });

  it('shows what the model and the kernel know of a vGPU in use, with its live DMA mappings', async () => {
    await host.start({ parent: 'simgpu0', type: 'simgpu-1Q', uuid: A });
    const user = openPciDevice(sys, A);
    const memory = sys.allocate(2 * sys.pageSize);
    try {
      user.container.map({ iova: 0x100000, memory });
      user.container.map({ iova: 0x200000, memory, size: sys.pageSize, write: false });
      const { lines } = await host.info(A);
      assert.equal(lines[1], '  in use: its IOMMU group is open by another user (EBUSY); config space is not read while another user holds the device');
      assert.equal(lines[2], 'Model: 1234:5347 VGA compatible controller [0300] (rev 01), subsystem 1234:000e');
      assert.equal(lines[3], '  BAR0 4 KiB memory32, trapped 4 KiB at 0x0');
      assert.equal(lines[4], '  BAR1 1 GiB memory64 prefetchable, mapped 1 GiB at 0x0');
      assert.equal(lines[5], '  interrupts: INTx, MSI 1');
      const vaddr = memory.address.toString(16);
      assert.deepEqual(lines.slice(6), [
        'DMA mappings (2):',
        `  iova 0x000000100000-0x000000101fff     8 KiB rw vaddr 0x${vaddr}`,
        `  iova 0x000000200000-0x000000200fff     4 KiB r- vaddr 0x${vaddr}`,
      ]);
    } finally {
      user.close();
      sys.munmap(memory);
    }
  });

  it('reads the simulated edu by its PCI address, long or short', async () => {
    const { name, lines } = await host.info('00:04.0');
    assert.equal(name, '0000:00:04.0');
    assert.equal(lines[0], '0000:00:04.0: 1234:11e8 Unclassified device [00ff], IOMMU group 0');
    assert.ok(lines.includes('  BAR0 1 MiB rw mmap at offset 0x0'));
    assert.ok(lines.includes('  Unclassified device [00ff]: Device 1234:11e8 (rev 10)'));
    assert.ok(lines.includes('  Region 0: Memory at fea00000 (32-bit, non-prefetchable) [size=1M]'));
    assert.ok(lines.includes('  Capabilities: [40] MSI: Enable- Count=1/1 Maskable- 64bit+'));
    assert.equal(lines.at(-1), 'DMA mappings: none (nobody has the device open)');
    assert.deepEqual((await host.info('0000:00:04.0')).lines, lines);
  });

  it('says the edu is in use, with its container\'s mappings, while a user holds it', async () => {
    const user = openPciDevice(sys, '0000:00:04.0');
    const memory = sys.allocate(sys.pageSize);
    try {
      user.container.map({ iova: 0x10000, memory });
      const { lines } = await host.info('0000:00:04.0');
      assert.deepEqual(lines.slice(1), [
        '  in use: its IOMMU group is open by another user (EBUSY); config space is not read while another user holds the device',
        'DMA mappings (1):',
        `  iova 0x000000010000-0x000000010fff     4 KiB rw vaddr 0x${memory.address.toString(16)}`,
      ]);
    } finally {
      user.close();
      sys.munmap(memory);
    }
  });

  it('refuses what is neither a running device nor a PCI address', async () => {
    await assert.rejects(host.info(A), { code: 'ENODEV', message: `device ${A} is not running` });
    await assert.rejects(host.info('0000:00:05.0'), { code: 'ENODEV', message: 'no PCI device 0000:00:05.0' });
    await assert.rejects(host.info('gpu'), { code: 'EINVAL', message: 'not a UUID or a PCI address: "gpu"' });
    assert.equal(parseBdf('0000:0A:1f.7'), '0000:0a:1f.7');
    assert.equal(parseBdf('00:20.0'), undefined);
  });
});
