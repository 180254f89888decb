// SharedMemory (src/sys/mock/memory.ts): a memfd of any size, read and written at any
// offset through pread/pwrite, mapped in windows, its whole view made only on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { addon } from '../../src/addon/addon.js';
import { createSharedMemory } from '../../src/device/memory.js';
import { PROT_READ, PROT_WRITE } from '../../src/sys/types.js';

const GiB = 1024 ** 3;
const RW = PROT_READ | PROT_WRITE;
const page = addon().pageSize;

function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.includes(`/memfd:${name} `)).length;
}

test('read and write reach any offset of an 8 GiB memory; a window mapped near the end sees them', () => {
  const name = `shm-big-${process.pid}`;
  const mem = createSharedMemory(name, 8 * GiB);
  try {
    assert.equal(mem.size, 8 * GiB);
    assert.equal(mappingsOf(name), 0, 'nothing is mapped until asked');
    const at = 8 * GiB - page - 3; // above 4 GiB, across the last two pages
    mem.write(at, Uint8Array.of(1, 2, 3, 4, 5, 6));
    const back = new Uint8Array(8);
    mem.read(at - 1, back);
    assert.deepEqual([...back], [0, 1, 2, 3, 4, 5, 6, 0]);
    const window = mem.map(8 * GiB - 2 * page, 2 * page, RW);
    assert.equal(mappingsOf(name), 1);
    const view = new Uint8Array(window.buffer);
    assert.deepEqual([...view.subarray(page - 3, page + 3)], [1, 2, 3, 4, 5, 6]);
    view[2 * page - 1] = 0xee;
    const last = new Uint8Array(1);
    mem.read(8 * GiB - 1, last);
    assert.equal(last[0], 0xee, 'a write through the window is what read sees');
    mem.unmap(window);
    mem.unmap(window); // idempotent
    assert.equal(window.buffer.byteLength, 0, 'detached');
    assert.equal(mappingsOf(name), 0);
  } finally {
    mem.close();
  }
});

test('bytes: made on first use; a RangeError naming the ArrayBuffer limit when the memory is larger', () => {
  const name = `shm-view-${process.pid}`;
  const small = createSharedMemory(name, 3 * page + 10);
  try {
    assert.equal(mappingsOf(name), 0);
    const bytes = small.bytes;
    assert.equal(bytes.byteLength, 3 * page + 10);
    assert.equal(small.bytes, bytes, 'one view, made once');
    assert.equal(mappingsOf(name), 1);
    bytes[3 * page + 9] = 0x5a;
    const b = new Uint8Array(1);
    small.read(3 * page + 9, b);
    assert.equal(b[0], 0x5a);
  } finally {
    small.close();
  }
  assert.equal(mappingsOf(name), 0, 'close unmaps the owner view');
  const big = createSharedMemory(`shm-huge-${process.pid}`, bufferConstants.MAX_LENGTH + page);
  try {
    const limit = `${bufferConstants.MAX_LENGTH / GiB} GiB`;
    assert.throws(() => big.bytes, (err: unknown) => err instanceof RangeError && err.message.includes(limit) && err.message.includes('map()'));
    assert.equal(mappingsOf(`shm-huge-${process.pid}`), 0);
  } finally {
    big.close();
  }
});

test('bad ranges are EINVAL; after close read, write, map and bytes are EBADF, unmap still works', () => {
  const mem = createSharedMemory(`shm-errors-${process.pid}`, 2 * page);
  const window = mem.map(0, page, RW);
  const other = createSharedMemory(`shm-other-${process.pid}`, page);
  try {
    assert.throws(() => mem.read(2 * page - 1, new Uint8Array(2)), { code: 'EINVAL', syscall: 'pread' });
    assert.throws(() => mem.write(-1, new Uint8Array(1)), { code: 'EINVAL', syscall: 'pwrite' });
    assert.throws(() => mem.write(0.5, new Uint8Array(1)), { code: 'EINVAL' });
    mem.read(2 * page, new Uint8Array(0)); // nothing to do at the very end
    assert.throws(() => mem.map(100, page, RW), { code: 'EINVAL', syscall: 'mmap' });
    assert.throws(() => mem.map(page, 2 * page, RW), { code: 'EINVAL', syscall: 'mmap' });
    const foreign = other.map(0, page, RW);
    assert.throws(() => mem.unmap(foreign), { code: 'EINVAL', syscall: 'munmap' });
    other.unmap(foreign);
  } finally {
    other.close();
    mem.close();
    mem.close(); // idempotent
  }
  for (const act of [() => mem.read(0, new Uint8Array(1)), () => mem.write(0, new Uint8Array(1)), () => mem.map(0, page, RW), () => mem.bytes]) {
    assert.throws(act, { code: 'EBADF' });
  }
  new Uint8Array(window.buffer)[0] = 1; // a window outlives the memfd
  mem.unmap(window);
  assert.equal(window.buffer.byteLength, 0);
});
