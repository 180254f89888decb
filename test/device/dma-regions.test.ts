// DmaRegions in process: a DMA space over regions a user declared (file-backed, mapped
// here in windows, or remote through callbacks), with the kernel's pin semantics, the
// unmap notice and forced unpins, and faults checked before a byte moves.
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';
import { DmaFault } from '../../src/device/backend.js';
import { DmaRegions, IOMMU_READ, IOMMU_WRITE, type DmaRegionsOptions } from '../../src/device/dma/dma-regions.js';

const a = addon();
const PAGE = a.pageSize;
const P = BigInt(PAGE);
const RW = IOMMU_READ | IOMMU_WRITE;

/** A memfd of `pages` pages whose bytes are (i & 0xff) ^ seed. */
function memfd(pages: number, seed = 0): number {
  const fd = a.memfdCreate('dma-regions-test', 1);
  a.ftruncate(fd, BigInt(pages * PAGE));
  const bytes = new Uint8Array(pages * PAGE).map((_, i) => (i & 0xff) ^ seed);
  a.pwrite(fd, bytes, 0n);
  return fd;
}

function isOpen(fd: number): boolean {
  try {
    readlinkSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}

function code(err: unknown): string {
  return isSysError(err) ? err.code : err instanceof DmaFault ? 'DmaFault' : String(err);
}

function throwsCode(fn: () => unknown, expected: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.equal(caught === undefined ? 'no error' : code(caught), expected);
}

/** Regions with small windows (two pages) so transfers cross windows, and a quiet warner. */
function regions(options: DmaRegionsOptions = {}): { dma: DmaRegions; warnings: string[] } {
  const warnings: string[] = [];
  const dma = new DmaRegions({ windowSize: 2 * PAGE, warn: (m) => warnings.push(m), ...options });
  return { dma, warnings };
}

describe('DmaRegions', () => {
  it('refuses bad regions with the errno of each fault and leaves the fd with the caller', () => {
    const { dma } = regions({ maxRegions: 2 });
    const fd = memfd(4);
    const file = (offset = 0n) => ({ kind: 'file' as const, fd, offset });
    throwsCode(() => dma.add({ iova: 0n, size: 0n, prot: RW, source: file() }), 'EINVAL');
    throwsCode(() => dma.add({ iova: 1n, size: P, prot: RW, source: file() }), 'EINVAL');
    throwsCode(() => dma.add({ iova: 0n, size: P + 1n, prot: RW, source: file() }), 'EINVAL');
    throwsCode(() => dma.add({ iova: 0n, size: P, prot: RW, source: file(1n) }), 'EINVAL');
    throwsCode(() => dma.add({ iova: 0n, size: P, prot: 0, source: file() }), 'EINVAL');
    throwsCode(() => dma.add({ iova: (1n << 64n) - P, size: 2n * P, prot: RW, source: { kind: 'remote' } }), 'EINVAL');
    throwsCode(() => dma.add({ iova: 0n, size: 8n * P, prot: RW, source: file() }), 'EINVAL'); // file too short
    const efd = a.eventfd(0, 0);
    throwsCode(() => dma.add({ iova: 0n, size: P, prot: RW, source: { kind: 'file', fd: efd, offset: 0n } }), 'EINVAL');
    assert.ok(isOpen(fd) && isOpen(efd));
    a.close(efd);
    dma.add({ iova: 0x10000n, size: 2n * P, prot: RW, source: file() });
    throwsCode(() => dma.add({ iova: 0x10000n + P, size: 2n * P, prot: RW, source: { kind: 'remote' } }), 'EEXIST');
    throwsCode(() => dma.add({ iova: 0x10000n - P, size: 2n * P, prot: RW, source: { kind: 'remote' } }), 'EEXIST');
    dma.add({ iova: 0x20000n, size: P, prot: RW, source: { kind: 'remote' } });
    throwsCode(() => dma.add({ iova: 0x30000n, size: P, prot: RW, source: { kind: 'remote' } }), 'ENOSPC');
    assert.equal(dma.count, 2);
    dma.close();
    assert.equal(isOpen(fd), false, 'the region owned its fd and closed it');
  });

  it('reads and writes across adjacent regions and windows, and marks written pages dirty', () => {
    const { dma } = regions();
    const fd1 = memfd(3, 0x11);
    const fd2 = memfd(2, 0x22);
    dma.add({ iova: 0x100000n, size: 3n * P, prot: RW, source: { kind: 'file', fd: fd1, offset: 0n } });
    dma.add({ iova: 0x100000n + 3n * P, size: P, prot: RW, source: { kind: 'file', fd: fd2, offset: P } });
    const buf = new Uint8Array(2 * PAGE);
    dma.read(0x100000n + 2n * P, buf); // last page of region 1 (second window), first of region 2
    assert.equal(buf[0], (2 * PAGE & 0xff) ^ 0x11);
    assert.equal(buf[PAGE], (PAGE & 0xff) ^ 0x22);
    const src = new Uint8Array(PAGE + 16).fill(0xab);
    dma.write(0x100000n + P + 8n, src); // crosses from window 0 into window 1 of region 1
    const check = new Uint8Array(PAGE + 16);
    a.pread(fd1, check, P + 8n);
    assert.ok(check.every((b) => b === 0xab), 'the write reached the client file');
    assert.deepEqual([...dma.regionAt(0x100000n)!.dirty].sort(), [1, 2]);
    assert.equal(dma.regionAt(0x100000n + 3n * P)!.dirty.size, 0);
    dma.clearDirty();
    assert.equal(dma.regionAt(0x100000n)!.dirty.size, 0);
    dma.close();
  });

  it('faults on holes and missing permission before moving a byte', () => {
    const { dma } = regions();
    const fd = memfd(2);
    dma.add({ iova: 0n, size: P, prot: IOMMU_READ, source: { kind: 'file', fd, offset: 0n } });
    dma.add({ iova: P, size: P, prot: RW, source: { kind: 'file', fd: a.dup(fd), offset: P } });
    const before = new Uint8Array(2 * PAGE);
    a.pread(fd, before, 0n);
    throwsCode(() => dma.write(P - 4n, new Uint8Array(8).fill(0xee)), 'DmaFault'); // first page read-only
    throwsCode(() => dma.write(P, new Uint8Array(PAGE + 1)), 'DmaFault'); // runs into a hole
    throwsCode(() => dma.read(2n * P, new Uint8Array(1)), 'DmaFault');
    throwsCode(() => dma.read(-1n, new Uint8Array(1)), 'DmaFault');
    const after = new Uint8Array(2 * PAGE);
    a.pread(fd, after, 0n);
    assert.deepEqual(after, before);
    assert.equal(dma.regionAt(P)!.dirty.size, 0);
    dma.close();
  });

  it('pins as vfio_pin_pages: counted per page, views of the memory, nothing left after an error', () => {
    const { dma } = regions();
    const fd = memfd(4, 0x5a);
    dma.add({ iova: 0x4000_0000n, size: 3n * P, prot: IOMMU_READ, source: { kind: 'file', fd, offset: 0n } });
    dma.add({ iova: 0x4000_0000n + 3n * P, size: P, prot: RW, source: { kind: 'remote' } });
    const base = 0x4000_0000n;
    throwsCode(() => dma.pin(base, 0, IOMMU_READ), 'EINVAL');
    throwsCode(() => dma.pin(base, 513, IOMMU_READ), 'E2BIG');
    throwsCode(() => dma.pin(base + 1n, 1, IOMMU_READ), 'EINVAL');
    throwsCode(() => dma.pin(base - P, 2, IOMMU_READ), 'EINVAL'); // first page not mapped
    throwsCode(() => dma.pin(base, 1, IOMMU_WRITE), 'EPERM');
    throwsCode(() => dma.pin(base + 2n * P, 2, IOMMU_READ), 'EFAULT'); // runs into the remote region
    assert.equal(dma.pinnedPages, 0, 'nothing pinned after the errors');
    const views = dma.pin(base, 2, IOMMU_READ);
    assert.equal(views.length, 2);
    assert.equal(views[1]![0], (PAGE & 0xff) ^ 0x5a);
    const again = dma.pin(base + P, 1, IOMMU_READ);
    assert.equal(again[0]!.buffer, views[1]!.buffer);
    assert.equal(dma.pinnedPages, 2);
    dma.unpin(base + P, 1);
    assert.equal(dma.pinnedPages, 2, 'the second page still has one pin');
    throwsCode(() => dma.unpin(base, 3), 'EINVAL'); // the third page was never pinned: nothing changes
    assert.equal(dma.pinnedPages, 2);
    dma.unpin(base, 2);
    assert.equal(dma.pinnedPages, 0);
    throwsCode(() => dma.unpin(base, 1), 'EINVAL');
    throwsCode(() => dma.unpin(base, 600), 'E2BIG');
    dma.close();
    throwsCode(() => dma.pin(base, 1, IOMMU_READ), 'EINVAL');
  });

  it('unmaps as the kernel: several regions at once, none is no error, a split is EINVAL', () => {
    const { dma } = regions();
    for (let i = 0n; i < 3n; i++) dma.add({ iova: 0x10000n + i * P, size: P, prot: RW, source: { kind: 'remote' } });
    throwsCode(() => dma.remove(0x10000n + P, P + P / 2n), 'EINVAL');
    throwsCode(() => dma.remove(0x10000n, 0n), 'EINVAL');
    throwsCode(() => dma.remove(0x10000n - P, 2n * P - P / 2n), 'EINVAL');
    assert.equal(dma.remove(0x10000n - P, 3n * P), 2n * P); // covers the first two and the hole before
    assert.equal(dma.count, 1);
    assert.equal(dma.remove(0n, 1n << 63n), 3n * P - 2n * P);
    assert.equal(dma.remove(1n << 63n, 1n << 63n), 0n, 'a huge never-mapped range unmaps nothing, successfully');
    assert.equal(dma.count, 0);
  });

  it('tells the device before a pinned region goes, drops what it kept, then unmaps and closes the fd', () => {
    const notices: [bigint, bigint][] = [];
    let honour = true;
    const holder: { dma?: DmaRegions } = {};
    const { dma, warnings } = regions({
      unmapNotice: (iova, length) => {
        notices.push([iova, length]);
        if (honour) holder.dma!.unpin(iova, 1);
      },
    });
    holder.dma = dma;
    const fd1 = memfd(1);
    const fd2 = memfd(1);
    dma.add({ iova: 0x8000n, size: P, prot: RW, source: { kind: 'file', fd: fd1, offset: 0n } });
    dma.add({ iova: 0x8000n + P, size: P, prot: RW, source: { kind: 'file', fd: fd2, offset: 0n } });
    const [view] = dma.pin(0x8000n, 1, IOMMU_WRITE);
    assert.deepEqual([...dma.regionAt(0x8000n)!.dirty], [0], 'a page pinned for write counts as dirty');
    dma.remove(0x8000n, P);
    assert.deepEqual(notices, [[0x8000n, P]]);
    assert.equal(dma.forcedUnpins, 0);
    assert.equal(view!.byteLength, 0, 'the view is detached: the memory is unmapped');
    assert.equal(isOpen(fd1), false);
    // A device that keeps its pins: dropped by force and reported.
    honour = false;
    dma.pin(0x8000n + P, 1, IOMMU_READ);
    dma.pin(0x8000n + P, 1, IOMMU_READ);
    dma.removeAll();
    assert.equal(notices.length, 2);
    assert.equal(dma.forcedUnpins, 2);
    assert.equal(dma.pinnedPages, 0);
    assert.equal(warnings.length, 1);
    assert.equal(isOpen(fd2), false);
    // No pins, no notice.
    dma.add({ iova: 0n, size: P, prot: RW, source: { kind: 'remote' } });
    dma.remove(0n, P);
    assert.equal(notices.length, 2);
  });

  it('reaches remote regions through the transport, and turns its failures into DMA faults', () => {
    const calls: string[] = [];
    let failing = false;
    const memory = new Uint8Array(2 * PAGE).map((_, i) => i & 0xff);
    const { dma } = regions({
      remote: {
        read(iova, dst) {
          calls.push(`r ${iova} ${dst.byteLength}`);
          if (failing) throw new Error('timed out');
          dst.set(memory.subarray(Number(iova - 0x2000_0000n), Number(iova - 0x2000_0000n) + dst.byteLength));
        },
        write(iova, src) {
          calls.push(`w ${iova} ${src.byteLength}`);
          memory.set(src, Number(iova - 0x2000_0000n));
        },
      },
    });
    const fd = memfd(1, 0x77);
    dma.add({ iova: 0x2000_0000n, size: 2n * P, prot: RW, source: { kind: 'remote' } });
    dma.add({ iova: 0x2000_0000n + 2n * P, size: P, prot: IOMMU_READ, source: { kind: 'file', fd, offset: 0n } });
    const buf = new Uint8Array(16);
    dma.read(0x2000_0000n + 2n * P - 8n, buf); // 8 remote bytes, then 8 mapped ones
    assert.deepEqual([...buf.subarray(0, 8)], [...memory.subarray(2 * PAGE - 8)]);
    assert.equal(buf[8], 0x77);
    dma.write(0x2000_0000n + 4n, Uint8Array.of(9, 8, 7));
    assert.deepEqual([...memory.subarray(4, 7)], [9, 8, 7]);
    assert.deepEqual([...dma.regionAt(0x2000_0000n)!.dirty], [0]);
    calls.length = 0;
    throwsCode(() => dma.write(0x2000_0000n + 2n * P - 4n, new Uint8Array(8)), 'DmaFault'); // the mapped part is read-only
    assert.deepEqual(calls, [], 'nothing was sent for a transfer that faults');
    failing = true;
    throwsCode(() => dma.read(0x2000_0000n, new Uint8Array(4)), 'DmaFault');
    dma.close();
    throwsCode(() => dma.read(0x2000_0000n, new Uint8Array(4)), 'DmaFault');
    throwsCode(() => dma.add({ iova: 0n, size: P, prot: RW, source: { kind: 'remote' } }), 'EINVAL');
  });

  it('maps a file in several windows and pins pages in any of them', () => {
    const { dma } = regions({ windowSize: PAGE });
    const fd = memfd(5, 0x3c);
    dma.add({ iova: 0n, size: 4n * P, prot: RW, source: { kind: 'file', fd, offset: P } });
    const views = dma.pin(0n, 4, IOMMU_READ);
    views.forEach((v, i) => assert.equal(v[0], (((i + 1) * PAGE) & 0xff) ^ 0x3c));
    views[3]![1] = 0x99;
    const check = new Uint8Array(1);
    a.pread(fd, check, 4n * P + 1n);
    assert.equal(check[0], 0x99, 'a pinned view is the shared memory itself');
    dma.unpin(0n, 4);
    dma.close();
  });
});
