// The mock kernel's migration uAPI beyond what the parity suite compares with mtty:
// which features the VFIO core runs per kernel flavour, a vfio-pci device (the simulated
// edu) answering as vfio-pci does, the data fd's life in the fd table, DMA logging's
// report into user memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys, type MockSysLayer } from '../../src/sys/mock.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import { openPciDevice, pciCommand, type PciDeviceHandle } from '../../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { CounterParent, counterDriver } from '../../src/vendors/example/counter.js';
import { DeviceMigration, featureCall } from '../../src/vfio/migration.js';
import { flags as F } from '../../src/uapi/constants.js';
import { deviceFeature as N, migStates as S } from '../../src/uapi/migration.js';

function counterHost(kernel: '6.1' | '6.12', iommufdDriver = false): { sys: MockSysLayer; open(n: number): PciDeviceHandle; close(): void } {
  const sys = createMockSys({ devices: [], kernel, iommufdDriver });
  const registry = new VgpuRegistry();
  registry.registerDriver(counterDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('counter', new CounterParent('counter0'));
  return {
    sys,
    open(n) {
      const id = `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
      sys.sysfs.write('/sys/class/mdev_bus/counter0/mdev_supported_types/counter-basic/create', id);
      const h = openPciDevice(sys, id);
      h.device.config.enable(pciCommand.MEMORY);
      return h;
    },
    close() {
      for (const v of registry.list()) registry.remove(v.uuid);
    },
  };
}

test('6.1\'s VFIO core has no MIG_DATA_SIZE: on a vGPU it falls to the missing device_feature (EINVAL); 6.12 answers', () => {
  for (const kernel of ['6.1', '6.12'] as const) {
    const host = counterHost(kernel);
    const h = host.open(1);
    try {
      const m = new DeviceMigration(host.sys, h.device.fd);
      assert.equal(m.flags(), 7);
      if (kernel === '6.1') assert.throws(() => m.dataSize(), { code: 'EINVAL' });
      else assert.ok(m.dataSize() > 0n);
      assert.throws(() => featureCall(host.sys, h.device.fd, F.VFIO_DEVICE_FEATURE_GET | 0), { code: 'EINVAL' }, 'PCI_VF_TOKEN');
      assert.throws(() => featureCall(host.sys, h.device.fd, F.VFIO_DEVICE_FEATURE_SET | N.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), { code: 'EINVAL' });
    } finally {
      h.close();
      host.close();
    }
  }
});

test('the simulated edu (vfio-pci) still has no migration on either flavour: ENOTTY', () => {
  for (const kernel of ['6.1', '6.12'] as const) {
    const sys = createMockSys({ devices: [createEduDevice('0000:00:04.0')], kernel });
    const h = openPciDevice(sys, '0000:00:04.0');
    try {
      const m = new DeviceMigration(sys, h.device.fd);
      assert.equal(m.flags(), undefined);
      for (const feature of [N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE]) {
        assert.throws(() => featureCall(sys, h.device.fd, F.VFIO_DEVICE_FEATURE_PROBE | F.VFIO_DEVICE_FEATURE_SET | feature), { code: 'ENOTTY' }, `${kernel} ${feature}`);
      }
    } finally {
      h.close();
    }
  }
});

test('a data fd is a new fd of the table; closing it (or the device) ends the session without leaking', () => {
  const host = counterHost('6.12');
  const h = host.open(2);
  try {
    const fds = host.sys.kernel.fds;
    const before = fds.size;
    const m = new DeviceMigration(host.sys, h.device.fd);
    const data = m.setState(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    assert.equal(fds.size, before + 1);
    assert.equal(fds.get(data.fd)?.kind, 'migration');
    assert.throws(() => host.sys.mmap(data.fd, 0n, 4096, 3), { code: 'ENODEV' });
    data.close();
    assert.equal(fds.size, before);
    assert.equal(m.state(), S.VFIO_DEVICE_STATE_PRE_COPY, 'closing the fd does not change the state');
    m.setState(S.VFIO_DEVICE_STATE_RUNNING);
    const again = m.setState(S.VFIO_DEVICE_STATE_PRE_COPY)!;
    h.device.close();
    assert.throws(() => again.read(new Uint8Array(16)), { code: 'ENODEV' }, 'the device closed: the session ended');
    again.close();
    assert.equal(fds.size, before - 1, 'only the device fd is gone');
  } finally {
    h.close();
    host.close();
  }
});

test('DMA_LOGGING_REPORT past its checks: EOPNOTSUPP on a 6.12 built without iova_bitmap (Debian\'s), a report on 6.1', () => {
  for (const [kernel, want] of [['6.12', 'EOPNOTSUPP'], ['6.1', undefined]] as const) {
    const host = counterHost(kernel);
    const h = host.open(4);
    try {
      const m = new DeviceMigration(host.sys, h.device.fd);
      m.startLogging([{ iova: 0x10000n, length: 0x10000n }], 4096n);
      if (want) assert.throws(() => m.report(0x10000n, 0x10000n, 4096n), { code: want });
      else assert.equal(m.report(0x10000n, 0x10000n, 4096n).length, 8);
      assert.throws(() => m.report(0x10000n, 0x10000n, 1024n), { code: 'EINVAL' }, 'the checks come first');
    } finally {
      h.close();
      host.close();
    }
  }
});

test('DMA logging reports into the user\'s bitmap, setting bits only; an unreachable bitmap is EFAULT', () => {
  const host = counterHost('6.12', true);
  const h = host.open(3);
  try {
    const m = new DeviceMigration(host.sys, h.device.fd);
    assert.equal(m.startLogging([{ iova: 0x10000n, length: 0x10000n }], 3000n), 4096n, 'a hint that is no power of two: the host page size');
    const bitmap = m.report(0x10000n, 0x10000n, 4096n);
    assert.deepEqual([...bitmap], [0, 0, 0, 0, 0, 0, 0, 0], 'the counter never writes guest memory');
    const buf = new Uint8Array(8 + 32);
    new DataView(buf.buffer).setUint32(0, buf.byteLength, true);
    new DataView(buf.buffer).setUint32(4, F.VFIO_DEVICE_FEATURE_GET | N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, true);
    const dv = new DataView(buf.buffer, 8);
    dv.setBigUint64(0, 0x10000n, true);
    dv.setBigUint64(8, 0x10000n, true);
    dv.setBigUint64(16, 4096n, true);
    dv.setBigUint64(24, 0xdead0000n, true); // no memory there
    assert.throws(() => host.sys.ioctl(h.device.fd, 0x3b75, buf), { code: 'EFAULT' });
    m.stopLogging();
    m.stopLogging();
    assert.throws(() => m.report(0x10000n, 0x10000n, 4096n), { code: 'EINVAL' }, 'logging is off');
  } finally {
    h.close();
    host.close();
  }
});
