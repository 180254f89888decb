// eventfd counter semantics, as eventfd(2) documents them.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';

const a = addon();
const c = a.constants;

function withEventfd<T>(initval: number, flags: number, use: (fd: number) => T): T {
  const fd = a.eventfd(initval, flags);
  try { return use(fd); } finally { a.close(fd); }
}

const isErrno = (code: 'EAGAIN' | 'EINVAL', syscall: string) => (err: unknown) => isSysError(err, code) && err.syscall === syscall;

describe('eventfd', () => {
  it('a read returns the counter and resets it; an empty non-blocking read is EAGAIN', () => {
    withEventfd(3, c.EFD_CLOEXEC | c.EFD_NONBLOCK, (fd) => {
      assert.equal(a.eventfdRead(fd), 3n);
      assert.throws(() => a.eventfdRead(fd), isErrno('EAGAIN', 'read'));
      a.eventfdWrite(fd, 1n);
      a.eventfdWrite(fd, 2n);
      a.eventfdWrite(fd, 0x100000000n);
      assert.equal(a.eventfdRead(fd), 0x100000003n);
      assert.throws(() => a.eventfdRead(fd), (err: unknown) => isSysError(err) && err.errno === 11 && err.message === 'read failed: EAGAIN');
    });
  });

  it('EFD_SEMAPHORE reads decrement by one', () => {
    withEventfd(2, c.EFD_SEMAPHORE | c.EFD_NONBLOCK, (fd) => {
      assert.equal(a.eventfdRead(fd), 1n);
      assert.equal(a.eventfdRead(fd), 1n);
      assert.throws(() => a.eventfdRead(fd), isErrno('EAGAIN', 'read'));
    });
  });

  it('writing 2^64-1 is EINVAL; overflowing the counter without blocking is EAGAIN', () => {
    withEventfd(0, c.EFD_NONBLOCK, (fd) => {
      assert.throws(() => a.eventfdWrite(fd, 0xffffffffffffffffn), isErrno('EINVAL', 'write'));
      a.eventfdWrite(fd, 0xfffffffffffffffen);
      assert.throws(() => a.eventfdWrite(fd, 1n), isErrno('EAGAIN', 'write'));
      assert.equal(a.eventfdRead(fd), 0xfffffffffffffffen);
    });
  });

  it('a Number value is accepted as well as a BigInt', () => {
    withEventfd(0, c.EFD_NONBLOCK, (fd) => {
      a.eventfdWrite(fd, 5 as unknown as bigint);
      assert.equal(a.eventfdRead(fd), 5n);
    });
  });

  it('bad flags are EINVAL', () => {
    assert.throws(() => a.eventfd(0, 0x40000000), isErrno('EINVAL', 'eventfd'));
  });
});
