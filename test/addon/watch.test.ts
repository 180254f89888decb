// watch(): uv_poll on the event loop. Fires while an eventfd is readable, stops on
// close (also from inside its own callback), ref/unref decide whether it keeps the
// process alive, and teardown (process exit, worker exit) with a live watcher is clean.
import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';
import { runChild } from './child.js';

const a = addon();
const c = a.constants;

function withEventfd<T>(use: (fd: number) => Promise<T>): Promise<T> {
  const fd = a.eventfd(0, c.EFD_CLOEXEC | c.EFD_NONBLOCK);
  return use(fd).finally(() => a.close(fd));
}

describe('watch', () => {
  it('calls back on the JS thread each time the eventfd is written, until closed', async () => {
    await withEventfd(async (fd) => {
      const seen: bigint[] = [];
      let wake: () => void = () => {};
      const watcher = a.watch(fd, () => { seen.push(a.eventfdRead(fd)); wake(); });
      try {
        await sleep(20);
        assert.deepEqual(seen, [], 'not readable yet');
        for (const value of [1n, 5n]) {
          const fired = new Promise<void>((resolve) => { wake = resolve; });
          a.eventfdWrite(fd, value);
          await fired;
        }
        assert.deepEqual(seen, [1n, 5n]);
      } finally { watcher.close(); }
      a.eventfdWrite(fd, 7n);
      await sleep(30);
      assert.deepEqual(seen, [1n, 5n], 'no call after close');
      assert.equal(a.eventfdRead(fd), 7n);
      watcher.close();
      watcher.ref();
      watcher.unref();
    });
  });

  it('closing from inside the callback is safe and final', async () => {
    await withEventfd(async (fd) => {
      let calls = 0;
      const watcher = a.watch(fd, () => { calls++; watcher.close(); watcher.close(); });
      a.eventfdWrite(fd, 1n);  // never read: a level-triggered poll would fire again and again
      await sleep(50);
      assert.equal(calls, 1);
    });
  });

  it('two watchers of one fd are independent; closing one leaves the other', async () => {
    await withEventfd(async (fd) => {
      const calls = { first: 0, second: 0 };
      const first = a.watch(fd, () => { calls.first++; });
      const second = a.watch(fd, () => { calls.second++; a.eventfdRead(fd); });
      try {
        a.eventfdWrite(fd, 1n);
        for (let i = 0; i < 50 && calls.second === 0; i++) await sleep(5);
        assert.ok(calls.first >= 1 && calls.second === 1, JSON.stringify(calls));
        first.close();
        const before = calls.first;
        a.eventfdWrite(fd, 1n);
        for (let i = 0; i < 50 && calls.second === 1; i++) await sleep(5);
        assert.deepEqual(calls, { first: before, second: 2 });
      } finally { first.close(); second.close(); }
    });
  });

  it('watches a private dup of the fd, closed once the watcher is', async () => {
    const openFds = () => readdirSync('/proc/self/fd').length;
    await sleep(10);  // earlier tests' watchers finish closing
    await withEventfd(async (fd) => {
      const before = openFds();
      const watcher = a.watch(fd, () => {});
      assert.equal(openFds(), before + 1);
      watcher.close();
      await sleep(10);  // libuv closes handles on the next loop turn
      assert.equal(openFds(), before);
    });
  });

  it('the caller may close its fd before the watcher, even in the same tick', () => {
    const result = runChild(`
      const fd = addon.eventfd(1, addon.constants.EFD_NONBLOCK);
      const watcher = addon.watch(fd, () => {});
      addon.close(fd);
      setTimeout(() => { watcher.close(); console.log('closed'); }, 20);`);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'closed\n');
  });

  it('refuses fds epoll cannot watch: EBADF for a closed fd, EPERM for a regular file', () => {
    assert.throws(() => a.watch(-1, () => {}), (err: unknown) => isSysError(err, 'EBADF') && err.syscall === 'fcntl');
    assert.throws(() => a.watch(1_000_000, () => {}), (err: unknown) => isSysError(err, 'EBADF') && err.syscall === 'fcntl');
    const fd = a.memfdCreate('vfio-vgpu-watch', c.MFD_CLOEXEC);
    try {
      assert.throws(() => a.watch(fd, () => {}), (err: unknown) => isSysError(err, 'EPERM') && err.syscall === 'uv_poll_init');
    } finally { a.close(fd); }
  });

  it('a ref\'ed watcher keeps a process alive; an unref\'ed one lets it exit', () => {
    const script = (unref: boolean) => `
      const fd = addon.eventfd(0, addon.constants.EFD_NONBLOCK);
      const w = addon.watch(fd, () => {});
      w.unref(); ${unref ? '' : 'w.ref();'}
      process.on('exit', () => console.log('exit'));`;
    const unrefd = runChild(script(true), { timeoutMs: 5000 });
    assert.equal(unrefd.status, 0, unrefd.stderr);
    assert.equal(unrefd.stdout, 'exit\n');
    const refd = runChild(script(false), { timeoutMs: 700 });
    assert.equal(refd.signal, 'SIGTERM', 'still running when the timeout killed it');
    assert.equal(refd.stdout, '');
  });

  it('an exception thrown by the callback is an uncaughtException', () => {
    const result = runChild(`
      const fd = addon.eventfd(1, addon.constants.EFD_NONBLOCK);
      const w = addon.watch(fd, () => { throw new Error('boom'); });
      process.on('uncaughtException', (err) => { console.log('caught ' + err.message); w.close(); });`);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'caught boom\n');
  });

  it('a worker ending, then process.exit, with live watchers and mappings are clean', () => {
    const result = runChild(`
      import { Worker } from 'node:worker_threads';
      const fd = addon.eventfd(1, addon.constants.EFD_NONBLOCK);
      addon.watch(fd, () => {});
      addon.mmap(-1, 0n, 65536, 3, addon.constants.MAP_PRIVATE | addon.constants.MAP_ANONYMOUS);
      const worker = new Worker(\`
        import(\${JSON.stringify(addonModule)}).then(({ addon: load }) => {
          const addon = load();
          const fd = addon.eventfd(1, addon.constants.EFD_NONBLOCK);
          addon.watch(fd, () => {});
          addon.mmap(-1, 0n, 65536, 3, addon.constants.MAP_PRIVATE | addon.constants.MAP_ANONYMOUS);
          setTimeout(() => process.exit(3), 20);
        });\`, { eval: true });
      worker.on('exit', (code) => { console.log('worker exit ' + code); process.exit(0); });
    `);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'worker exit 3\n');
  });
});
