// Every export refuses every wrong argument type with a TypeError, in-process, and the
// process carries on: no wrong value ever reaches a system call.
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';

const a = addon();
let efd = -1;
before(() => { efd = a.eventfd(0, a.constants.EFD_CLOEXEC | a.constants.EFD_NONBLOCK); });
after(() => { a.close(efd); });

type Call = (bad: unknown) => unknown;
interface Row { name: string; call: () => Call; bads: unknown[] }

const notInt = ['x', 1.5, NaN, Infinity, null, undefined, {}, 1n, true];
const notView = ['s', 1, null, undefined, {}, [1, 2], new ArrayBuffer(8), 1n];
const notOffset = [-1n, 2n ** 63n, -1, 1.5, 2 ** 53, 's', null, undefined, {}];
const buf = () => new Uint8Array(8);
// The typed signatures forbid the wrong values on purpose; call untyped.
const anyCall = (f: unknown) => f as (...args: unknown[]) => unknown;

const rows: Row[] = [
  { name: 'open path', call: () => (bad) => anyCall(a.open)(bad, a.constants.O_RDONLY), bads: [1, null, undefined, {}, 'a\0b', Buffer.from('/dev/null')] },
  { name: 'open flags', call: () => (bad) => anyCall(a.open)('/dev/null', bad), bads: [...notInt, 2 ** 32, -(2 ** 31) - 1] },
  { name: 'open mode', call: () => (bad) => anyCall(a.open)('/dev/null', 0, bad), bads: ['x', 1.5, null, {}, 1n] },
  { name: 'close fd', call: () => (bad) => anyCall(a.close)(bad), bads: [...notInt, 2 ** 31, -(2 ** 31) - 1] },
  { name: 'dup fd', call: () => (bad) => anyCall(a.dup)(bad), bads: [...notInt, 2 ** 31, -(2 ** 31) - 1] },
  { name: 'ioctl fd', call: () => (bad) => anyCall(a.ioctl)(bad, a.constants.FIONREAD), bads: notInt },
  { name: 'ioctl request', call: () => (bad) => anyCall(a.ioctl)(efd, bad), bads: [...notInt, 2 ** 32, -(2 ** 31) - 1] },
  { name: 'ioctl arg', call: () => (bad) => anyCall(a.ioctl)(efd, a.constants.FIONREAD, bad),
    bads: ['z', 1.5, NaN, Infinity, 2 ** 64, -(2 ** 64), null, {}, [], 1n, true, new ArrayBuffer(4), () => 0, Symbol('s')] },
  { name: 'pread fd', call: () => (bad) => anyCall(a.pread)(bad, buf(), 0n), bads: notInt },
  { name: 'pread buf', call: () => (bad) => anyCall(a.pread)(efd, bad, 0n), bads: notView },
  { name: 'pread offset', call: () => (bad) => anyCall(a.pread)(efd, buf(), bad), bads: notOffset },
  { name: 'pwrite fd', call: () => (bad) => anyCall(a.pwrite)(bad, buf(), 0n), bads: notInt },
  { name: 'pwrite buf', call: () => (bad) => anyCall(a.pwrite)(efd, bad, 0n), bads: notView },
  { name: 'pwrite offset', call: () => (bad) => anyCall(a.pwrite)(efd, buf(), bad), bads: notOffset },
  { name: 'mmap fd', call: () => (bad) => anyCall(a.mmap)(bad, 0n, 4096, a.constants.PROT_READ, a.constants.MAP_PRIVATE | a.constants.MAP_ANONYMOUS), bads: notInt },
  { name: 'mmap offset', call: () => (bad) => anyCall(a.mmap)(-1, bad, 4096, a.constants.PROT_READ, a.constants.MAP_PRIVATE | a.constants.MAP_ANONYMOUS), bads: notOffset },
  { name: 'mmap length', call: () => (bad) => anyCall(a.mmap)(-1, 0n, bad, a.constants.PROT_READ, a.constants.MAP_PRIVATE | a.constants.MAP_ANONYMOUS),
    bads: [-1, -4096, 1.5, 2 ** 53, NaN, 's', null, undefined, 4096n] },
  { name: 'mmap prot', call: () => (bad) => anyCall(a.mmap)(-1, 0n, 4096, bad, a.constants.MAP_PRIVATE | a.constants.MAP_ANONYMOUS), bads: notInt },
  { name: 'mmap flags', call: () => (bad) => anyCall(a.mmap)(-1, 0n, 4096, a.constants.PROT_READ, bad), bads: notInt },
  { name: 'munmap buffer', call: () => (bad) => anyCall(a.munmap)(bad),
    bads: [undefined, null, 1, 'x', {}, new ArrayBuffer(8), new Uint8Array(8), new SharedArrayBuffer(8), Buffer.alloc(8)] },
  { name: 'addressOf target', call: () => (bad) => anyCall(a.addressOf)(bad), bads: [undefined, null, 1, 'x', {}, [1], 1n] },
  { name: 'eventfd initval', call: () => (bad) => anyCall(a.eventfd)(bad, 0), bads: [...notInt, -1, 2 ** 32] },
  { name: 'eventfd flags', call: () => (bad) => anyCall(a.eventfd)(0, bad), bads: notInt },
  { name: 'eventfdRead fd', call: () => (bad) => anyCall(a.eventfdRead)(bad), bads: notInt },
  { name: 'eventfdWrite fd', call: () => (bad) => anyCall(a.eventfdWrite)(bad, 1n), bads: notInt },
  { name: 'eventfdWrite value', call: () => (bad) => anyCall(a.eventfdWrite)(efd, bad), bads: [-1n, 2n ** 64n, -1, 1.5, 's', null, undefined, {}] },
  { name: 'memfdCreate name', call: () => (bad) => anyCall(a.memfdCreate)(bad, 0), bads: [1, null, undefined, {}, 'a\0b'] },
  { name: 'memfdCreate flags', call: () => (bad) => anyCall(a.memfdCreate)('x', bad), bads: notInt },
  { name: 'ftruncate fd', call: () => (bad) => anyCall(a.ftruncate)(bad, 0n), bads: notInt },
  { name: 'ftruncate length', call: () => (bad) => anyCall(a.ftruncate)(efd, bad), bads: notOffset },
  { name: 'watch fd', call: () => (bad) => anyCall(a.watch)(bad, () => {}), bads: notInt },
  { name: 'watch onReady', call: () => (bad) => anyCall(a.watch)(efd, bad), bads: [undefined, null, 'f', 1, {}, [], 1n] },
  { name: 'watch events', call: () => (bad) => anyCall(a.watch)(efd, () => {}, bad), bads: ['x', 1.5, NaN, null, {}, 1n, true, 0, 4, -1] },
  { name: 'bind fd', call: () => (bad) => anyCall(a.bind)(bad, '/tmp/x'), bads: notInt },
  { name: 'bind path', call: () => (bad) => anyCall(a.bind)(efd, bad), bads: [1, null, undefined, {}, 'a\0b', Buffer.from('/tmp/x')] },
  { name: 'listen fd', call: () => (bad) => anyCall(a.listen)(bad, 1), bads: notInt },
  { name: 'listen backlog', call: () => (bad) => anyCall(a.listen)(efd, bad), bads: [...notInt, -1, 2 ** 31] },
  { name: 'accept fd', call: () => (bad) => anyCall(a.accept)(bad), bads: notInt },
  { name: 'connect fd', call: () => (bad) => anyCall(a.connect)(bad, '/tmp/x'), bads: notInt },
  { name: 'connect path', call: () => (bad) => anyCall(a.connect)(efd, bad), bads: [1, null, undefined, {}, 'a\0b'] },
  { name: 'shutdown fd', call: () => (bad) => anyCall(a.shutdown)(bad, 1), bads: notInt },
  { name: 'shutdown how', call: () => (bad) => anyCall(a.shutdown)(efd, bad), bads: [...notInt, 2 ** 31] },
  { name: 'sendmsg fd', call: () => (bad) => anyCall(a.sendmsg)(bad, buf()), bads: notInt },
  { name: 'sendmsg data', call: () => (bad) => anyCall(a.sendmsg)(efd, bad), bads: notView },
  { name: 'sendmsg fds', call: () => (bad) => anyCall(a.sendmsg)(efd, buf(), bad),
    bads: ['x', 1, null, {}, Int32Array.of(1), [1.5], ['1'], [null], [2 ** 31], new Array(254).fill(0)] },
  { name: 'recvmsg fd', call: () => (bad) => anyCall(a.recvmsg)(bad, buf(), 0), bads: notInt },
  { name: 'recvmsg buf', call: () => (bad) => anyCall(a.recvmsg)(efd, bad, 0), bads: [...notView, new Uint8Array(0)] },
  { name: 'recvmsg maxFds', call: () => (bad) => anyCall(a.recvmsg)(efd, buf(), bad), bads: [...notInt, -1, 254] },
  { name: 'poll fd', call: () => (bad) => anyCall(a.poll)(bad, 1, 0), bads: notInt },
  { name: 'poll events', call: () => (bad) => anyCall(a.poll)(efd, bad, 0), bads: [...notInt, -1, 0x10000] },
  { name: 'poll timeoutMs', call: () => (bad) => anyCall(a.poll)(efd, 1, bad), bads: [...notInt, -2, 2 ** 31] },
];

describe('addon argument checks', () => {
  for (const row of rows) {
    it(`${row.name}: ${row.bads.length} wrong values throw TypeError`, () => {
      const call = row.call();
      for (const bad of row.bads) {
        assert.throws(() => call(bad), (err: unknown) => {
          assert.ok(err instanceof TypeError, `${row.name} ${String(bad)}: ${String(err)}`);
          assert.equal((err as { code?: string }).code, 'ERR_INVALID_ARG_TYPE');
          assert.match(err.message, /^The "\w+" argument must be /);
          return true;
        }, `${row.name} accepted ${typeof bad === 'symbol' ? 'a symbol' : String(bad)}`);
      }
    });
  }

  it('the process is still healthy after all of them', () => {
    a.eventfdWrite(efd, 2n);
    assert.equal(a.eventfdRead(efd), 2n);
  });
});
