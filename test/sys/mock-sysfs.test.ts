// The mock /sys: PCI device nodes in the kernel's formats, IOMMU group links, the VFS
// errors, writable attributes whose handlers fail with an errno, a module parameter.
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { describe, it } from 'node:test';
import { ioctls, vfio_iommu_type1_info, walkCaps, decodeDmaAvail } from '../../src/uapi/index.js';
import { sysError } from '../../src/addon/errors.js';
import { MockSysfs } from '../../src/sys/mock/sysfs.js';
import { assertErrno, mockWithDevices, openContainer } from './mock-helpers.js';

const A = '0000:00:04.0';

describe('mock sysfs', () => {
  it('PCI attributes in the kernel\'s formats, reached through /sys/bus/pci/devices', () => {
    const { sys } = mockWithDevices();
    const dir = `/sys/bus/pci/devices/${A}`;
    assert.deepEqual(
      ['vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class', 'revision'].map((n) => sys.sysfs.read(`${dir}/${n}`)),
      ['0x1234', '0x11e8', '0x1af4', '0x1100', '0x00ff00', '0x10']);
    assert.deepEqual(sys.sysfs.list('/sys/bus/pci/devices'), ['0000:00:04.0', '0000:00:05.0']);
    assert.equal(sys.sysfs.readlink(dir), '../../../devices/pci0000:00/0000:00:04.0');
    assert.deepEqual(sys.sysfs.list(dir), ['class', 'device', 'driver', 'iommu_group', 'revision', 'subsystem_device', 'subsystem_vendor', 'vendor']);
  });

  it('iommu_group and driver links, and the group\'s devices', () => {
    const { sys } = mockWithDevices();
    const link = sys.sysfs.readlink(`/sys/bus/pci/devices/${A}/iommu_group`);
    assert.equal(link, '../../../kernel/iommu_groups/0');
    assert.equal(posix.basename(link), '0');
    assert.equal(sys.sysfs.readlink(`/sys/bus/pci/devices/${A}/driver`), '../../../bus/pci/drivers/vfio-pci');
    assert.deepEqual(sys.sysfs.list('/sys/kernel/iommu_groups'), ['0', '1']);
    assert.deepEqual(sys.sysfs.list('/sys/kernel/iommu_groups/1/devices'), ['0000:00:05.0']);
    assert.equal(sys.sysfs.readlink(`/sys/kernel/iommu_groups/0/devices/${A}`), `../../../../devices/pci0000:00/${A}`);
    assert.equal(sys.sysfs.read(`/sys/kernel/iommu_groups/0/devices/${A}/vendor`), '0x1234');
    assert.equal(sys.sysfs.read(`/sys/bus/pci/drivers/vfio-pci/${A}/device`), '0x11e8');
    assert.equal(sys.sysfs.exists(`/sys/bus/pci/devices/${A}/iommu_group/devices/${A}/iommu_group`), true);
    assert.equal(sys.sysfs.exists('/sys/bus/pci/devices/0000:00:06.0'), false);
    assert.equal(sys.sysfs.read('/sys/kernel/iommu_groups/0/reserved_regions'), '0x00000000fee00000 0x00000000feefffff msi');
  });

  it('errors as the VFS gives them', () => {
    const { sys } = mockWithDevices();
    const dir = `/sys/bus/pci/devices/${A}`;
    assertErrno(() => sys.sysfs.read('/sys/bus/pci/devices/0000:00:06.0/vendor'), 'ENOENT');
    assertErrno(() => sys.sysfs.read(`${dir}/vendor/x`), 'ENOTDIR');
    assertErrno(() => sys.sysfs.list(`${dir}/vendor`), 'ENOTDIR');
    assertErrno(() => sys.sysfs.read(dir), 'EISDIR');
    assertErrno(() => sys.sysfs.write(`${dir}/vendor`, '0x1'), 'EACCES');
    assertErrno(() => sys.sysfs.readlink(`${dir}/vendor`), 'EINVAL');
    assertErrno(() => sys.sysfs.readlink('/sys/nope'), 'ENOENT');
    assertErrno(() => sys.sysfs.list('relative/path'), 'ENOENT');
  });

  it('writable attributes: store errors carry the errno; write-only ones cannot be read', () => {
    const fs = new MockSysfs();
    const created: string[] = [];
    fs.addAttribute('/sys/class/mdev_bus/p/mdev_supported_types/t/create', {
      store: (value) => {
        if (!/^[0-9a-f-]{36}\n?$/.test(value)) throw sysError('EINVAL', 'write');
        if (created.includes(value.trim())) throw sysError('EEXIST', 'write');
        created.push(value.trim());
      },
    });
    const path = '/sys/class/mdev_bus/p/mdev_supported_types/t/create';
    assertErrno(() => fs.read(path), 'EACCES');
    assertErrno(() => fs.write(path, 'nope'), 'EINVAL');
    fs.write(path, '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\n');
    assert.throws(() => fs.write(path, '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'), { code: 'EEXIST', syscall: 'write' });
    assert.deepEqual(created, ['83b8f4f2-509f-382f-3c1e-e6bfe0fa1001']);
    fs.addLink('/sys/a', 'b');
    fs.addLink('/sys/b', 'a');
    assertErrno(() => fs.read('/sys/a'), 'ELOOP');
    fs.remove('/sys/class/mdev_bus/p');
    assert.equal(fs.exists(path), false);
  });

  it('vfio_iommu_type1\'s dma_entry_limit parameter: read, and written for new containers', () => {
    const { sys } = mockWithDevices();
    const param = '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit';
    assert.equal(sys.sysfs.read(param), '65535');
    assertErrno(() => sys.sysfs.write(param, 'many'), 'EINVAL');
    sys.sysfs.write(param, '7\n');
    assert.equal(sys.sysfs.read(param), '7');
    const { container } = openContainer(sys, 0);
    const buf = new Uint8Array(256);
    vfio_iommu_type1_info.write(buf, { argsz: 256 });
    sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, buf);
    assert.equal(decodeDmaAvail(buf, walkCaps(buf, 24).find((c) => c.id === 3)!.offset), 7);
  });
});
