// The addon exports exactly what src/addon/addon.ts declares, and its C library
// constants agree with the ones src/sys/types.ts hard-codes.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { O_CLOEXEC, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE } from '../../src/sys/types.js';
import { runChild } from './child.js';

const a = addon();

describe('addon exports', () => {
  it('has every function of the Addon interface', () => {
    const functions = ['open', 'close', 'dup', 'ioctl', 'pread', 'pwrite', 'mmap', 'munmap', 'addressOf', 'eventfd',
      'eventfdRead', 'eventfdWrite', 'memfdCreate', 'ftruncate', 'watch', 'socket', 'socketpair', 'bind', 'listen', 'accept',
      'connect', 'shutdown', 'sendmsg', 'recvmsg', 'poll', 'tryLockExclusive', 'peerCredentials'];
    for (const name of functions) assert.equal(typeof (a as unknown as Record<string, unknown>)[name], 'function', name);
    assert.equal(typeof a.pageSize, 'number');
    assert.deepEqual(Object.keys(a.vfio).sort(), ['constants', 'ioctls', 'structs']);
  });

  it('has the C library constants the layers above use', () => {
    const names = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_CLOEXEC', 'O_NONBLOCK', 'PROT_NONE', 'PROT_READ',
      'PROT_WRITE', 'MAP_SHARED', 'MAP_PRIVATE', 'MAP_ANONYMOUS', 'EFD_CLOEXEC', 'EFD_NONBLOCK', 'EFD_SEMAPHORE',
      'MFD_CLOEXEC', 'MFD_ALLOW_SEALING', 'FIONREAD', 'FIOCLEX', 'FIONCLEX', 'F_GETFD', 'F_GETFL', 'FD_CLOEXEC',
      'SHUT_RD', 'SHUT_WR', 'SHUT_RDWR', 'POLLIN', 'POLLOUT', 'POLLERR', 'POLLHUP', 'POLLNVAL'];
    const missing = names.filter((name) => typeof a.constants[name] !== 'number');
    assert.deepEqual(missing, []);
  });

  it('agrees with the constants src/sys/types.ts hard-codes', () => {
    assert.deepEqual(
      { O_RDONLY, O_RDWR, O_CLOEXEC, PROT_READ, PROT_WRITE },
      { O_RDONLY: a.constants.O_RDONLY, O_RDWR: a.constants.O_RDWR, O_CLOEXEC: a.constants.O_CLOEXEC,
        PROT_READ: a.constants.PROT_READ, PROT_WRITE: a.constants.PROT_WRITE });
  });

  it('has Linux\'s generic values for the flags that differ between C libraries least', () => {
    assert.equal(a.constants.PROT_NONE, 0);
    assert.equal(a.constants.MAP_SHARED, 1);
    assert.equal(a.constants.MAP_PRIVATE, 2);
    assert.equal(a.constants.EFD_SEMAPHORE, 1);
    assert.equal(a.constants.EFD_CLOEXEC, a.constants.O_CLOEXEC);
    assert.equal(a.constants.EFD_NONBLOCK, a.constants.O_NONBLOCK);
    assert.equal(a.constants.MFD_CLOEXEC, 1);
    assert.equal(a.constants.MFD_ALLOW_SEALING, 2);
  });
});

describe('addon object', () => {
  it('has fast properties, so a call such as a.ioctl() is not a hash lookup', () => {
    // The addon's own exports object is a hash table (its 33 properties were added one by one).
    const result = runChild('console.log(%HasFastProperties(addon));', { nodeArgs: ['--allow-natives-syntax'] });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'true');
  });
});
