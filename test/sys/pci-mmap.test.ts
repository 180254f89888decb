// mmap of the simulated edu's BAR0 through vfio-pci: which regions map, the bounds,
// and the shared-memory shadow that keeps a mapping in step with edu's registers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { PROT_READ, PROT_WRITE } from '../../src/sys/types.js';
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
