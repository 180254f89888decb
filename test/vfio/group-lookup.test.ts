// Finding a device's IOMMU group through sysfs: a PCI function by address, an mdev (a
// vGPU) by UUID, as the kernel lays them out; and openPciDevice opening either by name
// alone. The mdev here is registered the way the vGPU core's mdev bus does it: its own
// non-IOMMU group, a node under its parent, /sys/bus/mdev/devices/<uuid> linking to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys, type MockSysLayer } from '../../src/sys/mock.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import { Group, openPciDevice } from '../../src/vfio/index.js';
import { createFakeDevice } from './fake-device.js';
import { EDU, fdCount } from './helpers.js';

const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

/** The mock kernel with the edu and one mdev-like device named by UUID. */
function sysWithMdev(): { sys: MockSysLayer; group: number } {
  const sys = createMockSys({ devices: [createEduDevice(EDU)] });
  const { sysfs } = sys.kernel;
  const node = `/sys/devices/virtual/mock-parent/${UUID}`;
  const group = sys.kernel.registerDevice(createFakeDevice(UUID), { iommuBacked: false, sysfsPath: node });
  sysfs.mkdir('/sys/bus/mdev/devices');
  sysfs.addRelativeLink(`/sys/bus/mdev/devices/${UUID}`, node);
  return { sys, group };
}

test('Group.numberOf: a PCI function by address, an mdev by UUID', () => {
  const { sys, group } = sysWithMdev();
  const eduGroup = Number(sys.sysfs.readlink(`/sys/bus/pci/devices/${EDU}/iommu_group`).split('/').pop());
  assert.equal(Group.numberOf(sys, EDU), eduGroup);
  assert.equal(Group.numberOf(sys, UUID), group);
  assert.notEqual(group, eduGroup);
  const opened = Group.forDevice(sys, UUID);
  try {
    assert.equal(opened.number, group);
  } finally {
    opened.close();
  }
});

test('Group.numberOf: one clear ENOENT for a name no bus has, and for a device without a group', () => {
  const { sys } = sysWithMdev();
  const missing = (name: string): RegExp => new RegExp(`no device ${JSON.stringify(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: neither a PCI function \\(/sys/bus/pci/devices/\\) nor an mdev \\(/sys/bus/mdev/devices/\\)`);
  for (const name of ['0000:00:1f.0', '00000000-0000-0000-0000-000000000000', '', '.', '..', '../devices', `${EDU}/..`]) {
    assert.throws(() => Group.numberOf(sys, name), (err: unknown) => {
      const e = err as { code?: string; syscall?: string; message?: string };
      return e.code === 'ENOENT' && e.syscall === 'readlink' && missing(name).test(e.message ?? '');
    }, JSON.stringify(name));
  }
  // A PCI function sysfs knows but with no IOMMU group (no IOMMU, or not for VFIO).
  sys.kernel.sysfs.mkdir('/sys/bus/pci/devices/0000:00:05.0');
  assert.throws(() => Group.numberOf(sys, '0000:00:05.0'), { code: 'ENOENT', message: /\/sys\/bus\/pci\/devices\/0000:00:05\.0 has no iommu_group/ });
});

test('openPciDevice opens an mdev by UUID alone, and leaves nothing open when it is unknown', () => {
  const { sys, group } = sysWithMdev();
  const before = fdCount();
  const handle = openPciDevice(sys, UUID);
  try {
    assert.equal(handle.group.number, group);
    assert.equal(handle.device.name, UUID);
    assert.equal(handle.container.iommuType !== undefined, true);
  } finally {
    handle.close();
  }
  assert.throws(() => openPciDevice(sys, '00000000-0000-0000-0000-000000000000'), { code: 'ENOENT' });
  assert.equal(fdCount(), before);
  // The edu, by address, as ever; both at once in their own containers.
  const edu = openPciDevice(sys, EDU);
  const mdev = openPciDevice(sys, UUID);
  edu.close();
  mdev.close();
  assert.equal(fdCount(), before);
});
