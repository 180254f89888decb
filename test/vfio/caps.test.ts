import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys } from '../../src/sys/mock.js';
import { Container, Group, Region, type Device } from '../../src/vfio/index.js';
import { flags, regionTypes } from '../../src/uapi/constants.js';
import { ioctls } from '../../src/uapi/ioctls.js';
import { vfio_info_cap_header, vfio_region_info } from '../../src/uapi/structs.js';
import { regionTypeCap, sparseMmapCap } from '../../src/uapi/caps.js';
import { createFakeDevice, fakeRegionOffset, type FakeDevice } from './fake-device.js';
import { spySys, type SpySys } from './spy-sys.js';

function openFake(): { sys: SpySys; fake: FakeDevice; device: Device; close(): void } {
  const mock = createMockSys();
  const fake = createFakeDevice('fake0');
  const number = mock.kernel.registerDevice(fake);
  const sys = spySys(mock);
  const container = Container.open(sys);
  const group = Group.open(sys, number);
  group.attach(container);
  container.setIommu();
  sys.reset();
  const device = group.openDevice('fake0');
  return { sys, fake, device, close: () => container.close() };
}

test('GET_REGION_INFO: retries with the argsz the kernel asks for, only for regions with caps', () => {
  const { sys, device, close } = openFake();
  try {
    const calls = sys.ioctls.filter((c) => c.request === ioctls.VFIO_DEVICE_GET_REGION_INFO).map((c) => [c.argszIn, c.argszOut]);
    const sparse = 32 + 16 + 2 * 16 + 8; // info, sparse cap with 2 areas, MSI-X mappable cap
    const typed = 32 + 16;
    assert.deepEqual(calls, [
      [32, sparse], [sparse, sparse], // BAR0
      [32, 32], [32, 32], [32, 32], [32, 32], [32, 32], [32, 32], [32, 32], // BAR1..CONFIG
      [32, undefined], // VGA: EINVAL
      [32, typed], [typed, typed], // region 9
    ]);
    assert.deepEqual([...device.regions.keys()], [0, 1, 2, 3, 4, 5, 6, 7, 9]);
  } finally {
    close();
  }
});

test('region capabilities: sparse mmap areas, MSI-X mappable, region type; page-based offsets used as given', () => {
  const { device, close } = openFake();
  try {
    const bar0 = device.bar(0);
    assert.equal(bar0.flags & flags.VFIO_REGION_INFO_FLAG_CAPS, flags.VFIO_REGION_INFO_FLAG_CAPS);
    assert.deepEqual(bar0.sparseAreas, [{ offset: 0, size: 0x1000 }, { offset: 0x3000, size: 0x2000 }]);
    assert.equal(bar0.msixMappable, true);
    assert.equal(bar0.type, undefined);
    assert.equal(bar0.summary(), 'BAR0 64 KiB rw mmap 2 sparse areas msix-mappable');
    const edid = device.region(9);
    assert.equal(edid.name, 'region 9');
    assert.deepEqual(edid.type, { type: regionTypes.VFIO_REGION_TYPE_GFX, subtype: regionTypes.VFIO_REGION_SUBTYPE_GFX_EDID });
    assert.equal(edid.sparseAreas, undefined);
    assert.equal(edid.offset, fakeRegionOffset(9));
    assert.equal(edid.summary(), 'region 9 256 B r type 0x1:1');
    assert.equal(device.bar(2).offset, fakeRegionOffset(2));
  } finally {
    close();
  }
});

test('bulk and 8-byte accesses land at region.offset + offset', () => {
  const { fake, device, close } = openFake();
  try {
    const bar2 = device.bar(2);
    bar2.write64(0x10, 0x0102030405060708n);
    assert.deepEqual([...fake.bar2.subarray(0x10, 0x18)], [8, 7, 6, 5, 4, 3, 2, 1]);
    assert.equal(bar2.read64(0x10), 0x0102030405060708n);
    assert.equal(bar2.read16(0x12), 0x0506);
    assert.equal(bar2.write(0x3ffe, new Uint8Array([0xaa, 0xbb, 0xcc])), 2, 'short write at the end');
    assert.deepEqual([...bar2.read(0x3ffc, 8)], [0, 0, 0xaa, 0xbb]);
  } finally {
    close();
  }
});

test('mmap of a sparse area asks for region.offset + area.offset', () => {
  const { fake, device, close } = openFake();
  try {
    const bar0 = device.bar(0);
    const area = bar0.sparseAreas![1]!;
    const mapping = bar0.mmap(area);
    assert.deepEqual(fake.mmaps, [{ offset: fakeRegionOffset(0) + 0x3000n, length: 0x2000 }]);
    assert.equal(mapping.regionOffset, 0x3000);
    assert.equal(mapping.length, 0x2000);
    mapping.bytes[0] = 0x5a;
    assert.equal(mapping.view.getUint8(0), 0x5a);
    assert.throws(() => device.region(9).mmap(), { code: 'EINVAL', syscall: 'mmap' });
  } finally {
    close();
  }
});

test('caps are found by following cap_offset and next, in whatever order and padding they come', () => {
  // info (32) | 8 bytes of padding | type cap at 40 | 8 bytes of padding | sparse cap at 64
  const buf = new Uint8Array(64 + 16 + 16);
  vfio_region_info.write(buf, {
    argsz: buf.byteLength, flags: flags.VFIO_REGION_INFO_FLAG_READ | flags.VFIO_REGION_INFO_FLAG_MMAP | flags.VFIO_REGION_INFO_FLAG_CAPS,
    index: 3, cap_offset: 64, size: 0x8000n, offset: 0x30000n,
  });
  buf.set(regionTypeCap(0x80001af4, 7), 40);
  buf.set(sparseMmapCap([{ offset: 0x4000n, size: 0x4000n }]), 64);
  vfio_info_cap_header.write(buf, { next: 40 }, 64);
  const host = { sys: createMockSys(), fd: -1 };
  const region = new Region(host, buf, 'BAR3');
  assert.deepEqual(region.sparseAreas, [{ offset: 0x4000, size: 0x4000 }]);
  assert.deepEqual(region.type, { type: 0x80001af4, subtype: 7 });
  assert.equal(region.offset, 0x30000n);
  assert.equal(region.size, 0x8000);
  // Without the CAPS flag a cap_offset means nothing.
  vfio_region_info.write(buf, { flags: flags.VFIO_REGION_INFO_FLAG_READ });
  assert.equal(new Region(host, buf, 'BAR3').sparseAreas, undefined);
  // A chain that loops is refused, not followed forever.
  vfio_region_info.write(buf, { flags: flags.VFIO_REGION_INFO_FLAG_CAPS });
  vfio_info_cap_header.write(buf, { next: 64 }, 40);
  assert.throws(() => new Region(host, buf, 'BAR3'), /loops/);
});

test('a region past num_regions (mdpy names its display plane region 16) is asked for by index and kept', () => {
  const { sys, device, close } = openFake();
  try {
    assert.equal(device.info.numRegions, 10);
    assert.equal(device.regions.has(16), false, 'not enumerated');
    const display = device.region(16);
    assert.deepEqual([display.size, display.offset, display.mmappable], [0x1000, fakeRegionOffset(16), true]);
    assert.equal(device.regions.get(16), display, 'kept');
    sys.reset();
    assert.equal(device.region(16), display);
    assert.equal(sys.ioctls.length, 0, 'asked once');
    assert.throws(() => device.region(12), { code: 'EINVAL' });
    assert.throws(() => device.region(8), { code: 'EINVAL' }, 'an enumerated index the device lacks is not asked again');
    assert.equal(sys.ioctls.length, 1, 'only region 12 was asked');
  } finally {
    close();
  }
});
