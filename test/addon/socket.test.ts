// AF_UNIX stream sockets with fd passing (native/socket.cc, src/addon/unix-socket.ts):
// the round trips vfio-user needs, the errors a server meets (EAGAIN, EOF, EPIPE,
// ECONNRESET, EMSGSIZE), and that no path, failing or not, leaves an fd open.
import { strict as assert } from 'node:assert';
import { fstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { constants as os, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';
import {
  acceptUnix, connectUnix, isTruncated, listenUnix, MAX_FDS_PER_MESSAGE, pollFd, recvWithFds, sendWithFds,
} from '../../src/addon/unix-socket.js';
import { runChild } from './child.js';

const a = addon();
const c = a.constants;
const O_CLOEXEC = c.O_CLOEXEC!;
const O_NONBLOCK = c.O_NONBLOCK!;

let dir = '';
let serial = 0;
before(() => { dir = mkdtempSync(join(tmpdir(), 'vgpu-sock-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });
const socketPath = () => join(dir, `s${serial++}`);

const openFds = () => readdirSync('/proc/self/fd').length;

/** The open flags of an fd as the kernel reports them (octal in fdinfo; O_CLOEXEC included). */
function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('flags:'));
  assert.ok(line !== undefined);
  return parseInt(line.slice('flags:'.length).trim(), 8);
}

function expectErrno(fn: () => unknown, code: keyof typeof os.errno, syscall: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSysError(err, code), `${String(err)} is not ${code}`);
    assert.equal(err.errno, os.errno[code]);
    assert.equal(err.syscall, syscall);
    return true;
  });
}

function expectTypeError(fn: () => unknown, what: string): void {
  assert.throws(fn, (err: unknown) => err instanceof TypeError && (err as { code?: string }).code === 'ERR_INVALID_ARG_TYPE', what);
}

/**
 * Runs `use` on a connected socketpair and closes both ends after, but not one the test
 * closed itself through `hangUp` (its number may belong to a newer fd by then).
 */
function withPair<T>(use: (x: number, y: number, hangUp: (fd: number) => void) => T): T {
  const open = new Set(a.socketpair());
  const [x, y] = [...open] as [number, number];
  const hangUp = (fd: number) => { open.delete(fd); a.close(fd); };
  const closeRest = () => { for (const fd of open) a.close(fd); };
  let result: T;
  try { result = use(x, y, hangUp); } catch (err) { closeRest(); throw err; }
  if (result instanceof Promise) return result.finally(closeRest) as T;
  closeRest();
  return result;
}

const nothingToRead = (fd: number) => assert.equal(a.recvmsg(fd, new Uint8Array(64), 0), null, 'nothing waits: null, not an EAGAIN exception');
const text = (buf: Uint8Array, bytes: number) => Buffer.from(buf.buffer, buf.byteOffset, bytes).toString();

describe('unix sockets: connecting', () => {
  it('listen, connect, accept: a round trip both ways on non-blocking close-on-exec fds', () => {
    const path = socketPath();
    const listener = listenUnix(path);
    try {
      assert.equal(a.accept(listener), null, 'nobody waits: null, not an EAGAIN exception');
      assert.equal(acceptUnix(listener), undefined, 'nobody waits');
      const client = connectUnix(path);
      const server = acceptUnix(listener);
      assert.ok(server !== undefined);
      try {
        for (const fd of [listener, client, server]) {
          assert.equal(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK), O_CLOEXEC | O_NONBLOCK, `fd ${fd}`);
        }
        assert.equal(sendWithFds(client, Buffer.from('ping')), 4);
        const buf = new Uint8Array(16);
        assert.deepEqual(recvWithFds(server, buf, 0), { bytes: 4, fds: [] });
        assert.equal(text(buf, 4), 'ping');
        assert.equal(a.sendmsg(server, Buffer.from('pong!')), 5);
        assert.deepEqual(a.recvmsg(client, buf, 4), { bytes: 5, fds: [] });
        assert.equal(text(buf, 5), 'pong!');
        assert.equal(recvWithFds(client, buf, 4), undefined, 'drained');
      } finally { a.close(client); a.close(server); }
    } finally { a.close(listener); }
  });

  it('socketpair gives two connected non-blocking close-on-exec sockets', () => {
    withPair((x, y) => {
      for (const fd of [x, y]) assert.equal(fdFlags(fd) & (O_CLOEXEC | O_NONBLOCK), O_CLOEXEC | O_NONBLOCK);
      assert.equal(a.sendmsg(y, new Uint16Array([0x6968])), 2);
      const buf = new Uint8Array(2);
      assert.equal(a.recvmsg(x, buf, 0)!.bytes, 2);
      assert.equal(text(buf, 2), 'hi');
    });
  });

  it('connect: ENOENT for no path, ECONNREFUSED when bound but not listening, EAGAIN on a full backlog', () => {
    expectErrno(() => connectUnix(join(dir, 'nobody')), 'ENOENT', 'connect');
    const bound = a.socket();
    const path = socketPath();
    try {
      a.bind(bound, path);
      expectErrno(() => connectUnix(path), 'ECONNREFUSED', 'connect');
      a.listen(bound, 0);
      const clients: number[] = [];
      try {
        const full = (): boolean => {
          for (let i = 0; i < 16; i++) {
            try { clients.push(connectUnix(path)); } catch (err) {
              if (isSysError(err, 'EAGAIN') && err.syscall === 'connect') return true;
              throw err;
            }
          }
          return false;
        };
        assert.ok(full(), 'a backlog of 0 fills within 16 connects');
        assert.ok(clients.length >= 1);
      } finally { for (const fd of clients) a.close(fd); }
    } finally { a.close(bound); }
  });

  it('bind: an existing path is EADDRINUSE and listenUnix closes its fd on failure', () => {
    const path = socketPath();
    const listener = listenUnix(path);
    try {
      const before = openFds();
      expectErrno(() => listenUnix(path), 'EADDRINUSE', 'bind');
      expectErrno(() => listenUnix(join(dir, 'no-such-dir', 's')), 'ENOENT', 'bind');
      expectErrno(() => connectUnix(join(dir, 'x'.repeat(200))), 'ENAMETOOLONG', 'connect');
      assert.equal(openFds(), before);
    } finally { a.close(listener); }
  });

  it('paths: 107 bytes fit sun_path, 108 are ENAMETOOLONG (never cut), "" is ENOENT', () => {
    const fit = join(dir, 'p'.repeat(107 - dir.length - 1));
    const long = fit + 'q';
    assert.equal(Buffer.byteLength(fit), 107);
    const listener = listenUnix(fit);
    try {
      expectErrno(() => listenUnix(long), 'ENAMETOOLONG', 'bind');
      expectErrno(() => connectUnix(long), 'ENAMETOOLONG', 'connect');
      // UTF-8 bytes count, not characters: 54 two-byte characters are 108 bytes.
      expectErrno(() => a.bind(listener, `/${'é'.repeat(54)}`), 'ENAMETOOLONG', 'bind');
      expectErrno(() => listenUnix(''), 'ENOENT', 'bind');
      const client = connectUnix(fit);
      a.close(client);
    } finally { a.close(listener); unlinkSync(fit); }
  });

  it('shutdown(SHUT_WR) is EOF for the peer while the other direction still works', () => {
    withPair((x, y) => {
      a.shutdown(x, c.SHUT_WR!);
      const buf = new Uint8Array(8);
      assert.deepEqual(a.recvmsg(y, buf, 0), { bytes: 0, fds: [] });
      expectErrno(() => a.sendmsg(x, Buffer.from('no')), 'EPIPE', 'sendmsg');
      assert.equal(a.sendmsg(y, Buffer.from('yes')), 3);
      assert.equal(a.recvmsg(x, buf, 0)!.bytes, 3);
      expectErrno(() => a.shutdown(x, 7), 'EINVAL', 'shutdown');
    });
  });
});

describe('unix sockets: data and fds', () => {
  it('passes a memfd and an eventfd: new close-on-exec fds for the same files', () => {
    const memfd = a.memfdCreate('vgpu-sock-test', c.MFD_CLOEXEC!);
    const efd = a.eventfd(0, c.EFD_CLOEXEC! | c.EFD_NONBLOCK!);
    try {
      withPair((x, y) => {
        assert.equal(sendWithFds(x, Buffer.from('two fds'), [memfd, efd]), 7);
        const buf = new Uint8Array(32);
        const got = recvWithFds(y, buf, 2);
        assert.ok(got !== undefined);
        assert.equal(got.bytes, 7);
        assert.equal(text(buf, 7), 'two fds');
        assert.equal(got.fds.length, 2);
        const [memfd2, efd2] = got.fds as [number, number];
        try {
          for (const [mine, theirs] of [[memfd, memfd2], [efd, efd2]] as const) {
            assert.notEqual(theirs, mine);
            assert.equal(fdFlags(theirs) & O_CLOEXEC, O_CLOEXEC, 'received fds are close-on-exec');
            const [s1, s2] = [fstatSync(mine), fstatSync(theirs)];
            assert.deepEqual([s2.dev, s2.ino], [s1.dev, s1.ino], 'the same file');
          }
          assert.equal(a.pwrite(memfd, Buffer.from('shared'), 0n), 6);
          const out = new Uint8Array(6);
          assert.equal(a.pread(memfd2, out, 0n), 6);
          assert.equal(text(out, 6), 'shared');
          a.eventfdWrite(efd2, 9n);
          assert.equal(a.eventfdRead(efd), 9n);
        } finally { a.close(memfd2); a.close(efd2); }
      });
    } finally { a.close(memfd); a.close(efd); }
  });

  it('sends 253 fds in one message; 254 is a TypeError before any byte is sent', () => {
    const efd = a.eventfd(0, c.EFD_CLOEXEC!);
    try {
      withPair((x, y) => {
        const before = openFds();
        expectTypeError(() => a.sendmsg(x, Buffer.from('z'), new Array<number>(MAX_FDS_PER_MESSAGE + 1).fill(efd)), '254 fds');
        nothingToRead(y);
        assert.equal(a.sendmsg(x, Buffer.from('z'), new Array<number>(MAX_FDS_PER_MESSAGE).fill(efd)), 1);
        const got = a.recvmsg(y, new Uint8Array(4), MAX_FDS_PER_MESSAGE)!;
        assert.equal(got.fds.length, 253);
        assert.equal(new Set(got.fds).size, 253, 'each one its own fd');
        assert.equal(openFds(), before + 253);
        for (const fd of got.fds) a.close(fd);
        assert.equal(openFds(), before);
      });
    } finally { a.close(efd); }
  });

  it('bad arguments are TypeErrors thrown before any syscall', () => {
    const efd = a.eventfd(0, c.EFD_CLOEXEC!);
    const untyped = (f: unknown) => f as (...args: unknown[]) => unknown;
    try {
      withPair((x, y) => {
        const data = Buffer.from('x');
        for (const fds of [[1.5], [efd, '3'], [efd, null], [2 ** 31], 'fds', 3, null, {}, Int32Array.of(efd)]) {
          expectTypeError(() => untyped(a.sendmsg)(x, data, fds), `fds ${String(fds)}`);
        }
        for (const fd of [1.5, '3', null, undefined, NaN, 2 ** 31]) {
          expectTypeError(() => untyped(a.sendmsg)(fd, data), `fd ${String(fd)}`);
          expectTypeError(() => untyped(a.recvmsg)(fd, new Uint8Array(1), 0), `fd ${String(fd)}`);
        }
        for (const bad of ['x', [1], new ArrayBuffer(1), null, undefined, 1]) {
          expectTypeError(() => untyped(a.sendmsg)(x, bad), `data ${String(bad)}`);
          expectTypeError(() => untyped(a.recvmsg)(y, bad, 0), `buf ${String(bad)}`);
        }
        expectTypeError(() => a.sendmsg(x, new Uint8Array(0), [efd]), 'fds with no byte to carry them');
        expectTypeError(() => a.recvmsg(y, new Uint8Array(0), 0), 'an empty buffer could not tell EOF');
        for (const maxFds of [-1, 254, 1.5, NaN]) expectTypeError(() => a.recvmsg(y, new Uint8Array(1), maxFds), `maxFds ${maxFds}`);
        // fds are read first: a getter that detaches data's buffer leaves it empty, not dangling.
        const data4 = new Uint8Array(4);
        const sly: number[] = [];
        Object.defineProperty(sly, 0, { enumerable: true, get: () => { structuredClone(data4.buffer, { transfer: [data4.buffer] }); return efd; } });
        expectTypeError(() => a.sendmsg(x, data4, sly), 'data detached by the fds getter');
        nothingToRead(y);
        assert.equal(a.sendmsg(x, new Uint8Array(0)), 0, 'empty data without fds is a no-op send');
        nothingToRead(y);
      });
    } finally { a.close(efd); }
  });

  it('an empty socket is EAGAIN (undefined from recvWithFds); a closed peer is EOF (bytes 0)', () => {
    withPair((x, y, hangUp) => {
      nothingToRead(y);
      assert.equal(recvWithFds(y, new Uint8Array(8), 1), undefined);
      a.sendmsg(x, Buffer.from('last'));
      hangUp(x);
      const buf = new Uint8Array(8);
      assert.deepEqual(a.recvmsg(y, buf, 1), { bytes: 4, fds: [] }, 'data sent before the close still arrives');
      assert.deepEqual(a.recvmsg(y, buf, 1), { bytes: 0, fds: [] });
      assert.deepEqual(recvWithFds(y, buf, 1), { bytes: 0, fds: [] });
    });
  });

  it('a send to a closed peer is EPIPE and raises no SIGPIPE', () => {
    // Node ignores SIGPIPE; a listener makes one visible, so MSG_NOSIGNAL is what is tested.
    const result = runChild(`
      let signalled = false;
      process.on('SIGPIPE', () => { signalled = true; });
      const [x, y] = addon.socketpair();
      addon.close(y);
      try { addon.sendmsg(x, new Uint8Array(4)); console.log('sent'); } catch (err) { console.log(err.code, err.syscall); }
      setTimeout(() => console.log(signalled ? 'SIGPIPE' : 'no signal'), 100);`);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'EPIPE sendmsg\nno signal\n');
  });

  it('a full socket buffer gives short sends, then EAGAIN; every byte sent arrives in order', () => {
    withPair((x, y) => {
      const chunk = new Uint8Array(100_000).map((_, i) => i % 251);
      let sent = 0;
      let full: unknown;
      for (let i = 0; i < 10_000 && full === undefined; i++) {
        try {
          const n = a.sendmsg(x, chunk);
          assert.ok(n > 0 && n <= chunk.length, String(n));
          sent += n;
        } catch (err) { full = err; }
      }
      assert.ok(isSysError(full, 'EAGAIN') && full.syscall === 'sendmsg', String(full));
      assert.ok(sent > 0);
      let received = 0;
      const buf = new Uint8Array(65_536);
      for (;;) {
        const got = recvWithFds(y, buf, 0);
        if (got === undefined) break;
        for (let i = 0; i < got.bytes; i++) {
          if (buf[i] !== ((received + i) % chunk.length) % 251) assert.fail(`byte ${received + i}`);
        }
        received += got.bytes;
      }
      assert.equal(received, sent);
    });
  });

  it('more fds than maxFds: EMSGSIZE with the bytes received, and every fd that came is closed', () => {
    const efds = [0, 1, 2].map(() => a.eventfd(0, c.EFD_CLOEXEC!));
    try {
      withPair((x, y) => {
        const before = openFds();
        // 2 fds into room for 1 is the case MSG_CTRUNC misses: CMSG_SPACE pads room for 2.
        for (const [count, maxFds] of [[3, 1], [2, 1], [1, 0], [3, 2]] as const) {
          assert.equal(a.sendmsg(x, Buffer.from(`data${count}`), efds.slice(0, count)), 5);
          const buf = new Uint8Array(16);
          assert.throws(() => recvWithFds(y, buf, maxFds), (err: unknown) => {
            assert.ok(isTruncated(err), String(err));
            assert.equal(err.code, 'EMSGSIZE');
            assert.equal(err.errno, os.errno.EMSGSIZE);
            assert.equal(err.syscall, 'recvmsg');
            assert.equal(err.bytes, 5);
            return true;
          }, `${count} fds, maxFds ${maxFds}`);
          assert.equal(text(buf, 5), `data${count}`, 'the bytes landed in buf');
          assert.equal(openFds(), before, `${count} fds, maxFds ${maxFds}: nothing leaked`);
        }
        nothingToRead(y);
        // The stream goes on: the next message arrives whole.
        a.sendmsg(x, Buffer.from('after'), [efds[0]!]);
        const got = a.recvmsg(y, new Uint8Array(16), 1)!;
        assert.equal(got.bytes, 5);
        assert.equal(got.fds.length, 1);
        a.close(got.fds[0]!);
      });
    } finally { for (const fd of efds) a.close(fd); }
  });

  it('200 connect/accept/send/recv/close cycles leave no fd behind', () => {
    const path = socketPath();
    const listener = listenUnix(path, 4);
    const efd = a.eventfd(0, c.EFD_CLOEXEC!);
    try {
      const before = openFds();
      const buf = new Uint8Array(64);
      for (let i = 0; i < 200; i++) {
        const client = connectUnix(path);
        const server = acceptUnix(listener);
        assert.ok(server !== undefined);
        assert.equal(sendWithFds(client, Buffer.from(`req ${i}`), [efd]), `req ${i}`.length);
        const req = recvWithFds(server, buf, 1);
        assert.ok(req !== undefined && req.fds.length === 1);
        a.eventfdWrite(req.fds[0]!, 1n);
        a.close(req.fds[0]!);
        sendWithFds(server, Buffer.from('ok'));
        assert.equal(recvWithFds(client, buf, 0)?.bytes, 2);
        // Every other cycle the server hangs up first, so both orders of close are covered.
        if (i % 2 === 0) { a.close(server); a.close(client); } else { a.close(client); a.close(server); }
      }
      assert.equal(a.eventfdRead(efd), 200n, 'every received fd reached the eventfd');
      assert.equal(openFds(), before);
    } finally { a.close(efd); a.close(listener); }
  });
});

describe('unix sockets: waiting', () => {
  it('poll: 0 after the timeout, POLLIN when data waits, POLLOUT when writable, POLLHUP after a close', () => {
    withPair((x, y, hangUp) => {
      const start = performance.now();
      assert.equal(pollFd(y, c.POLLIN!, 60), 0);
      assert.ok(performance.now() - start >= 55, 'waited for the timeout');
      assert.equal(a.poll(y, c.POLLIN!, 0), 0);
      assert.equal(a.poll(y, c.POLLOUT!, 1000), c.POLLOUT);
      a.sendmsg(x, Buffer.from('d'));
      const quick = performance.now();
      assert.equal(pollFd(y, c.POLLIN!, 5000), c.POLLIN);
      assert.ok(performance.now() - quick < 1000, 'returned at once');
      hangUp(x);
      assert.equal(a.poll(y, c.POLLIN!, 1000) & (c.POLLIN! | c.POLLHUP!), c.POLLIN! | c.POLLHUP!);
    });
    expectErrno(() => a.poll(-1, c.POLLIN!, 10_000), 'EBADF', 'poll');
    const [x, y] = a.socketpair();
    a.close(x);
    a.close(y);
    expectErrno(() => a.poll(y, c.POLLIN!, 10_000), 'EBADF', 'poll');
  });

  it('poll retries EINTR and still waits out its timeout', () => {
    // A signal with a listener interrupts poll(2) (never restarted, SA_RESTART or not).
    const result = runChild(`
      import { spawn } from 'node:child_process';
      let signalled = false;
      process.on('SIGUSR1', () => { signalled = true; });
      const [x, y] = addon.socketpair();
      spawn('sh', ['-c', 'sleep 0.3; kill -USR1 ' + process.pid]);
      const start = performance.now();
      const revents = addon.poll(y, addon.constants.POLLIN, 2000);
      const waited = performance.now() - start;
      setTimeout(() => console.log(revents, waited >= 1990, signalled), 50);`);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '0 true true\n');
  });

  it('watch(fd, cb, 2) fires when writable, not while the buffer is full, and again once drained', { timeout: 5000 }, async () => {
    await withPair(async (x, y) => {
      const chunk = new Uint8Array(65_536);
      for (;;) { try { a.sendmsg(x, chunk); } catch (err) { assert.ok(isSysError(err, 'EAGAIN')); break; } }
      const ready: number[] = [];
      let wake: () => void = () => {};
      const watcher = a.watch(x, (events) => { ready.push(events); watcher.close(); wake(); }, 2);
      try {
        await sleep(50);
        assert.deepEqual(ready, [], 'full: not writable');
        const fired = new Promise<void>((resolve) => { wake = resolve; });
        const buf = new Uint8Array(65_536);
        while (recvWithFds(y, buf, 0) !== undefined) { /* drain */ }
        await fired;
        assert.deepEqual(ready, [2]);
      } finally { watcher.close(); }
    });
  });

  it('watch reports which events are ready: 1 (the default), 2, or both', { timeout: 5000 }, async () => {
    await withPair(async (x, y) => {
      a.sendmsg(x, Buffer.from('r'));
      const once = (events?: number) => new Promise<number>((resolve) => {
        const watcher = a.watch(y, (ready) => { watcher.close(); resolve(ready); }, events);
      });
      assert.equal(await once(), 1);
      assert.equal(await once(1), 1);
      assert.equal(await once(2), 2);
      assert.equal(await once(3), 3);
      a.recvmsg(y, new Uint8Array(1), 0);
      assert.equal(await once(3), 2, 'drained: writable only');
      for (const bad of [0, 4, -1, 1.5, 'r', null, 1n]) {
        expectTypeError(() => (a.watch as (...args: unknown[]) => unknown)(y, () => {}, bad), `events ${String(bad)}`);
      }
    });
  });

  it('a peer closing with unread data is POLLERR: the watcher fires once, then never again; recv is ECONNRESET', { timeout: 5000 }, async () => {
    await withPair(async (x, y, hangUp) => {
      a.sendmsg(y, Buffer.from('never read'));
      const ready: number[] = [];
      const watcher = a.watch(y, (events) => { ready.push(events); });
      try {
        await sleep(20);
        assert.deepEqual(ready, []);
        hangUp(x);
        for (let i = 0; i < 100 && ready.length === 0; i++) await sleep(5);
        await sleep(50);
        // A plain EOF would fire again and again (level-triggered, nobody reads here).
        assert.deepEqual(ready, [1], 'once: libuv stops polling after POLLERR');
        expectErrno(() => a.recvmsg(y, new Uint8Array(8), 0), 'ECONNRESET', 'recvmsg');
        expectErrno(() => a.sendmsg(y, new Uint8Array(8)), 'EPIPE', 'sendmsg');
      } finally { watcher.close(); }
    });
  });
});
