// mmap/munmap as ArrayBuffers: zero-copy, detached on munmap, idempotent, never
// unmapping memory that is not ours, unmapped by the finalizer when dropped.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';
import { runChild } from './child.js';

const a = addon();
const c = a.constants;
const RW = c.PROT_READ | c.PROT_WRITE;
const ANON = c.MAP_PRIVATE | c.MAP_ANONYMOUS;

/** How many lines of /proc/self/maps name this memfd. */
function mappingsOf(name: string): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.includes(`/memfd:${name}`)).length;
}

describe('mmap', () => {
  it('maps zeroed, page-aligned anonymous memory as an ArrayBuffer', () => {
    const buffer = a.mmap(-1, 0n, 3 * a.pageSize, RW, ANON);
    try {
      assert.equal(buffer.byteLength, 3 * a.pageSize);
      assert.equal(a.addressOf(buffer) % BigInt(a.pageSize), 0n);
      const bytes = new Uint8Array(buffer);
      assert.ok(bytes.every((b) => b === 0));
      bytes[bytes.length - 1] = 0xa5;
      assert.equal(new Uint8Array(buffer)[bytes.length - 1], 0xa5);
    } finally { a.munmap(buffer); }
  });

  it('pageSize is the system page size', () => {
    assert.ok([4096, 16384, 65536].includes(a.pageSize));
  });

  it('two MAP_SHARED mappings of one memfd alias the same memory', () => {
    const fd = a.memfdCreate('vfio-vgpu-alias', c.MFD_CLOEXEC);
    try {
      a.ftruncate(fd, BigInt(2 * a.pageSize));
      const one = a.mmap(fd, 0n, 2 * a.pageSize, RW, c.MAP_SHARED);
      const two = a.mmap(fd, BigInt(a.pageSize), a.pageSize, RW, c.MAP_SHARED);
      try {
        assert.notEqual(a.addressOf(one), a.addressOf(two));
        new Uint8Array(one)[a.pageSize + 7] = 42;
        assert.equal(new Uint8Array(two)[7], 42);
        new DataView(two).setUint32(100, 0xdeadbeef, true);
        assert.equal(new DataView(one).getUint32(a.pageSize + 100, true), 0xdeadbeef);
        const read = new Uint8Array(1);
        assert.equal(a.pread(fd, read, BigInt(a.pageSize + 7)), 1);
        assert.equal(read[0], 42);
      } finally { a.munmap(one); a.munmap(two); }
    } finally { a.close(fd); }
  });

  it('reports the kernel errors: EINVAL for length 0 or an unaligned offset, EBADF, EACCES', () => {
    const check = (fn: () => unknown, code: 'EINVAL' | 'EBADF' | 'EACCES') =>
      assert.throws(fn, (err: unknown) => isSysError(err, code) && err.syscall === 'mmap');
    check(() => a.mmap(-1, 0n, 0, RW, ANON), 'EINVAL');
    check(() => a.mmap(-1, 0n, 4096, RW, c.MAP_SHARED), 'EBADF');
    const fd = a.memfdCreate('vfio-vgpu-errors', c.MFD_CLOEXEC);
    try {
      a.ftruncate(fd, BigInt(4 * a.pageSize));
      check(() => a.mmap(fd, 1n, a.pageSize, RW, c.MAP_SHARED), 'EINVAL');
    } finally { a.close(fd); }
    const ro = a.open('/proc/self/exe', c.O_RDONLY | c.O_CLOEXEC);
    try { check(() => a.mmap(ro, 0n, a.pageSize, RW, c.MAP_SHARED), 'EACCES'); } finally { a.close(ro); }
  });
});

describe('mmap beyond the largest ArrayBuffer', () => {
  it('throws ERR_BUFFER_TOO_LARGE and leaves nothing mapped', () => {
    const name = `vfio-vgpu-huge-${process.pid}`;
    const fd = a.memfdCreate(name, c.MFD_CLOEXEC);
    try {
      const length = 2 ** 32 + a.pageSize;  // over buffer.constants.MAX_LENGTH on Node 20
      a.ftruncate(fd, BigInt(length));
      let mapped: ArrayBuffer | undefined;
      try {
        mapped = a.mmap(fd, 0n, length, RW, c.MAP_SHARED);
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'ERR_BUFFER_TOO_LARGE');
      }
      if (mapped !== undefined) {
        // A Node whose ArrayBuffers can be this large: then it must simply work.
        assert.equal(mapped.byteLength, length);
        a.munmap(mapped);
      }
      assert.equal(mappingsOf(name), 0);
    } finally { a.close(fd); }
  });
});

describe('munmap', () => {
  it('detaches the buffer and every view of it, and really unmaps', () => {
    const name = `vfio-vgpu-munmap-${process.pid}`;
    const fd = a.memfdCreate(name, c.MFD_CLOEXEC);
    try {
      a.ftruncate(fd, BigInt(a.pageSize));
      const buffer = a.mmap(fd, 0n, a.pageSize, RW, c.MAP_SHARED);
      const view = new Uint8Array(buffer);
      view[0] = 1;
      assert.equal(mappingsOf(name), 1);
      a.munmap(buffer);
      assert.equal(mappingsOf(name), 0);
      assert.equal(buffer.byteLength, 0);
      assert.equal(view.length, 0);
      assert.equal(view[0], undefined);
      assert.throws(() => new Uint8Array(buffer), TypeError);
      assert.throws(() => new DataView(buffer), TypeError);
    } finally { a.close(fd); }
  });

  it('a second munmap of the same buffer is a no-op', () => {
    const buffer = a.mmap(-1, 0n, a.pageSize, RW, ANON);
    a.munmap(buffer);
    a.munmap(buffer);
    assert.equal(buffer.byteLength, 0);
  });

  it('refuses buffers that did not come from mmap, leaving them intact', () => {
    const plain = new ArrayBuffer(a.pageSize);
    assert.throws(() => a.munmap(plain), TypeError);
    assert.equal(plain.byteLength, a.pageSize);
    const mapped = a.mmap(-1, 0n, a.pageSize, RW, ANON);
    try {
      assert.throws(() => a.munmap(new Uint8Array(mapped) as unknown as ArrayBuffer), TypeError);
      assert.equal(mapped.byteLength, a.pageSize);
    } finally { a.munmap(mapped); }
  });
});

describe('addressOf', () => {
  it('gives the address of the first byte of a buffer or view', () => {
    const buffer = new ArrayBuffer(64);
    const base = a.addressOf(buffer);
    assert.ok(base > 0n);
    assert.equal(a.addressOf(new Uint8Array(buffer, 5)), base + 5n);
    assert.equal(a.addressOf(new Uint32Array(buffer, 8, 2)), base + 8n);
    assert.equal(a.addressOf(new DataView(buffer, 17)), base + 17n);
    const mapped = a.mmap(-1, 0n, a.pageSize, RW, ANON);
    try {
      assert.equal(a.addressOf(Buffer.from(mapped, 100, 8)), a.addressOf(mapped) + 100n);
    } finally { a.munmap(mapped); }
  });
});

describe('memfdCreate and ftruncate', () => {
  it('memfd starts empty; ftruncate sets its size; bad flags are EINVAL', () => {
    const fd = a.memfdCreate('vfio-vgpu-size', c.MFD_CLOEXEC | c.MFD_ALLOW_SEALING);
    try {
      const size = new Int32Array(1);
      a.ioctl(fd, c.FIONREAD, size);
      assert.equal(size[0], 0);
      a.ftruncate(fd, 8192n);
      a.ioctl(fd, c.FIONREAD, size);
      assert.equal(size[0], 8192);
    } finally { a.close(fd); }
    assert.throws(() => a.memfdCreate('x', 0x40000000), (err: unknown) => isSysError(err, 'EINVAL') && err.syscall === 'memfd_create');
    assert.throws(() => a.ftruncate(-1, 0n), (err: unknown) => isSysError(err, 'EBADF') && err.syscall === 'ftruncate');
  });
});

describe('the finalizer of a dropped mapping', () => {
  it('unmaps mappings collected without munmap, and never unmaps twice', () => {
    const result = runChild(`
      import { readFileSync } from 'node:fs';
      const c = addon.constants;
      const count = (name) => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/memfd:' + name)).length;
      const dropped = addon.memfdCreate('dropped', c.MFD_CLOEXEC);
      addon.ftruncate(dropped, 4096n);
      (() => { for (let i = 0; i < 20; i++) new Uint8Array(addon.mmap(dropped, 0n, 4096, 3, c.MAP_SHARED))[0] = i; })();
      // Unmapped explicitly, then its address is likely reused by the next mapping:
      // a finalizer unmapping again would take that one away.
      const firstAddress = (() => {
        const first = addon.mmap(-1, 0n, 65536, 3, c.MAP_PRIVATE | c.MAP_ANONYMOUS);
        const address = addon.addressOf(first);
        addon.munmap(first);
        return address;
      })();
      const kept = addon.memfdCreate('kept', c.MFD_CLOEXEC);
      addon.ftruncate(kept, 65536n);
      const survivor = addon.mmap(kept, 0n, 65536, 3, c.MAP_SHARED);
      new Uint8Array(survivor)[65535] = 7;
      const before = count('dropped');
      const gc = () => new Promise((resolve) => { globalThis.gc(); setTimeout(resolve, 20); });
      for (let i = 0; i < 5 && count('dropped') > 0; i++) await gc();
      console.log(JSON.stringify({ before, after: count('dropped'), kept: count('kept'), reused: addon.addressOf(survivor) === firstAddress,
        last: new Uint8Array(survivor)[65535] }));
    `, { nodeArgs: ['--expose-gc'] });
    assert.equal(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.deepEqual({ ...out, reused: undefined }, { before: 20, after: 0, kept: 1, reused: undefined, last: 7 });
  });
});
