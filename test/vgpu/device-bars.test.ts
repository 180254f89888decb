// BAR accesses of a vGPU through the client: trapped registers get naturally aligned
// 1/2/4-byte pieces (8 bytes as two 4-byte pieces, lowest first), memory areas answer
// pread/pwrite and mmap, bytes of no area read all ones, the MSI-X table and PBA are the
// core's; clipping at the end, Memory Space Enable, and mmap's limits as vfio-pci's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROT_READ, PROT_WRITE } from '../../src/sys/types.js';
import { withVgpu, assertErrno, type VgpuRig } from './fixtures/device-rig.js';
import { ID_VALUE, REG } from './fixtures/test-model.js';

const pieces = (rig: VgpuRig): string[] => rig.model.log.splice(0).map((a) => `${a.op}${a.size}@${a.offset.toString(16)}`);

test('trapped registers: read32 reaches the handler once; read64 is two 4-byte reads, lowest address first', () => {
  withVgpu((rig) => {
    const bar0 = rig.device.bar(0);
    assert.equal(bar0.read32(REG.ID), ID_VALUE);
    assert.deepEqual(pieces(rig), ['r4@0']);
    bar0.write32(REG.SCRATCH, 0x1234);
    assert.equal(bar0.read64(REG.ID), BigInt(ID_VALUE) | (0x1234n << 32n));
    assert.deepEqual(pieces(rig), ['w4@4', 'r4@0', 'r4@4']);
    bar0.write64(0x20, 0x11223344_55667788n);
    assert.deepEqual(rig.model.log.splice(0).map((a) => [a.offset, a.value]), [[0x20, 0x55667788], [0x24, 0x11223344]]);
  });
});

test('unaligned and odd-sized accesses are split into naturally aligned pieces', () => {
  withVgpu((rig) => {
    const bar0 = rig.device.bar(0);
    bar0.read(1, 7);
    assert.deepEqual(pieces(rig), ['r1@1', 'r2@2', 'r4@4']);
    bar0.write(3, new Uint8Array(6));
    assert.deepEqual(pieces(rig), ['w1@3', 'w4@4', 'w1@8']);
    bar0.write16(REG.SCRATCH + 2, 0xbeef);
    bar0.write8(REG.SCRATCH, 0x42);
    assert.equal(bar0.read32(REG.SCRATCH), 0xbeef0042);
    assert.equal(bar0.read16(REG.SCRATCH + 2), 0xbeef);
    assert.equal(bar0.read8(REG.SCRATCH + 3), 0xbe);
  });
});

test('bytes no area covers read all ones and drop writes; a read across the edge mixes both', () => {
  withVgpu((rig) => {
    const bar0 = rig.device.bar(0);
    assert.equal(bar0.read32(0x100), 0xffffffff);
    bar0.write32(0x1ffc, 0);
    assert.deepEqual(pieces(rig), []);
    assert.deepEqual([...bar0.read(0xfc, 8)], [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert.deepEqual(pieces(rig), ['r4@fc']);
  });
});

test('memory areas answer pread/pwrite straight from the vendor memory', () => {
  withVgpu((rig) => {
    const bar2 = rig.device.bar(2);
    bar2.write(0x10, Uint8Array.of(1, 2, 3, 4, 5));
    assert.deepEqual([...rig.model.memLow.bytes.subarray(0x10, 0x15)], [1, 2, 3, 4, 5]);
    rig.model.memHigh.bytes.set([9, 8, 7], 0x1ffd);
    assert.deepEqual([...bar2.read(0x9ffd, 3)], [9, 8, 7]);
    assert.equal(bar2.read32(0xc000 + REG.ID), ID_VALUE, 'a trapped area beside the memory in the same BAR');
    // One bulk read over every kind of area (stopping before the register that faults).
    rig.model.memLow.bytes.fill(0x11);
    rig.model.memHigh.bytes.fill(0x22);
    const all = bar2.read(0, 0xc004);
    assert.equal(all.byteLength, 0xc004);
    const at = (o: number): number => all[o]!;
    assert.deepEqual([at(0), at(0x3fff), at(0x4000), at(0x7fff), at(0x8000), at(0x9fff), at(0xa000), at(0xbfff), at(0xc000), at(0xc003)],
      [0x11, 0x11, 0xff, 0xff, 0x22, 0x22, 0xff, 0xff, ID_VALUE & 0xff, ID_VALUE >>> 24]);
    const tail = bar2.read(0xc0fc, 0x3f04);
    assert.deepEqual([tail.byteLength, tail[0], tail[4], tail[0x3f03]], [0x3f04, 0, 0xff, 0xff]);
  });
});

test('end of the BAR: a read straddling it is short, at or past it EINVAL; unimplemented BARs EINVAL', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    const fd = device.fd;
    const buf = new Uint8Array(8);
    assert.equal(sys.pread(fd, buf, 0x1ffcn), 4);
    assertErrno(() => sys.pread(fd, buf, 0x2000n), 'EINVAL');
    assertErrno(() => sys.pwrite(fd, buf, 0x2000n), 'EINVAL');
    assertErrno(() => sys.pread(fd, buf, 1n << 40n), 'EINVAL', 'BAR1');
    assertErrno(() => sys.pread(fd, buf, 3n << 40n), 'EINVAL', 'upper half of BAR2');
    assertErrno(() => sys.pread(fd, buf, 6n << 40n), 'EINVAL', 'ROM');
    assertErrno(() => sys.pread(fd, buf, 8n << 40n), 'EINVAL', 'VGA');
    assertErrno(() => sys.pread(fd, buf, 9n << 40n), 'EINVAL', 'no region 9');
    assert.equal(sys.pread(fd, new Uint8Array(0), 9n << 40n), 0, 'a zero-length read does nothing');
  });
});

test('Memory Space Enable off: memory BARs are EIO, the I/O BAR still answers', () => {
  withVgpu((rig) => {
    const { device } = rig;
    device.config.command = 0x0001;
    assertErrno(() => device.bar(0).read32(0), 'EIO');
    assertErrno(() => device.bar(2).read32(0), 'EIO');
    assert.equal(device.bar(5).read32(REG.ID), ID_VALUE);
    device.config.command = 0x0003;
    assert.equal(device.bar(0).read32(0), ID_VALUE);
  });
});

test('mmap of a memory area shares the vendor memory both ways', () => {
  withVgpu((rig) => {
    const bar2 = rig.device.bar(2);
    const low = bar2.mmap(bar2.sparseAreas![0]);
    const high = bar2.mmap(bar2.sparseAreas![1]);
    low.bytes[0x123] = 0x5a;
    assert.equal(rig.model.memLow.bytes[0x123], 0x5a);
    rig.model.memHigh.bytes[0x10] = 0xa5;
    assert.equal(high.bytes[0x10], 0xa5);
    assert.equal(bar2.read8(0x123), 0x5a);
    // Part of an area, at a page inside it.
    const part = bar2.mmap({ offset: 0x1000, size: 0x1000 });
    part.bytes[0] = 0x77;
    assert.equal(rig.model.memLow.bytes[0x1000], 0x77);
  });
});

test('mmap outside memory areas, across their end, of BAR0, config, ROM or VGA, or unaligned is EINVAL', () => {
  withVgpu((rig) => {
    const { sys, device } = rig;
    const fd = device.fd;
    const rw = PROT_READ | PROT_WRITE;
    const bar2 = 2n << 40n;
    assertErrno(() => sys.mmap(fd, bar2 + 0x4000n, 0x1000, rw), 'EINVAL', 'a hole');
    assertErrno(() => sys.mmap(fd, bar2 + 0x3000n, 0x2000, rw), 'EINVAL', 'past the area');
    assertErrno(() => sys.mmap(fd, bar2 + 0xc000n, 0x1000, rw), 'EINVAL', 'a trapped area');
    assertErrno(() => sys.mmap(fd, bar2 + 0x10000n, 0x1000, rw), 'EINVAL', 'past the BAR');
    assertErrno(() => sys.mmap(fd, 0n, 0x1000, rw), 'EINVAL', 'BAR0 has no memory');
    assertErrno(() => sys.mmap(fd, 1n << 40n, 0x1000, rw), 'EINVAL', 'BAR1');
    for (const index of [6n, 7n, 8n, 9n]) assertErrno(() => sys.mmap(fd, index << 40n, 0x1000, rw), 'EINVAL', `region ${index}`);
    assertErrno(() => sys.mmap(fd, bar2 + 0x800n, 0x1000, rw), 'EINVAL', 'unaligned');
    assertErrno(() => sys.mmap(fd, bar2, 0, rw), 'EINVAL', 'empty');
  });
});

test('the MSI-X table and PBA live in BAR4 beside the vendor registers; vectors start masked', () => {
  withVgpu((rig) => {
    const bar4 = rig.device.bar(4);
    assert.deepEqual([0, 4, 8, 12].map((o) => bar4.read32(o)), [0, 0, 0, 1]);
    assert.equal(bar4.read32(7 * 16 + 12), 1);
    bar4.write64(16, 0x00000000_fee01000n);
    bar4.write32(16 + 8, 0x4041);
    bar4.write32(16 + 12, 0xfffffffe);
    assert.deepEqual([bar4.read64(16), bar4.read32(24), bar4.read32(28)], [0xfee01000n, 0x4041, 0]);
    assert.equal(bar4.read16(16 + 2), 0xfee0);
    assert.deepEqual([bar4.read32(0x800), bar4.read32(0x804)], [0, 0]);
    bar4.write32(0x800, 0xffffffff);
    assert.equal(bar4.read32(0x800), 0, 'the PBA is read-only');
    assert.equal(bar4.read32(0x808), 0xffffffff, 'past the PBA: nobody');
    assert.equal(bar4.read32(0x1000 + REG.ID), ID_VALUE);
    assert.deepEqual(pieces(rig), ['r4@0'], 'the vendor saw only its own register');
  });
});

test('the I/O BAR dispatches like the others', () => {
  withVgpu((rig) => {
    const bar5 = rig.device.bar(5);
    bar5.write32(REG.SCRATCH, 0xcafe);
    assert.equal(bar5.read32(REG.SCRATCH), 0xcafe);
    assert.deepEqual(rig.model.log.map((a) => [a.bar, a.op, a.offset]), [[5, 'w', 4], [5, 'r', 4]]);
  });
});
