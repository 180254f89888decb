// /dev/vfio/<N> on the mock kernel: exclusive open, status, containers, device fds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ioctls } from '../../src/uapi/index.js';
import { assertErrno, fdArg, mapArg, mockWithDevices, nameArg, openContainer, TYPE1v2 } from './mock-helpers.js';

function status(sys: ReturnType<typeof mockWithDevices>['sys'], group: number, argsz = 8): number {
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setUint32(0, argsz, true);
  sys.ioctl(group, ioctls.VFIO_GROUP_GET_STATUS, buf);
  return new DataView(buf.buffer).getUint32(4, true);
}

describe('mock group', () => {
  it('a second open is EBUSY until the first closes', () => {
    const { sys } = mockWithDevices();
    const g = sys.open('/dev/vfio/0');
    assertErrno(() => sys.open('/dev/vfio/0'), 'EBUSY');
    const other = sys.open('/dev/vfio/1');
    sys.close(g);
    const again = sys.open('/dev/vfio/0');
    sys.close(again);
    sys.close(other);
  });

  it('GET_STATUS: argsz < 8 EINVAL, short buffer or integer EFAULT, flags 1 / 3 / 1', () => {
    const { sys } = mockWithDevices();
    const g = sys.open('/dev/vfio/0');
    const c = sys.open('/dev/vfio/vfio');
    assertErrno(() => status(sys, g, 7), 'EINVAL');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_GET_STATUS, new Uint8Array(7)), 'EFAULT');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_GET_STATUS, 0), 'EFAULT');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_GET_STATUS), 'EFAULT');
    assert.equal(status(sys, g), 1);
    sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c));
    assert.equal(status(sys, g), 3);
    sys.ioctl(g, ioctls.VFIO_GROUP_UNSET_CONTAINER);
    assert.equal(status(sys, g), 1);
    sys.close(c);
    sys.close(g);
  });

  it('SET_CONTAINER errors: EFAULT, EBADF, EINVAL for a non-container on 6.1, already set EINVAL', () => {
    const { sys } = mockWithDevices();
    const g = sys.open('/dev/vfio/0');
    const g1 = sys.open('/dev/vfio/1');
    const c = sys.open('/dev/vfio/vfio');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, c), 'EFAULT');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, new Uint8Array(3)), 'EFAULT');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(-1)), 'EBADF');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(4000)), 'EBADF');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(g1)), 'EINVAL');
    const closed = sys.open('/dev/vfio/vfio');
    sys.close(closed);
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(closed)), 'EBADF');
    sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c));
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c)), 'EINVAL');
    // Already set comes before "not a container" (the kernel checks in that order).
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(g1)), 'EINVAL');
    sys.close(c);
    sys.close(g1);
    sys.close(g);
  });

  it('SET_CONTAINER with a non-container fd is EBADFD on 6.12', () => {
    const { sys } = mockWithDevices({ kernel: '6.12' });
    const g = sys.open('/dev/vfio/0');
    const g1 = sys.open('/dev/vfio/1');
    const devnull = sys.open('/dev/null');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(g1)), 'EBADFD');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(devnull)), 'EBADFD');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(4000)), 'EBADF');
    sys.close(devnull);
    sys.close(g1);
    sys.close(g);
  });

  it('a second group may join a container that already has an IOMMU', () => {
    const { sys } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const g1 = sys.open('/dev/vfio/1');
    assert.equal(sys.ioctl(g1, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 0);
    assert.equal(status(sys, g1), 3);
    const dev = sys.ioctl(g1, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:05.0'));
    sys.close(dev);
    sys.close(g1);
    sys.close(group);
    sys.close(container);
  });

  it('UNSET_CONTAINER: none EINVAL, EBUSY while a device fd is open', () => {
    const { sys } = mockWithDevices();
    const g1 = sys.open('/dev/vfio/1');
    assertErrno(() => sys.ioctl(g1, ioctls.VFIO_GROUP_UNSET_CONTAINER), 'EINVAL');
    sys.close(g1);
    const { container, group } = openContainer(sys, 0);
    const dev = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
    assertErrno(() => sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER), 'EBUSY');
    sys.close(dev);
    assert.equal(sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER), 0);
    sys.close(group);
    sys.close(container);
  });

  it('GET_DEVICE_FD: ENODEV for unknown names, EINVAL without container or IOMMU, EFAULT without NUL', () => {
    const { sys } = mockWithDevices();
    const g = sys.open('/dev/vfio/0');
    const c = sys.open('/dev/vfio/vfio');
    const get = (arg: Uint8Array | number) => sys.ioctl(g, ioctls.VFIO_GROUP_GET_DEVICE_FD, arg);
    // The name is looked up first, so an unknown name is ENODEV even without a container.
    assertErrno(() => get(nameArg('0000:00:09.0')), 'ENODEV');
    assertErrno(() => get(nameArg('')), 'ENODEV');
    assertErrno(() => get(nameArg('0000:00:05.0')), 'ENODEV');
    assertErrno(() => get(nameArg('0000:00:04.0')), 'EINVAL');
    sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(c));
    assertErrno(() => get(nameArg('0000:00:04.0')), 'EINVAL');
    sys.ioctl(c, ioctls.VFIO_SET_IOMMU, TYPE1v2);
    assertErrno(() => get(new TextEncoder().encode('0000:00:04.0')), 'EFAULT');
    assertErrno(() => get(0), 'EFAULT');
    assertErrno(() => get(new Uint8Array(8192).fill(0x41)), 'EINVAL');
    const fd = get(nameArg('0000:00:04.0'));
    assert.ok(fd >= 0);
    sys.close(fd);
    sys.close(g);
    sys.close(c);
  });

  it('device fds: open() on the first, close() on the last, two at once allowed', () => {
    const { sys, a } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const one = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
    const two = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
    assert.notEqual(one, two);
    assert.deepEqual([a.opens, a.closes], [1, 0]);
    sys.close(one);
    assert.deepEqual([a.opens, a.closes], [1, 0]);
    sys.close(two);
    assert.deepEqual([a.opens, a.closes], [1, 1]);
    sys.close(group);
    sys.close(container);
  });

  it('a device fd keeps its group busy (and attached) after the group fd closes', () => {
    const { sys, a } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const mem = sys.allocate(4096);
    sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0n, 4096n));
    const dev = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
    sys.close(group);
    sys.close(container);
    assertErrno(() => sys.open('/dev/vfio/0'), 'EBUSY');
    // Still attached: the device's DMA still reaches the mapping.
    new Uint8Array(mem.buffer)[0] = 0x5a;
    const out = new Uint8Array(1);
    a.ctx!.dma.read(0n, out);
    assert.equal(out[0], 0x5a);
    sys.close(dev);
    assert.equal(sys.kernel.locked.lockedPages, 0, 'the last reference gone, the group left its container');
    const again = sys.open('/dev/vfio/0');
    sys.close(again);
    sys.munmap(mem);
  });

  it('unknown group ioctls are ENOTTY', () => {
    const { sys } = mockWithDevices();
    const g = sys.open('/dev/vfio/0');
    for (const req of [ioctls.VFIO_GET_API_VERSION, ioctls.VFIO_DEVICE_GET_INFO, ioctls.VFIO_IOMMU_MAP_DMA, 0]) {
      assertErrno(() => sys.ioctl(g, req, new Uint8Array(32)), 'ENOTTY');
    }
    sys.close(g);
  });

  it('unregistering refuses while open, then removes the group', () => {
    const { sys } = mockWithDevices();
    const g = sys.open('/dev/vfio/1');
    assertErrno(() => sys.kernel.unregisterDevice('0000:00:05.0'), 'EBUSY');
    sys.close(g);
    sys.kernel.unregisterDevice('0000:00:05.0');
    assertErrno(() => sys.open('/dev/vfio/1'), 'ENOENT');
    assert.equal(sys.sysfs.exists('/sys/bus/pci/devices/0000:00:05.0'), false);
    assert.equal(sys.sysfs.exists('/sys/kernel/iommu_groups/1'), false);
  });
});
