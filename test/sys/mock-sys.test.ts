// createMockSys's defaults and openSys's choice of fd layer.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { openSys } from '../../src/sys/index.js';
import { createMockSys } from '../../src/sys/mock.js';
import { fakePciDevice } from './mock-helpers.js';

describe('createMockSys', () => {
  it('adds the simulated edu at 0000:00:04.0 by default, in group 0', () => {
    const sys = createMockSys();
    assert.equal(sys.kind, 'mock');
    assert.deepEqual(sys.kernel.deviceNames(), ['0000:00:04.0']);
    assert.equal(sys.sysfs.readlink('/sys/bus/pci/devices/0000:00:04.0/iommu_group'), '../../../kernel/iommu_groups/0');
    assert.equal(sys.sysfs.read('/sys/bus/pci/devices/0000:00:04.0/device'), '0x11e8');
    assert.equal(sys.kernel.flavour, '6.1');
  });

  it('takes a device list (with group numbers) instead, and a flavour', () => {
    const sys = createMockSys({ kernel: '6.12', devices: [{ device: fakePciDevice('0000:00:06.0'), group: 12 }] });
    assert.deepEqual(sys.kernel.deviceNames(), ['0000:00:06.0']);
    assert.equal(sys.kernel.groupOf('0000:00:06.0'), 12);
    assert.equal(sys.kernel.flavour, '6.12');
    assert.deepEqual(createMockSys({ devices: [] }).kernel.deviceNames(), []);
  });

  it('refuses bad options and bad devices with clear errors', () => {
    assert.throws(() => createMockSys({ kernel: '5.10' as '6.1' }), TypeError);
    assert.throws(() => createMockSys({ dmaEntryLimit: -1 }), TypeError);
    assert.throws(() => createMockSys({ devices: [fakePciDevice('0:0:4.0')] }), TypeError);
    const sys = createMockSys({ devices: [] });
    sys.kernel.registerPciDevice(fakePciDevice('0000:00:04.0'));
    assert.throws(() => sys.kernel.registerPciDevice(fakePciDevice('0000:00:04.0')), { code: 'EEXIST' });
  });
});

describe('openSys', () => {
  it('follows the kind option, then VGPU_SYS, then /dev/vfio/vfio', () => {
    const saved = process.env['VGPU_SYS'];
    try {
      assert.equal(openSys({ kind: 'mock' }).kind, 'mock');
      process.env['VGPU_SYS'] = 'mock';
      assert.equal(openSys().kind, 'mock');
      process.env['VGPU_SYS'] = 'native';
      assert.equal(openSys().kind, 'native');
      assert.equal(openSys({ kind: 'mock' }).kind, 'mock', 'the option wins over the environment');
      process.env['VGPU_SYS'] = 'qemu';
      assert.throws(() => openSys(), /VGPU_SYS/);
      delete process.env['VGPU_SYS'];
      assert.equal(openSys().kind, existsSync('/dev/vfio/vfio') ? 'native' : 'mock');
    } finally {
      if (saved === undefined) delete process.env['VGPU_SYS'];
      else process.env['VGPU_SYS'] = saved;
    }
  });
});
