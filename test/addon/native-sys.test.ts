// createNativeSys(): the SysLayer over the addon, on parts of the real kernel every
// Linux machine has (no /dev/vfio needed): memory, eventfds, watchers, /sys.
import { strict as assert } from 'node:assert';
import { readFileSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { isSysError } from '../../src/addon/errors.js';
import { createNativeSys } from '../../src/sys/native.js';

const sys = createNativeSys();
const c = addon().constants;

/** The open flags of one of our fds, as the kernel reports them (octal in fdinfo). */
function fdFlags(fd: number): number {
  const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('flags:'));
  assert.ok(line !== undefined);
  return parseInt(line.slice('flags:'.length).trim(), 8);
}

describe('createNativeSys', () => {
  it('is the native kind with the system page size', () => {
    assert.equal(sys.kind, 'native');
    assert.equal(sys.pageSize, addon().pageSize);
  });

  it('open defaults to O_RDWR | O_CLOEXEC', () => {
    const fd = sys.open('/dev/null');
    try {
      const flags = fdFlags(fd);
      assert.equal(flags & 3, c.O_RDWR);
      assert.equal(flags & c.O_CLOEXEC!, c.O_CLOEXEC);
    } finally { sys.close(fd); }
    const ro = sys.open('/dev/null', c.O_RDONLY);
    try { assert.equal(fdFlags(ro) & (3 | c.O_CLOEXEC!), c.O_RDONLY); } finally { sys.close(ro); }
  });

  it('allocate gives page-aligned read-write memory; munmap detaches and is idempotent', () => {
    const mapping = sys.allocate(10_000);
    assert.equal(mapping.length, 10_000);
    assert.equal(mapping.buffer.byteLength, 10_000);
    assert.equal(mapping.address % BigInt(sys.pageSize), 0n);
    assert.equal(mapping.address, addon().addressOf(mapping.buffer));
    const bytes = new Uint8Array(mapping.buffer);
    bytes[9_999] = 0x5a;
    assert.equal(new Uint8Array(mapping.buffer)[9_999], 0x5a);
    sys.munmap(mapping);
    sys.munmap(mapping);
    assert.equal(mapping.buffer.byteLength, 0);
    assert.equal(bytes.length, 0);
  });

  it('allocate refuses lengths that are not positive integers with EINVAL', () => {
    for (const length of [0, -1, 1.5, NaN]) {
      assert.throws(() => sys.allocate(length), (err: unknown) => isSysError(err, 'EINVAL') && err.syscall === 'mmap', String(length));
    }
  });

  it('mmap maps a device fd MAP_SHARED (here /dev/zero)', () => {
    const fd = sys.open('/dev/zero');
    try {
      const mapping = sys.mmap(fd, 0n, sys.pageSize, 3);
      try {
        assert.equal(mapping.length, sys.pageSize);
        assert.ok(new Uint8Array(mapping.buffer).every((b) => b === 0));
        assert.equal(mapping.address % BigInt(sys.pageSize), 0n);
      } finally { sys.munmap(mapping); }
    } finally { sys.close(fd); }
  });

  it('eventfd is EFD_CLOEXEC | EFD_NONBLOCK and counts', () => {
    const fd = sys.eventfd();
    try {
      const flags = fdFlags(fd);
      assert.equal(flags & c.O_CLOEXEC!, c.O_CLOEXEC);
      assert.equal(flags & c.O_NONBLOCK!, c.O_NONBLOCK);
      assert.throws(() => sys.eventfdRead(fd), (err: unknown) => isSysError(err, 'EAGAIN'));
      sys.eventfdWrite(fd, 2n);
      sys.eventfdWrite(fd, 3n);
      assert.equal(sys.eventfdRead(fd), 5n);
    } finally { sys.close(fd); }
    const preset = sys.eventfd(4);
    try { assert.equal(sys.eventfdRead(preset), 4n); } finally { sys.close(preset); }
  });

  it('watch fires when the eventfd is written, and not after close', async () => {
    const fd = sys.eventfd();
    let calls = 0;
    const watcher = sys.watch(fd, () => { calls++; sys.eventfdRead(fd); });
    try {
      sys.eventfdWrite(fd, 1n);
      for (let i = 0; i < 50 && calls === 0; i++) await sleep(5);
      assert.equal(calls, 1);
    } finally { watcher.close(); }
    sys.eventfdWrite(fd, 1n);
    await sleep(30);
    assert.equal(calls, 1);
    sys.close(fd);
  });

  it('ioctl, pread and pwrite reach the kernel', () => {
    const fd = sys.open('/dev/null');
    try {
      assert.throws(() => sys.ioctl(fd, c.FIONREAD!, new Uint8Array(4)), (err: unknown) => isSysError(err, 'ENOTTY') && err.syscall === 'ioctl');
      assert.equal(sys.pwrite(fd, new Uint8Array(3), 0n), 3);
      assert.equal(sys.pread(fd, new Uint8Array(3), 0n), 0);
    } finally { sys.close(fd); }
  });
});

describe('native sysfs', () => {
  it('lists /sys/bus sorted, reads an attribute without its newline, resolves a link', () => {
    const buses = sys.sysfs.list('/sys/bus');
    assert.ok(buses.includes('pci') || buses.includes('platform'), buses.join(' '));
    assert.deepEqual(buses, [...buses].sort());
    assert.ok(sys.sysfs.exists('/sys/bus'));
    assert.equal(sys.sysfs.exists('/sys/no-such-thing'), false);
    const raw = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    assert.ok(raw.endsWith('\n'));
    assert.equal(sys.sysfs.read('/sys/kernel/mm/transparent_hugepage/enabled'), raw.slice(0, -1));
    const devices = sys.sysfs.list('/sys/bus/pci/devices');
    if (devices.length > 0) assert.match(sys.sysfs.readlink(`/sys/bus/pci/devices/${devices[0]}`), /^\.\.\/.*\/devices\//);
  });

  it('turns fs errors into SysErrors with the kernel code and the syscall', () => {
    const expect = (fn: () => unknown, code: 'ENOENT' | 'ENOTDIR' | 'EINVAL' | 'EISDIR', syscall: string) =>
      assert.throws(fn, (err: unknown) => isSysError(err, code) && err.syscall === syscall && err.message.startsWith(`${syscall} failed: ${code}`));
    expect(() => sys.sysfs.list('/sys/no-such-thing'), 'ENOENT', 'scandir');
    expect(() => sys.sysfs.list('/sys/kernel/mm/transparent_hugepage/enabled'), 'ENOTDIR', 'scandir');
    expect(() => sys.sysfs.read('/sys/no-such-thing'), 'ENOENT', 'open');
    expect(() => sys.sysfs.read('/sys/bus'), 'EISDIR', 'read');
    expect(() => sys.sysfs.readlink('/sys/bus'), 'EINVAL', 'readlink');
    expect(() => sys.sysfs.write('/sys/no-such-thing', '1'), 'ENOENT', 'open');
  });

  it('write sends the value in one write(2) (checked on a temp file)', () => {
    const path = `/tmp/vfio-vgpu-sysfs-${process.pid}`;
    const fd = sys.open(path, c.O_RDWR | c.O_CREAT! | c.O_CLOEXEC);
    sys.close(fd);
    try {
      sys.sysfs.write(path, 'abc\n');
      assert.equal(sys.sysfs.read(path), 'abc');
      sys.sysfs.write(path, 'x');
      assert.equal(readFileSync(path, 'utf8'), 'xbc\n', 'no O_TRUNC, like a sysfs attribute');
    } finally { unlinkSync(path); }
  });
});
