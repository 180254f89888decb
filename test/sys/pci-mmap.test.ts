// mmap of the simulated edu's BAR0 through vfio-pci: which regions map, the bounds,
// and the shared-memory shadow that keeps a mapping in step with edu's registers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { PROT_READ, PROT_WRITE } from '../../src/sys/types.js';
import { ioctls } from '../../src/uapi/index.js';
import { assertErrno, bar0Read, cfgRead, cfgWrite, openEdu, waitFor } from './pci-helpers.js';

const RW = PROT_READ | PROT_WRITE;
const MiB = 1 << 20;

test('BAR0 maps whole; registers read through the mapping', () => {
  const rig = openEdu();
  const map = rig.sys.mmap(rig.fd, 0n, MiB, RW);
  try {
    assert.equal(map.length, MiB);
    const dv = new DataView(map.buffer);
    assert.equal(dv.getUint32(0x00, true), 0x010000ed);
    assert.equal(dv.getUint32(0x04, true), 0);
    assert.equal(dv.getUint32(0x10, true), 0xffffffff);
    assert.equal(dv.getUint32(0x84, true), 0xffffffff);
    assert.equal(dv.getUint32(0x8000, true), 0xffffffff);
    assert.equal(dv.getUint32(MiB - 4, true), 0xffffffff);
  } finally {
    rig.sys.munmap(map);
    rig.close();
  }
});

test('a store through the mapping is a register write: seen at the next trapped access or poll', async () => {
  const rig = openEdu();
  const map = rig.sys.mmap(rig.fd, 0n, 4096, RW);
  try {
    const dv = new DataView(map.buffer);
    dv.setUint32(0x04, 0x12345678, true);
    // The known difference: right after the store the mapping still shows it.
    assert.equal(dv.getUint32(0x04, true), 0x12345678);
    assert.equal(bar0Read(rig, 0x04), ~0x12345678 >>> 0);
    assert.equal(dv.getUint32(0x04, true), ~0x12345678 >>> 0);
    dv.setUint32(0x04, 0xf0f0f0f0, true);
    await waitFor(() => dv.getUint32(0x04, true) === 0x0f0f0f0f);
    // Two mappings share the same memory.
    const other = rig.sys.mmap(rig.fd, 0n, 4096, PROT_READ);
    try {
      assert.equal(new DataView(other.buffer).getUint32(0x04, true), 0x0f0f0f0f);
    } finally {
      rig.sys.munmap(other);
    }
  } finally {
    rig.sys.munmap(map);
    rig.close();
  }
});

test('the device updates the mapping on its own: factorial started through the mapping', async () => {
  const rig = openEdu();
  const map = rig.sys.mmap(rig.fd, 0n, 4096, RW);
  try {
    const dv = new DataView(map.buffer);
    dv.setUint32(0x08, 10, true);
    await waitFor(() => (dv.getUint32(0x20, true) & 1) === 0 && dv.getUint32(0x08, true) === 3628800);
    assert.equal(bar0Read(rig, 0x08), 3628800);
  } finally {
    rig.sys.munmap(map);
    rig.close();
  }
});

test('only BARs map, within PAGE_ALIGN(size); config, ROM, VGA and empty BARs are EINVAL', () => {
  const rig = openEdu();
  try {
    for (const index of [1n, 5n, 6n, 7n, 8n, 9n, 200n]) {
      assertErrno(() => rig.sys.mmap(rig.fd, index << 40n, 4096, RW), 'EINVAL');
    }
    assertErrno(() => rig.sys.mmap(rig.fd, 0n, MiB + 4096, RW), 'EINVAL');
    assertErrno(() => rig.sys.mmap(rig.fd, BigInt(MiB - 4096), 8192, RW), 'EINVAL');
    assertErrno(() => rig.sys.mmap(rig.fd, BigInt(MiB), 4096, RW), 'EINVAL');
    assertErrno(() => rig.sys.mmap(rig.fd, 100n, 4096, RW), 'EINVAL');
    assertErrno(() => rig.sys.mmap(rig.fd, 0n, 0, RW), 'EINVAL');
    const tail = rig.sys.mmap(rig.fd, BigInt(MiB - 4096), 100, RW); // the length rounds up to a page
    try {
      assert.equal(new DataView(tail.buffer).getUint32(96, true), 0xffffffff);
    } finally {
      rig.sys.munmap(tail);
    }
  } finally {
    rig.close();
  }
});

test('while Memory Space Enable is off, stores through a mapping never reach edu', () => {
  const rig = openEdu();
  const map = rig.sys.mmap(rig.fd, 0n, 4096, RW);
  try {
    const dv = new DataView(map.buffer);
    const cmd = cfgRead(rig, 0x04, 2);
    cfgWrite(rig, 0x04, 2, cmd & ~0x2);
    dv.setUint32(0x04, 0x11111111, true);
    cfgWrite(rig, 0x04, 2, cmd);
    assert.equal(dv.getUint32(0x04, true), 0, 'the mapping is refreshed from the device');
    assert.equal(bar0Read(rig, 0x04), 0);
  } finally {
    rig.sys.munmap(map);
    rig.close();
  }
});

test('closing the device releases the BAR memory (no fd left behind)', () => {
  const rig = openEdu();
  try {
    const before = readdirSync('/proc/self/fd').length;
    const map = rig.sys.mmap(rig.fd, 0n, 4096, RW);
    assert.equal(readdirSync('/proc/self/fd').length, before + 1, 'one memfd backs BAR0');
    rig.sys.munmap(map);
    rig.reopen();
    assert.equal(readdirSync('/proc/self/fd').length, before);
  } finally {
    rig.close();
  }
});

test('in low power a mapping is dead (the kernel would SIGBUS); leaving it brings the mapping back', () => {
  const rig = openEdu();
  const map = rig.sys.mmap(rig.fd, 0n, 4096, RW);
  const efd = rig.sys.eventfd();
  const feature = (id: number, data: number[] = []): void => {
    const buf = new Uint8Array(8 + 4 * data.length);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, buf.byteLength, true);
    dv.setUint32(4, (1 << 17) | id, true); // SET
    data.forEach((v, i) => dv.setInt32(8 + 4 * i, v, true));
    rig.sys.ioctl(rig.fd, ioctls.VFIO_DEVICE_FEATURE, buf);
  };
  try {
    const dv = new DataView(map.buffer);
    feature(3); // LOW_POWER_ENTRY
    dv.setUint32(0x04, 0x22222222, true);
    assert.equal(bar0Read(rig, 0x04), 0, 'the store never reached edu');
    feature(5); // LOW_POWER_EXIT
    assert.equal(dv.getUint32(0x04, true), 0);
    dv.setUint32(0x04, 0x33333333, true);
    assert.equal(bar0Read(rig, 0x04), ~0x33333333 >>> 0);
    feature(4, [efd, 0]); // LOW_POWER_ENTRY_WITH_WAKEUP: the next access wakes and exits
    assert.equal(bar0Read(rig, 0x00), 0x010000ed);
    assert.equal(rig.sys.eventfdRead(efd), 1n);
    dv.setUint32(0x04, 0x44444444, true);
    assert.equal(bar0Read(rig, 0x04), ~0x44444444 >>> 0);
  } finally {
    rig.sys.close(efd);
    rig.sys.munmap(map);
    rig.close();
  }
});
