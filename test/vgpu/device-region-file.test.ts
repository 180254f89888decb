// VgpuDevice.regionFile: the file a transport that passes fds (vfio-user) hands out for a
// BAR's mapped areas, and only areas one fd with one non-negative base can express.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSharedMemory } from '../../src/device/memory.js';
import { VgpuDevice } from '../../src/vgpu/device/vgpu-device.js';
import type { MemoryBacking } from '../../src/vgpu/vendor.js';
import { TestModel } from './fixtures/test-model.js';

const events = { opened: () => {}, released: () => {} };

describe('VgpuDevice.regionFile', () => {
  it('lists the areas one memfd backs, at their base, and nothing for trapped BARs or other regions', () => {
    const model = new TestModel({ mappedBar1: true });
    const device = new VgpuDevice('6b3e0a12-0000-4000-8000-000000000001', model, events);
    assert.deepEqual(device.regionFile(1), { fd: model.memBar1!.fd, offset: 0n, areas: [{ offset: 0n, size: 0x4000n }] });
    // BAR2: two memfds; the one at 0 is expressible (base 0), the one at 0x8000 would need a negative base.
    assert.deepEqual(device.regionFile(2), { fd: model.memLow.fd, offset: 0n, areas: [{ offset: 0n, size: 0x4000n }] });
    assert.equal(device.regionFile(0), undefined, 'BAR0 is registers only');
    assert.equal(device.regionFile(7), undefined, 'config space');
    assert.equal(device.regionFile(12), undefined);
    model.memBar1!.close();
    assert.equal(device.regionFile(1), undefined, 'a closed memory has no file');
  });

  it('groups areas of one file by their common base and skips backings without a file', () => {
    const shared = createSharedMemory('region-file-test', 0x10000);
    const slice = (fileOffset: number): MemoryBacking => ({
      size: 0x1000,
      read: (o, d) => shared.read(fileOffset + o, d),
      write: (o, s) => shared.write(fileOffset + o, s),
      map: (o, l, p) => shared.map(fileOffset + o, l, p),
      unmap: (m) => shared.unmap(m),
      file: { fd: shared.fd, offset: fileOffset },
    });
    const noFile: MemoryBacking = { ...slice(0), file: undefined };
    const model = new TestModel();
    const bar = {
      index: 2, size: 0x8000, kind: 'memory32' as const,
      areas: [
        { kind: 'mapped' as const, offset: 0x1000, size: 0x1000, memory: slice(0x3000) },
        { kind: 'mapped' as const, offset: 0x3000, size: 0x1000, memory: slice(0x5000) },
        { kind: 'mapped' as const, offset: 0x5000, size: 0x1000, memory: slice(0x1000) },
        { kind: 'mapped' as const, offset: 0x6000, size: 0x1000, memory: noFile },
      ],
    };
    model.bars[model.bars.findIndex((b) => b.index === 2)] = bar;
    const device = new VgpuDevice('6b3e0a12-0000-4000-8000-000000000002', model, events);
    assert.deepEqual(device.regionFile(2), {
      fd: shared.fd, offset: 0x2000n, areas: [{ offset: 0x1000n, size: 0x1000n }, { offset: 0x3000n, size: 0x1000n }],
    });
    shared.close();
  });
});
