// open/close/ioctl/pread/pwrite against real kernel objects, and the shape of the
// errors they throw (code, errno, syscall, message), which src/addon/errors.ts relies on.
import { strict as assert } from 'node:assert';
import { readFileSync, unlinkSync } from 'node:fs';
import { constants as os } from 'node:os';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';

const a = addon();
const c = a.constants;
const GiB = 1024n ** 3n;

function expectErrno(fn: () => unknown, code: keyof typeof os.errno, syscall: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error && !(err instanceof TypeError), String(err));
    assert.ok(isSysError(err, code), `${String(err)} is not ${code}`);
    assert.equal(err.errno, os.errno[code]);
    assert.equal(err.syscall, syscall);
    assert.equal(err.message, `${syscall} failed: ${code}`);
    return true;
  });
}

function withMemfd<T>(use: (fd: number) => T): T {
  const fd = a.memfdCreate('vfio-vgpu-test', c.MFD_CLOEXEC);
  try { return use(fd); } finally { a.close(fd); }
}

describe('open and close', () => {
  it('opens /dev/null read-write with O_CLOEXEC and closes it', () => {
    const fd = a.open('/dev/null', c.O_RDWR | c.O_CLOEXEC);
    assert.ok(Number.isInteger(fd) && fd > 2);
    a.close(fd);
    expectErrno(() => a.close(fd), 'EBADF', 'close');
  });

  it('throws ENOENT for a missing path and EISDIR for a directory opened for writing', () => {
    expectErrno(() => a.open('/nonexistent/vfio-vgpu', c.O_RDONLY), 'ENOENT', 'open');
    expectErrno(() => a.open('/', c.O_RDWR), 'EISDIR', 'open');
  });

  it('creates a file with the given mode', () => {
    const path = `/tmp/vfio-vgpu-open-${process.pid}`;
    const fd = a.open(path, c.O_RDWR | c.O_CREAT | c.O_EXCL | c.O_CLOEXEC, 0o600);
    try {
      expectErrno(() => a.open(path, c.O_RDWR | c.O_CREAT | c.O_EXCL, 0o600), 'EEXIST', 'open');
    } finally {
      a.close(fd);
      unlinkSync(path);  // the addon has no unlink
    }
  });

  it('close(-1) is EBADF', () => {
    expectErrno(() => a.close(-1), 'EBADF', 'close');
  });
});

describe('dup', () => {
  it('gives a close-on-exec fd for the same open file, which outlives the original', () => {
    const efd = a.eventfd(0, c.EFD_CLOEXEC | c.EFD_NONBLOCK);
    const copy = a.dup(efd);
    try {
      assert.notEqual(copy, efd);
      assert.match(readFileSync(`/proc/self/fdinfo/${copy}`, 'utf8'), /^flags:\s+0?2[0-7]{6}$/m, 'O_CLOEXEC is set');
      a.close(efd);
      a.eventfdWrite(copy, 3n);
      assert.equal(a.eventfdRead(copy), 3n, 'the same counter, still there');
    } finally {
      a.close(copy);
    }
  });

  it('dup of a closed fd is EBADF', () => {
    expectErrno(() => a.dup(-1), 'EBADF', 'dup');
    const fd = a.open('/dev/null', c.O_RDONLY | c.O_CLOEXEC);
    a.close(fd);
    expectErrno(() => a.dup(fd), 'EBADF', 'dup');
  });
});

describe('ioctl', () => {
  it('FIONREAD on a memfd writes its size through an Int32Array and returns 0', () => {
    withMemfd((fd) => {
      a.ftruncate(fd, 1234n);
      const out = new Int32Array(1);
      assert.equal(a.ioctl(fd, c.FIONREAD, out), 0);
      assert.equal(out[0], 1234);
    });
  });

  it('passes a view by pointer to its first byte, honouring byteOffset', () => {
    withMemfd((fd) => {
      a.ftruncate(fd, 0x01020304n);
      const backing = new ArrayBuffer(16);
      assert.equal(a.ioctl(fd, c.FIONREAD, new DataView(backing, 4, 4)), 0);
      assert.deepEqual([...new Uint8Array(backing)], [0, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
      const buffer = Buffer.alloc(12, 0xff);
      assert.equal(a.ioctl(fd, c.FIONREAD, buffer.subarray(8)), 0);
      assert.deepEqual([...buffer], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4, 3, 2, 1]);
    });
  });

  it('passes numbers by value: 0, undefined and -1 are bad pointers (EFAULT)', () => {
    withMemfd((fd) => {
      expectErrno(() => a.ioctl(fd, c.FIONREAD), 'EFAULT', 'ioctl');
      expectErrno(() => a.ioctl(fd, c.FIONREAD, 0), 'EFAULT', 'ioctl');
      expectErrno(() => a.ioctl(fd, c.FIONREAD, -1), 'EFAULT', 'ioctl');
    });
  });

  it('FIOCLEX/FIONCLEX work on any fd and return 0', () => {
    const fd = a.open('/dev/null', c.O_RDONLY);
    try {
      assert.equal(a.ioctl(fd, c.FIONCLEX), 0);
      assert.equal(a.ioctl(fd, c.FIOCLEX, 0), 0);
    } finally { a.close(fd); }
  });

  it('returns what the ioctl returns when it is not 0', () => {
    // NS_GET_NSTYPE (_IO(0xb7, 3)) returns the namespace's CLONE_NEW* flag.
    const expected = { net: 0x40000000, uts: 0x04000000, ipc: 0x08000000 };
    for (const [ns, flag] of Object.entries(expected)) {
      const fd = a.open(`/proc/self/ns/${ns}`, c.O_RDONLY | c.O_CLOEXEC);
      try {
        assert.equal(a.ioctl(fd, 0xb703), flag, ns);
        assert.equal(a.ioctl(fd, 0xb703, 0), flag, ns);
      } finally { a.close(fd); }
    }
  });

  it('an ioctl the driver does not know is ENOTTY; a bad fd is EBADF', () => {
    const fd = a.open('/dev/null', c.O_RDWR);
    try {
      expectErrno(() => a.ioctl(fd, c.FIONREAD, new Int32Array(1)), 'ENOTTY', 'ioctl');
      expectErrno(() => a.ioctl(fd, a.vfio.ioctls.VFIO_GET_API_VERSION!), 'ENOTTY', 'ioctl');
    } finally { a.close(fd); }
    expectErrno(() => a.ioctl(-1, c.FIONREAD, new Int32Array(1)), 'EBADF', 'ioctl');
  });

  it('accepts request numbers with the top bit set as negative or unsigned', () => {
    const fd = a.open('/dev/null', c.O_RDWR);
    try {
      // _IOR('x', 1, int): unknown to /dev/null either way, so ENOTTY, not TypeError.
      expectErrno(() => a.ioctl(fd, 0x80047801), 'ENOTTY', 'ioctl');
      expectErrno(() => a.ioctl(fd, 0x80047801 | 0), 'ENOTTY', 'ioctl');
    } finally { a.close(fd); }
  });
});

describe('ioctl buffer sizes', () => {
  it('refuses a buffer smaller than the size an _IOR/_IOW request encodes, before the kernel writes past it', () => {
    const fd = a.open('/dev/null', c.O_RDWR);
    try {
      const IOR_8 = 0x80087801;  // _IOR('x', 1, 8 bytes): direction read, size 8
      for (const small of [new Uint8Array(7), new Uint32Array(1), new DataView(new ArrayBuffer(16), 10)]) {
        assert.throws(() => a.ioctl(fd, IOR_8, small), (err: unknown) =>
          err instanceof TypeError && /smaller than the size the request encodes/.test(err.message));
      }
      for (const enough of [new Uint8Array(8), new BigUint64Array(1), new DataView(new ArrayBuffer(16), 8)]) {
        expectErrno(() => a.ioctl(fd, IOR_8, enough), 'ENOTTY', 'ioctl');
      }
      // Numbers are raw pointers or values, never checked; _IO requests encode no size.
      expectErrno(() => a.ioctl(fd, IOR_8, 0), 'ENOTTY', 'ioctl');
      expectErrno(() => a.ioctl(fd, a.vfio.ioctls.VFIO_DEVICE_GET_INFO!, new Uint8Array(1)), 'ENOTTY', 'ioctl');
    } finally { a.close(fd); }
  });
});

describe('pread and pwrite', () => {
  it('work at offsets above 4 GiB of a sparse 5 GiB memfd', () => {
    withMemfd((fd) => {
      a.ftruncate(fd, 5n * GiB);
      assert.equal(a.pwrite(fd, Buffer.from('hello'), 4n * GiB + 1n), 5);
      const out = new Uint8Array(7);
      assert.equal(a.pread(fd, out, 4n * GiB), 7);
      assert.deepEqual([...out], [0, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0]);
      assert.equal(a.pread(fd, out, 5n * GiB), 0, 'at end of file');
      // a Number offset is the same offset
      const two = new Uint8Array(2);
      assert.equal(a.pread(fd, two, Number(4n * GiB + 2n) as unknown as bigint), 2);
      assert.deepEqual([...two], [0x65, 0x6c]);
    });
  });

  it('honour byteOffset and byteLength of the view', () => {
    withMemfd((fd) => {
      const src = new Uint8Array([1, 2, 3, 4, 5, 6]);
      assert.equal(a.pwrite(fd, src.subarray(2, 4), 10n), 2);
      const dst = new Uint8Array(16).fill(9);
      assert.equal(a.pread(fd, new DataView(dst.buffer, 8, 4), 9n), 3);
      assert.deepEqual([...dst], [9, 9, 9, 9, 9, 9, 9, 9, 0, 3, 4, 9, 9, 9, 9, 9]);
    });
  });

  it('report EBADF, and ESPIPE on an eventfd', () => {
    expectErrno(() => a.pread(-1, new Uint8Array(1), 0n), 'EBADF', 'pread');
    const efd = a.eventfd(0, c.EFD_NONBLOCK);
    try {
      expectErrno(() => a.pwrite(efd, new Uint8Array(8), 0n), 'ESPIPE', 'pwrite');
    } finally { a.close(efd); }
  });
});
