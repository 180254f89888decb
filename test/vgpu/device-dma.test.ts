// DMA through a vGPU's session: the vendor pins guest pages in an mdev-only container
// (TYPE1v2, no IOMMU-backed group), reads and writes them through the views, unpins;
// the core counts its pins, refuses to unpin what this vGPU did not pin, passes the
// DMA-unmap notice to the vendor and drops what the vendor leaves behind (at the
// notice and at release), so no pin ever dangles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openVgpu, assertErrno, UUID, type VgpuRig } from './fixtures/device-rig.js';
import type { DmaMapping } from '../../src/vfio/index.js';

const IOVA = 0x100000n;
const PAGE = 4096;

function withMappedVgpu(fn: (rig: VgpuRig, mapping: DmaMapping) => void): void {
  const rig = openVgpu();
  const memory = rig.sys.allocate(4 * PAGE);
  try {
    const mapping = rig.handle.container.map({ iova: IOVA, memory });
    fn(rig, mapping);
  } finally {
    rig.close();
    rig.sys.munmap(memory);
  }
}

test('pin gives views of the guest pages; writes through them are the guest\'s memory', () => {
  withMappedVgpu((rig, mapping) => {
    const views = rig.model.pin(IOVA + 0x1000n, 2);
    assert.deepEqual(views.map((v) => v.byteLength), [PAGE, PAGE]);
    views[1]![5] = 0x99;
    assert.equal(mapping.bytes[2 * PAGE + 5], 0x99);
    mapping.bytes[PAGE] = 0x42;
    assert.equal(views[0]![0], 0x42);
    const dst = new Uint8Array(1);
    rig.model.dma.read(IOVA + 0x1000n, dst);
    assert.equal(dst[0], 0x42);
  });
});

test('the vendor may unpin only what this vGPU pinned, one reference per pin', () => {
  withMappedVgpu((rig) => {
    const dma = rig.model.dma;
    dma.pin(IOVA, 1, 3);
    dma.pin(IOVA, 1, 1);
    assertErrno(() => dma.unpin(IOVA + 0x1000n, 1), 'EINVAL', 'never pinned');
    assertErrno(() => dma.unpin(IOVA, 2), 'EINVAL', 'the second page is not pinned');
    dma.unpin(IOVA, 1);
    dma.unpin(IOVA, 1);
    assertErrno(() => dma.unpin(IOVA, 1), 'EINVAL', 'both references are gone');
    assertErrno(() => dma.unpin(IOVA, 0), 'EINVAL', 'npage 0');
  });
});

test('pin errnos of the container reach the vendor unchanged', () => {
  withMappedVgpu((rig) => {
    const dma = rig.model.dma;
    assertErrno(() => dma.pin(IOVA, 0, 3), 'EINVAL');
    assertErrno(() => dma.pin(IOVA, 513, 3), 'E2BIG');
    assertErrno(() => dma.pin(IOVA + 0x10000n, 1, 3), 'EINVAL');
    assertErrno(() => dma.pin(IOVA + 1n, 1, 3), 'EINVAL');
    assert.equal(rig.vgpu.forcedUnpins, 0);
  });
});

test('UNMAP_DMA over pinned pages: the vendor is told first and unpins; the unmap completes', () => {
  withMappedVgpu((rig, mapping) => {
    rig.model.pin(IOVA, 2);
    assert.equal(mapping.unmap(), BigInt(4 * PAGE));
    assert.deepEqual(rig.model.calls.filter((c) => c.startsWith('dmaUnmap')), [`dmaUnmap 0x${IOVA.toString(16)} 0x4000`]);
    assert.equal(rig.vgpu.forcedUnpins, 0);
  });
});

test('a vendor that keeps its pins at the notice loses them: the core drops them and counts it', () => {
  withMappedVgpu((rig, mapping) => {
    rig.model.ignoreUnmap = true;
    rig.model.pin(IOVA, 3);
    rig.model.pin(IOVA, 1);
    assert.equal(mapping.unmap(), BigInt(4 * PAGE));
    assert.equal(rig.vgpu.forcedUnpins, 4);
  });
});

test('a vendor whose notice throws still loses its pins; the user\'s unmap completes', () => {
  withMappedVgpu((rig, mapping) => {
    rig.model.failing.add('dmaUnmap');
    rig.model.pin(IOVA, 2);
    assert.equal(mapping.unmap(), BigInt(4 * PAGE));
    assert.equal(rig.vgpu.forcedUnpins, 2);
  });
});

test('release drops the pins the vendor still holds; a reopened device finds none', () => {
  withMappedVgpu((rig) => {
    rig.model.pin(IOVA, 4);
    rig.handle.device.close();
    assert.equal(rig.vgpu.forcedUnpins, 4);
    assert.equal(rig.vgpu.isOpen, false);
    const device = rig.handle.group.openDevice(UUID);
    try {
      rig.model.calls.length = 0;
      assert.equal(rig.handle.container.unmap(IOVA, 4 * PAGE), BigInt(4 * PAGE));
      assert.deepEqual(rig.model.calls, [], 'no pins left: no notice');
    } finally {
      device.close();
    }
  });
});
