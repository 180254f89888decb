import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { Container, Group } from '../../src/vfio/index.js';
import { extensions } from '../../src/uapi/constants.js';
import { ioctls } from '../../src/uapi/ioctls.js';
import { EDU, ioctlError, mockSys } from './helpers.js';
import { spySys } from './spy-sys.js';

const { EINVAL, EEXIST, EFAULT, EBUSY } = constants.errno;

/** A container with the edu's group attached and TYPE1v2 set. */
function ready(kernel: '6.1' | '6.12' = '6.1') {
  const sys = spySys(mockSys(kernel));
  const container = Container.open(sys);
  const group = Group.forDevice(sys, EDU);
  group.attach(container);
  container.setIommu();
  return { sys, container, group };
}

test('open checks the API version; CHECK_EXTENSION answers like the kernel before SET_IOMMU', () => {
  const container = Container.open(mockSys());
  try {
    assert.equal(container.apiVersion, 0);
    assert.equal(container.checkExtension('VFIO_TYPE1_IOMMU'), true);
    assert.equal(container.checkExtension('VFIO_TYPE1v2_IOMMU'), true);
    assert.equal(container.checkExtension(extensions.VFIO_UNMAP_ALL), true);
    assert.equal(container.checkExtension('VFIO_SPAPR_TCE_IOMMU'), false);
    assert.equal(container.checkExtension('VFIO_UPDATE_VADDR'), false);
    assert.equal(container.checkExtension(999), false);
    assert.equal(container.iommuType, undefined);
  } finally {
    container.close();
  }
});

test('setIommu with no group attached fails EINVAL, named VFIO_SET_IOMMU', () => {
  const container = Container.open(mockSys());
  try {
    assert.throws(() => container.setIommu(), ioctlError('EINVAL', EINVAL, 'VFIO_SET_IOMMU'));
    assert.equal(container.iommuType, undefined);
  } finally {
    container.close();
  }
});

test('setIommu picks TYPE1v2 by default; UPDATE_VADDR is offered after it', () => {
  const { container } = ready();
  try {
    assert.equal(container.iommuType, extensions.VFIO_TYPE1v2_IOMMU);
    assert.equal(container.checkExtension('VFIO_UPDATE_VADDR'), true);
    assert.throws(() => container.setIommu('VFIO_TYPE1_IOMMU'), ioctlError('EINVAL', EINVAL, 'VFIO_SET_IOMMU'));
  } finally {
    container.close();
  }
});

for (const [kernel, total] of [['6.1', 116], ['6.12', 120]] as const) {
  test(`iommuInfo retries with the argsz the kernel asks for (${kernel}: ${total}) and decodes every capability`, () => {
    const { sys, container } = ready(kernel);
    try {
      sys.reset();
      const info = container.iommuInfo();
      const calls = sys.ioctls.filter((c) => c.request === ioctls.VFIO_IOMMU_GET_INFO);
      assert.deepEqual(calls.map((c) => [c.argszIn, c.argszOut]), [[24, total], [total, total]]);
      assert.deepEqual(info, {
        flags: 3,
        pageSizes: 0x40201000n,
        minPageSize: 0x1000n,
        migration: { flags: 0, pgsizeBitmap: 0x1000n, maxDirtyBitmapSize: 256n << 20n },
        dmaAvail: 65535,
        iovaRanges: [{ start: 0n, end: 0xfedfffffn }, { start: 0xfef00000n, end: 0x7fffffffffn }],
      });
    } finally {
      container.close();
    }
  });
}

test('map and unmap: DmaMapping objects, a summary, and the kernel\'s errnos named', () => {
  const { sys, container } = ready();
  const memory = sys.allocate(3 * 4096);
  try {
    const a = container.map({ iova: 0x100000, memory, size: 4096 });
    const b = container.map({ iova: 0x101000n, memory, offset: 4096, write: false });
    assert.equal(a.vaddr, memory.address);
    assert.equal(b.vaddr, memory.address + 4096n);
    assert.equal(b.size, 8192n);
    assert.equal(b.end, 0x102fffn);
    assert.deepEqual([b.read, b.write], [true, false]);
    assert.deepEqual(container.mappings, [a, b]);
    assert.deepEqual(container.dmaSummary(), { count: 2, bytes: 12288n });
    assert.equal(container.iommuInfo().dmaAvail, 65533);

    assert.throws(() => container.map({ iova: 0x101000, memory, size: 4096 }), ioctlError('EEXIST', EEXIST, 'VFIO_IOMMU_MAP_DMA'));
    // TYPE1v2 never splits a mapping.
    assert.throws(() => container.unmap(0x102000, 4096), ioctlError('EINVAL', EINVAL, 'VFIO_IOMMU_UNMAP_DMA'));
    assert.equal(container.mappings.length, 2);

    assert.equal(container.unmap(0x200000, 0x1000), 0n);
    assert.equal(container.unmap(0x100000, 0x3000), 12288n);
    assert.deepEqual(container.mappings, []);
    assert.deepEqual(container.dmaSummary(), { count: 0, bytes: 0n });

    container.map({ iova: 0x100000, memory, size: 4096 });
    const c = container.map({ iova: 0x300000, memory, offset: 8192, size: 4096 });
    assert.equal(c.unmap(), 4096n);
    container.map({ iova: 0x400000, memory });
    assert.equal(container.unmapAll(), 4096n + 12288n);
    assert.deepEqual(container.mappings, []);
    assert.equal(container.iommuInfo().dmaAvail, 65535);
  } finally {
    container.close();
    sys.munmap(memory);
  }
});

test('map refuses memory it cannot vouch for before asking the kernel', () => {
  const { sys, container } = ready();
  const memory = sys.allocate(4096);
  try {
    sys.reset();
    assert.throws(() => container.map({ iova: 0x100000, memory, offset: 4096, size: 4096 }), RangeError);
    assert.throws(() => container.map({ iova: 0x100000, memory, offset: -1 }), RangeError);
    assert.throws(() => container.map({ iova: 0x100000, memory, size: 1.5 }), RangeError);
    assert.equal(sys.ioctls.length, 0);
    sys.munmap(memory);
    assert.throws(() => container.map({ iova: 0x100000, memory }), { code: 'EFAULT', errno: EFAULT, operation: 'VFIO_IOMMU_MAP_DMA' });
    assert.equal(sys.ioctls.length, 0);
  } finally {
    container.close();
  }
});

test('the kernel\'s MAP_DMA refusals come back named: misaligned EINVAL, outside the IOVA ranges EINVAL', () => {
  const { sys, container } = ready();
  const memory = sys.allocate(2 * 4096);
  try {
    assert.throws(() => container.map({ iova: 0x100800, memory, size: 4096 }), ioctlError('EINVAL', EINVAL, 'VFIO_IOMMU_MAP_DMA'));
    assert.throws(() => container.map({ iova: 0xfee00000, memory, size: 4096 }), ioctlError('EINVAL', EINVAL, 'VFIO_IOMMU_MAP_DMA'));
    assert.throws(() => container.map({ iova: 1n << 39n, memory, size: 4096 }), ioctlError('EINVAL', EINVAL, 'VFIO_IOMMU_MAP_DMA'));
    assert.throws(() => container.map({ iova: 0x100000, memory, read: false, write: false }), ioctlError('EINVAL', EINVAL, 'VFIO_IOMMU_MAP_DMA'));
    assert.deepEqual(container.mappings, []);
  } finally {
    container.close();
    sys.munmap(memory);
  }
});

test('detaching the last group drops the IOMMU and every mapping', () => {
  const { sys, container, group } = ready();
  const memory = sys.allocate(4096);
  try {
    container.map({ iova: 0x100000, memory });
    group.detach();
    assert.equal(group.container, undefined);
    assert.equal(container.iommuType, undefined);
    assert.deepEqual(container.mappings, []);
    assert.deepEqual(container.attachedGroups, []);
    assert.equal(group.status().containerSet, false);
    group.attach(container);
    container.setIommu();
    assert.equal(container.iommuInfo().dmaAvail, 65535);
  } finally {
    container.close();
    sys.munmap(memory);
  }
  assert.equal(group.closed, true, 'closing the container closed its group');
});

test('groups: found through sysfs, opened once, status before and after attach, errors named', () => {
  const sys = mockSys();
  const number = Group.numberOf(sys, EDU);
  assert.equal(String(number), sys.sysfs.readlink(`/sys/bus/pci/devices/${EDU}/iommu_group`).split('/').pop());
  const group = Group.open(sys, number);
  const container = Container.open(sys);
  try {
    assert.throws(() => Group.open(sys, number), { code: 'EBUSY', errno: EBUSY });
    assert.deepEqual(group.status(), { flags: 1, viable: true, containerSet: false });
    assert.throws(() => group.openDevice(EDU), ioctlError('EINVAL', EINVAL, 'VFIO_GROUP_GET_DEVICE_FD'));
    assert.throws(() => group.detach(), ioctlError('EINVAL', EINVAL, 'VFIO_GROUP_UNSET_CONTAINER'));
    group.attach(container);
    assert.deepEqual(group.status(), { flags: 3, viable: true, containerSet: true });
    assert.throws(() => group.attach(container), ioctlError('EINVAL', EINVAL, 'VFIO_GROUP_SET_CONTAINER'));
    container.setIommu();
    assert.throws(() => group.openDevice('0000:00:1f.0'), ioctlError('ENODEV', constants.errno.ENODEV, 'VFIO_GROUP_GET_DEVICE_FD'));
    assert.throws(() => group.openDevice(''), ioctlError('ENODEV', constants.errno.ENODEV, 'VFIO_GROUP_GET_DEVICE_FD'));
    const device = group.openDevice(EDU);
    assert.deepEqual(group.devices, [device]);
    assert.throws(() => group.detach(), ioctlError('EBUSY', EBUSY, 'VFIO_GROUP_UNSET_CONTAINER'));
    device.close();
    assert.deepEqual(group.devices, []);
  } finally {
    container.close();
  }
  assert.throws(() => Group.open(sys, 4242), { code: 'ENOENT' });
  assert.throws(() => Group.open(sys, -1), RangeError);
});
