// /dev/vfio/vfio on the mock kernel: API version, extensions, SET_IOMMU, and the IOMMU
// going away with the last group.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extensions, ioctls, vfio_iommu_type1_info } from '../../src/uapi/index.js';
import { assertErrno, fdArg, mapArg, mockWithDevices, openContainer, TYPE1, TYPE1v2 } from './mock-helpers.js';

const ext = extensions;

function dmaAvail(sys: ReturnType<typeof mockWithDevices>['sys'], container: number): number {
  const info = new Uint8Array(256);
  vfio_iommu_type1_info.write(info, { argsz: 256 });
  sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, info);
  return new DataView(info.buffer).getUint32(56 + 8, true);
}

describe('mock container', () => {
  it('GET_API_VERSION is 0', () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    assert.equal(sys.ioctl(c, ioctls.VFIO_GET_API_VERSION), 0);
    sys.close(c);
  });

  it('CHECK_EXTENSION before and after SET_IOMMU', () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    const before = (e: number) => sys.ioctl(c, ioctls.VFIO_CHECK_EXTENSION, e);
    assert.deepEqual(
      [ext.VFIO_TYPE1_IOMMU, ext.VFIO_TYPE1v2_IOMMU, ext.VFIO_TYPE1_NESTING_IOMMU, ext.VFIO_UNMAP_ALL,
        ext.VFIO_UPDATE_VADDR, ext.VFIO_DMA_CC_IOMMU, ext.VFIO_SPAPR_TCE_IOMMU, ext.VFIO_NOIOMMU_IOMMU, 99].map(before),
      [1, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert.equal(sys.ioctl(c, ioctls.VFIO_CHECK_EXTENSION), 0);
    const g = sys.open('/dev/vfio/0');
    sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c));
    sys.ioctl(c, ioctls.VFIO_SET_IOMMU, TYPE1v2);
    assert.equal(sys.ioctl(c, ioctls.VFIO_CHECK_EXTENSION, ext.VFIO_UPDATE_VADDR), 1);
    assert.equal(sys.ioctl(c, ioctls.VFIO_CHECK_EXTENSION, ext.VFIO_TYPE1_IOMMU), 1);
    assert.equal(sys.ioctl(c, ioctls.VFIO_CHECK_EXTENSION, ext.VFIO_DMA_CC_IOMMU), 0);
    sys.close(g);
    sys.close(c);
  });

  it('SET_IOMMU: no group EINVAL, unsupported ENODEV, NESTING EINVAL, twice EINVAL', () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, TYPE1v2), 'EINVAL');
    const g = sys.open('/dev/vfio/0');
    sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c));
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, ext.VFIO_SPAPR_TCE_IOMMU), 'ENODEV');
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, ext.VFIO_NOIOMMU_IOMMU), 'ENODEV');
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, 0), 'ENODEV');
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, ext.VFIO_TYPE1_NESTING_IOMMU), 'EINVAL');
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, ext.VFIO_UNMAP_ALL), 'EINVAL');
    assert.equal(sys.ioctl(c, ioctls.VFIO_SET_IOMMU, TYPE1), 0);
    assertErrno(() => sys.ioctl(c, ioctls.VFIO_SET_IOMMU, TYPE1v2), 'EINVAL');
    sys.close(g);
    sys.close(c);
  });

  it('other ioctls: EINVAL before SET_IOMMU, ENOTTY after; IOMMU numbers are IOMMU ioctls', () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    for (const req of [ioctls.VFIO_IOMMU_GET_INFO, ioctls.VFIO_IOMMU_MAP_DMA, ioctls.VFIO_GROUP_GET_STATUS, 0x3b99, 0x1234]) {
      assertErrno(() => sys.ioctl(c, req, new Uint8Array(64)), 'EINVAL');
    }
    const g = sys.open('/dev/vfio/0');
    sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c));
    sys.ioctl(c, ioctls.VFIO_SET_IOMMU, TYPE1v2);
    for (const req of [ioctls.VFIO_GROUP_GET_STATUS, ioctls.VFIO_DEVICE_GET_INFO, ioctls.VFIO_IOMMU_ENABLE, ioctls.VFIO_IOMMU_DISABLE, 0x3b99, 0x1234]) {
      assertErrno(() => sys.ioctl(c, req, new Uint8Array(64)), 'ENOTTY');
    }
    // 0x3b70 on a container is IOMMU_GET_INFO (on a device fd it would be PCI_HOT_RESET_INFO).
    assert.equal(ioctls.VFIO_IOMMU_GET_INFO, ioctls.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO);
    assert.equal(dmaAvail(sys, c), 65535);
    sys.close(g);
    sys.close(c);
  });

  it('removing the last group drops the IOMMU and every mapping', () => {
    const { sys } = mockWithDevices();
    const mem = sys.allocate(8192);
    const { container, group } = openContainer(sys, 0);
    const g2 = sys.open('/dev/vfio/1');
    sys.ioctl(g2, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
    sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0x10000n, 8192n));
    assert.equal(sys.kernel.locked.lockedPages, 2);
    assert.equal(dmaAvail(sys, container), 65534);
    sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER);
    assert.equal(dmaAvail(sys, container), 65534, 'one group left: the IOMMU and its mapping stay');
    sys.close(g2); // closing the last group's fd detaches it too
    assert.equal(sys.kernel.locked.lockedPages, 0);
    assertErrno(() => sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, new Uint8Array(64)), 'EINVAL');
    assert.equal(sys.ioctl(container, ioctls.VFIO_CHECK_EXTENSION, extensions.VFIO_UPDATE_VADDR), 0);
    sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container));
    sys.ioctl(container, ioctls.VFIO_SET_IOMMU, TYPE1v2);
    assert.equal(dmaAvail(sys, container), 65535, 'a fresh IOMMU has no mappings');
    sys.close(group);
    sys.close(container);
    sys.munmap(mem);
  });

  it('closing the container fd leaves the container to its groups', () => {
    const { sys } = mockWithDevices();
    const mem = sys.allocate(4096);
    const { container, group } = openContainer(sys, 0);
    sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0n, 4096n));
    sys.close(container);
    assert.equal(sys.kernel.locked.lockedPages, 1, 'the group keeps the IOMMU alive');
    const status = new Uint8Array(8);
    new DataView(status.buffer).setUint32(0, 8, true);
    sys.ioctl(group, ioctls.VFIO_GROUP_GET_STATUS, status);
    assert.equal(new DataView(status.buffer).getUint32(4, true), 3);
    sys.close(group);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    sys.munmap(mem);
  });
});
