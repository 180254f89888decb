// The mock kernel's fds: real fd numbers reserved on /dev/null, EBADF for what it does
// not know, no leaks, eventfds it remembers, and real files outside /dev/vfio.
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ioctls } from '../../src/uapi/index.js';
import { PROT_READ } from '../../src/sys/types.js';
import { assertErrno, fdArg, mockWithDevices, nameArg, openContainer, openFdCount } from './mock-helpers.js';

describe('mock fds', () => {
  it('are real fd numbers reserved on /dev/null, freed on close', () => {
    const { sys } = mockWithDevices();
    const before = openFdCount();
    const c = sys.open('/dev/vfio/vfio');
    assert.equal(readlinkSync(`/proc/self/fd/${c}`), '/dev/null');
    assert.equal(openFdCount(), before + 1);
    sys.close(c);
    assert.equal(openFdCount(), before);
    assertErrno(() => sys.close(c), 'EBADF');
  });

  it('an fd the mock never made is EBADF for every call', () => {
    const { sys } = mockWithDevices();
    assertErrno(() => sys.close(987654), 'EBADF');
    assertErrno(() => sys.ioctl(987654, ioctls.VFIO_GET_API_VERSION), 'EBADF');
    assertErrno(() => sys.pread(0, new Uint8Array(1), 0n), 'EBADF');
    assertErrno(() => sys.mmap(1, 0n, 4096, PROT_READ), 'EBADF');
  });

  it('open of /dev/vfio paths: ENOENT for a missing group, EISDIR for the directory', () => {
    const { sys } = mockWithDevices();
    assertErrno(() => sys.open('/dev/vfio/7'), 'ENOENT');
    assertErrno(() => sys.open('/dev/vfio/01'), 'ENOENT');
    assertErrno(() => sys.open('/dev/vfio/devices/vfio0'), 'ENOENT');
    assertErrno(() => sys.open('/dev/vfio'), 'EISDIR');
  });

  it('a full session leaves no fd and no locked page behind', () => {
    const { sys } = mockWithDevices();
    const before = openFdCount();
    for (let i = 0; i < 3; i++) {
      const { container, group } = openContainer(sys, 0);
      const dev = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
      const ev = sys.eventfd();
      const mem = sys.allocate(4096);
      sys.close(ev);
      sys.close(dev);
      sys.close(group);
      sys.close(container);
      sys.munmap(mem);
    }
    assert.equal(openFdCount(), before);
    assert.deepEqual(sys.kernel.fds.fds(), []);
    assert.equal(sys.kernel.locked.lockedPages, 0);
    assert.equal(sys.kernel.mm.mappedCount, 0);
  });

  it('container and group fds cannot be read, written or mapped', () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    const g = sys.open('/dev/vfio/0');
    assertErrno(() => sys.pread(c, new Uint8Array(4), 0n), 'EINVAL');
    assertErrno(() => sys.pwrite(g, new Uint8Array(4), 0n), 'EINVAL');
    assertErrno(() => sys.mmap(c, 0n, 4096, PROT_READ), 'ENODEV');
    assertErrno(() => sys.mmap(g, 0n, 4096, PROT_READ), 'ENODEV');
    assertErrno(() => sys.mmap(c, 1n, 4096, PROT_READ), 'EINVAL');
    assertErrno(() => sys.mmap(c, 0n, 0, PROT_READ), 'EINVAL');
    sys.close(g);
    sys.close(c);
  });

  it('eventfds are real, remembered while open, and bound by reference', () => {
    const { sys, a } = mockWithDevices();
    const { container, group } = openContainer(sys, 0);
    const dev = sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, nameArg('0000:00:04.0'));
    const ev = sys.eventfd();
    assert.match(readlinkSync(`/proc/self/fd/${ev}`), /eventfd/);
    assert.equal(sys.kernel.eventfds.isEventfd(ev), true);
    assert.equal(sys.kernel.eventfds.isEventfd(group), false);
    assert.equal(sys.kernel.eventfds.isOpen(group), true);
    assert.equal(sys.kernel.eventfds.isOpen(0), false, 'fds this layer never made count as not open');
    const sink = a.ctx!.eventfds;
    assertErrno(() => sink.acquire(group), 'EINVAL');
    assertErrno(() => sink.acquire(0), 'EBADF');
    const fdsBefore = openFdCount();
    const ref = sink.acquire(ev);
    const again = sink.acquire(ev);
    assert.equal(openFdCount(), fdsBefore, 'while the user\'s fd is open, references use it');
    assert.equal(sys.kernel.eventfds.references, 2);
    assertErrno(() => sys.eventfdRead(ev), 'EAGAIN');
    ref.signal();
    ref.signal();
    assert.equal(sys.eventfdRead(ev), 2n);
    sys.close(ev);
    assert.equal(sys.kernel.eventfds.isEventfd(ev), false);
    assertErrno(() => sink.acquire(ev), 'EBADF');
    assert.equal(openFdCount(), fdsBefore, 'the kernel keeps one fd for the closed eventfd, for both references');
    ref.signal(); // the user's fd is gone, the eventfd is not
    ref.release();
    ref.release();
    ref.signal(); // a released reference signals nothing
    assert.equal(sys.kernel.eventfds.references, 1);
    assert.equal(openFdCount(), fdsBefore);
    again.release();
    assert.equal(sys.kernel.eventfds.references, 0);
    assert.equal(openFdCount(), fdsBefore - 1, 'and closes it with the last');
    assertErrno(() => sys.eventfdRead(container), 'EINVAL');
    sys.close(dev);
    sys.close(group);
    sys.close(container);
  });

  it('watch works on eventfds and is EPERM on VFIO fds', async () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    assertErrno(() => sys.watch(c, () => {}), 'EPERM');
    const ev = sys.eventfd();
    const fired = new Promise<void>((resolve) => {
      const w = sys.watch(ev, () => { w.close(); resolve(); });
    });
    sys.eventfdWrite(ev, 1n);
    await fired;
    assert.equal(sys.eventfdRead(ev), 1n);
    sys.close(ev);
    sys.close(c);
  });

  it('files outside /dev/vfio are opened for real and are not containers', () => {
    const { sys } = mockWithDevices();
    const devnull = sys.open('/dev/null');
    const g = sys.open('/dev/vfio/0');
    assertErrno(() => sys.ioctl(g, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg(devnull)), 'EINVAL');
    assertErrno(() => sys.open('/nonexistent/file'), 'ENOENT');
    sys.close(g);
    sys.close(devnull);
  });

  it('bad argument types are TypeErrors, not crashes', () => {
    const { sys } = mockWithDevices();
    const c = sys.open('/dev/vfio/vfio');
    assert.throws(() => sys.ioctl(c, 'x' as unknown as number), TypeError);
    assert.throws(() => sys.ioctl(c, ioctls.VFIO_CHECK_EXTENSION, 'x' as unknown as number), TypeError);
    assert.throws(() => sys.close('3' as unknown as number), TypeError);
    assert.throws(() => sys.open(3 as unknown as string), TypeError);
    sys.close(c);
  });
});
