// The dma_unmap notice on the mock TYPE1 IOMMU (vfio_notify_dma_unmap): before an
// unmap removes a mapping with pinned pages every open device is told and must unpin;
// the mock's policy when one does not (forced unpin, counted and warned about).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ioctls } from '../../src/uapi/index.js';
import { fakePciDevice, unmapArg, unmappedSize } from './mock-helpers.js';
import { addDevice, captureWarnings, MDEV_A, MDEV_B, PAGE, pinningDevice, pinSys } from './mock-pin-fixtures.js';

const UNMAP = ioctls.VFIO_IOMMU_UNMAP_DMA;
const UNMAP_ALL = 2;

describe('mock dma_unmap notice', () => {
  it('tells the device before the mapping goes, with the whole mapping; the device unpins in it', async () => {
    const warnings = captureWarnings();
    const { sys, a, container, iommu, map } = pinSys();
    map(0x10000n, 4);
    map(0x20000n, 2);
    a.pin(0x11000n, 2);
    a.pin(0x12000n, 1);
    const arg = unmapArg(0x10000n, 4n * PAGE);
    sys.ioctl(container, UNMAP, arg);
    assert.equal(unmappedSize(arg), 4n * PAGE);
    assert.deepEqual(a.calls, [{ iova: 0x10000n, length: 4n * PAGE, mapped: true }], 'once, while DMA to it still worked');
    assert.deepEqual(a.held, []);
    assert.equal(iommu().pinnedPages, 0);
    assert.equal(iommu().forcedUnpins, 0);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    // A mapping without pins goes without a word.
    sys.ioctl(container, UNMAP, unmapArg(0x20000n, 2n * PAGE));
    assert.equal(a.calls.length, 1);
    assert.deepEqual(await warnings.stop(), []);
  });

  it('only mappings with pins are announced, each with its own range, and every open device with dma_unmap hears it', () => {
    const { sys, a, container, map } = pinSys();
    const b = pinningDevice(MDEV_B);
    addDevice(sys, container, b);
    const quiet = fakePciDevice('0000:00:04.0'); // no dma_unmap: nothing to tell it
    addDevice(sys, container, quiet, true);
    map(0x10000n, 1);
    map(0x11000n, 1);
    map(0x12000n, 2);
    b.pin(0x12000n, 2);
    sys.ioctl(container, UNMAP, unmapArg(0x10000n, 4n * PAGE));
    assert.deepEqual(a.calls, [{ iova: 0x12000n, length: 2n * PAGE, mapped: true }], 'a holds nothing but is told all the same');
    assert.deepEqual(b.calls, a.calls);
    assert.deepEqual(b.held, []);
  });

  it('UNMAP_ALL announces every mapping with pins', () => {
    const { sys, a, container, iommu, map } = pinSys();
    map(0x10000n, 1);
    map(0x20000n, 1);
    map(0x30000n, 1);
    a.pin(0x10000n, 1);
    a.pin(0x30000n, 1);
    const arg = unmapArg(0n, 0n, UNMAP_ALL);
    sys.ioctl(container, UNMAP, arg);
    assert.equal(unmappedSize(arg), 3n * PAGE);
    assert.deepEqual(a.calls.map((c) => c.iova), [0x10000n, 0x30000n]);
    assert.equal(iommu().forcedUnpins, 0);
  });

  it('tells the device again while it makes progress', () => {
    const { sys, a, container, iommu, map } = pinSys();
    map(0x10000n, 4);
    a.pin(0x10000n, 3);
    a.mode = 'one';
    sys.ioctl(container, UNMAP, unmapArg(0x10000n, 4n * PAGE));
    assert.equal(a.calls.length, 3);
    assert.equal(iommu().forcedUnpins, 0);
    assert.equal(iommu().pinnedPages, 0);
  });

  it('a device that does not unpin: the pins are dropped by force, counted and warned about; the unmap completes', async () => {
    const warnings = captureWarnings();
    const { sys, a, container, iommu, map } = pinSys();
    const mem = map(0x10000n, 2);
    a.pin(0x10000n, 2);
    a.pin(0x10000n, 1);
    sys.munmap(mem); // kept alive by the pins only
    a.mode = 'ignore';
    const arg = unmapArg(0x10000n, 2n * PAGE);
    assert.equal(sys.ioctl(container, UNMAP, arg), 0);
    assert.equal(unmappedSize(arg), 2n * PAGE);
    assert.equal(a.calls.length, 1, 'no progress, no second notice');
    assert.equal(iommu().forcedUnpins, 3, 'three pins on two pages');
    assert.equal(iommu().pinnedPages, 0);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    assert.equal(sys.kernel.mm.retainedCount, 0, 'the memory is released');
    const seen = await warnings.stop();
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as Error & { code?: string }).code, 'VFIO_MOCK_FORCED_UNPIN');
    assert.match(seen[0]!.message, new RegExp(`^${MDEV_A} still held 3 pin\\(s\\) in the DMA mapping at iova 0x10000 \\(size 0x2000\\)`));
  });

  it('a dma_unmap that throws does not reach the user: warned about, then treated as one that did not unpin', async () => {
    const warnings = captureWarnings();
    const { sys, a, container, iommu, map } = pinSys();
    map(0x10000n, 1);
    a.pin(0x10000n, 1);
    a.mode = 'throw';
    assert.equal(sys.ioctl(container, UNMAP, unmapArg(0x10000n, PAGE)), 0);
    assert.equal(iommu().forcedUnpins, 1);
    assert.equal(iommu().pinnedPages, 0);
    assert.equal(iommu().store.count, 0);
    const codes = (await warnings.stop()).map((w) => (w as Error & { code?: string }).code);
    assert.deepEqual(codes, ['VFIO_MOCK_DMA_UNMAP_THREW', 'VFIO_MOCK_FORCED_UNPIN']);
  });

  it('closing a device does not unpin for it; a later unmap drops its pins by force, naming it', async () => {
    const warnings = captureWarnings();
    const { sys, a, container, deviceFd, iommu, map } = pinSys();
    map(0x10000n, 1);
    a.pin(0x10000n, 1);
    sys.close(deviceFd);
    assert.equal(iommu().pinnedPages, 1);
    sys.ioctl(container, UNMAP, unmapArg(0x10000n, PAGE));
    assert.equal(a.calls.length, 0, 'a closed device is not told');
    assert.equal(iommu().forcedUnpins, 1);
    const seen = await warnings.stop();
    assert.equal(seen.length, 1);
    assert.ok(seen[0]!.message.startsWith(`${MDEV_A} still held 1 pin(s)`));
  });

  it('a group that leaves the container takes its devices\' pins along; other groups\' pins and the mappings stay', async () => {
    const warnings = captureWarnings();
    const { sys, a, container, groupFd, deviceFd, iommu, map } = pinSys();
    const b = pinningDevice(MDEV_B);
    addDevice(sys, container, b);
    map(0x10000n, 2);
    a.pin(0x10000n, 2);
    b.pin(0x11000n, 1);
    sys.close(deviceFd);
    assert.equal(iommu().pinnedPages, 2);
    sys.close(groupFd); // A's group leaves
    assert.equal(iommu().pinnedPages, 1, 'page 1 keeps B\'s pin');
    assert.equal(iommu().forcedUnpins, 2);
    assert.equal(sys.kernel.locked.lockedPages, 1);
    assert.equal(iommu().store.count, 1);
    b.unpin(0x11000n, 1);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    const seen = await warnings.stop();
    assert.equal(seen.length, 1);
    assert.match(seen[0]!.message, /when its group left the container/);
  });

  it('the last group leaving drops every pin and every mapping', async () => {
    const warnings = captureWarnings();
    const { sys, a, groupFd, deviceFd, iommu, map } = pinSys();
    const mem = map(0x10000n, 1);
    a.pin(0x10000n, 1);
    sys.munmap(mem);
    const lastIommu = iommu();
    sys.close(deviceFd);
    sys.close(groupFd);
    assert.equal(lastIommu.forcedUnpins, 1);
    assert.equal(lastIommu.store.count, 0);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    assert.equal(sys.kernel.mm.retainedCount, 0);
    assert.equal((await warnings.stop()).length, 1);
  });
});
