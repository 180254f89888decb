// Migration over vfio-user, our client against our server (in another process): the
// kernel's migration v2 calls on a Device (VFIO_DEVICE_FEATURE, a data fd read and
// written) become DEVICE_FEATURE and MIG_DATA_READ/WRITE, and a device's state moves
// from one server's device to another's byte for byte. Bad streams and bad requests
// are refused with the errno the kernel gives, the devices staying usable; DMA logging
// goes with vfio-user's inline ranges and bitmap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSysError, sysError, type ErrnoCode } from '../../../src/addon/errors.js';
import { flags as F } from '../../../src/uapi/constants.js';
import {
  deviceFeature as N, migrationFlags as MF, migStates as S, VFIO_MIG_GET_PRECOPY_INFO, vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_report, vfio_device_feature_mig_state,
} from '../../../src/uapi/migration.js';
import { ioctls } from '../../../src/uapi/ioctls.js';
import { vfio_device_feature } from '../../../src/uapi/structs.js';
import { DeviceMigration, migrateDevice, openVfioUserDevice, type VfioUserDeviceHandle } from '../../../src/vfio/index.js';
import { DMA_TRIGGER } from './fixtures/migrating-device.js';
import { startServer, type ServerProcess } from './fixtures/server-process.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/migration-server.js', import.meta.url));

function throwsCode(fn: () => unknown, code: ErrnoCode, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => isSysError(err) && err.code === code && (!pattern || pattern.test(err.message)));
}

function feature(handle: VfioUserDeviceHandle, flags: number, data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(vfio_device_feature.size + data.byteLength);
  vfio_device_feature.write(buf, { argsz: buf.byteLength, flags });
  buf.set(data, vfio_device_feature.size);
  handle.sys.ioctl(handle.device.fd, ioctls.VFIO_DEVICE_FEATURE, buf);
  return buf.subarray(vfio_device_feature.size);
}

function migrationFlags(handle: VfioUserDeviceHandle): number {
  const data = feature(handle, N.VFIO_DEVICE_FEATURE_MIGRATION | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(8));
  return Number(new DataView(data.buffer, data.byteOffset).getBigUint64(0, true));
}

/** MIG_DEVICE_STATE SET: the data fd the change returned (-1 for none). */
function setState(handle: VfioUserDeviceHandle, state: number): number {
  const data = feature(handle, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_SET,
    vfio_device_feature_mig_state.encode({ device_state: state, data_fd: -1 }));
  return vfio_device_feature_mig_state.decode(data).data_fd;
}

function getState(handle: VfioUserDeviceHandle): number {
  const data = feature(handle, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(8));
  return vfio_device_feature_mig_state.decode(data).device_state;
}

/** Reads a data fd until end of stream (0) or, in PRE_COPY, until ENOMSG. */
function drain(handle: VfioUserDeviceHandle, fd: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(1000); // not a multiple of anything: reads split records
  for (;;) {
    let n: number;
    try {
      n = handle.sys.read(fd, buf);
    } catch (err) {
      if (isSysError(err) && err.code === 'ENOMSG') break;
      throw err;
    }
    if (n === 0) break;
    parts.push(buf.slice(0, n));
  }
  return Buffer.concat(parts);
}

async function withServer(fn: (open: (name: string) => VfioUserDeviceHandle) => void | Promise<void>): Promise<void> {
  const server: ServerProcess = await startServer(SCRIPT, ['{dir}']);
  const handles: VfioUserDeviceHandle[] = [];
  try {
    await fn((name) => {
      const h = openVfioUserDevice(join(server.dir, `${name}.sock`));
      handles.push(h);
      return h;
    });
  } finally {
    for (const h of handles) h.close();
    await server.stop();
  }
}

const pattern = (seed: number): Uint8Array => Uint8Array.from({ length: 0x4000 }, (_, i) => (i * 7 + seed) & 0xff);

test('VERSION announces migration for a device that migrates, not for one that does not', async () => {
  await withServer((open) => {
    const source = open('source');
    assert.deepEqual(source.connection.negotiated.server.migration, { pgsize: 4096, maxBitmapSize: 1024 * 1024 });
    const plain = open('plain');
    assert.equal(plain.connection.negotiated.server.migration, undefined);
    throwsCode(() => migrationFlags(plain), 'ENOTTY');
  });
});

test('a device state moves between two servers: PRE_COPY while running, STOP_COPY, RESUMING, RUNNING', async () => {
  await withServer((open) => {
    const source = open('source');
    const target = open('target');
    const bar2 = source.device.region(2);
    bar2.write(0, pattern(1));
    // P2P is not used in vfio-user: the device has it, the protocol offers it not.
    assert.equal(migrationFlags(source), MF.VFIO_MIGRATION_STOP_COPY | MF.VFIO_MIGRATION_PRE_COPY);
    throwsCode(() => setState(source, S.VFIO_DEVICE_STATE_RUNNING_P2P), 'EINVAL');
    const fd = setState(source, S.VFIO_DEVICE_STATE_PRE_COPY);
    assert.ok(fd >= 0);
    throwsCode(() => source.sys.ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, new Uint8Array(24)), 'ENOTTY');
    throwsCode(() => source.sys.write(fd, new Uint8Array(4)), 'EINVAL');
    const precopy = drain(source, fd);
    assert.equal(precopy.byteLength, 8 + 0x4000);
    bar2.write(0, pattern(2)); // the device keeps running in PRE_COPY
    assert.equal(setState(source, S.VFIO_DEVICE_STATE_STOP_COPY), -1, 'PRE_COPY -> STOP_COPY keeps the stream');
    const rest = drain(source, fd);
    assert.equal(rest.byteLength, 8 + 0x4000);
    assert.equal(source.sys.read(fd, new Uint8Array(16)), 0, 'end of stream stays the end');
    assert.equal(setState(source, S.VFIO_DEVICE_STATE_STOP), -1);
    throwsCode(() => source.sys.read(fd, new Uint8Array(16)), 'ENODEV');
    source.sys.close(fd);

    const wfd = setState(target, S.VFIO_DEVICE_STATE_RESUMING);
    assert.ok(wfd >= 0);
    throwsCode(() => target.sys.read(wfd, new Uint8Array(4)), 'EINVAL');
    assert.equal(target.sys.write(wfd, Buffer.concat([precopy, rest])), precopy.byteLength + rest.byteLength);
    assert.equal(setState(target, S.VFIO_DEVICE_STATE_RUNNING), -1);
    assert.equal(getState(target), S.VFIO_DEVICE_STATE_RUNNING);
    target.sys.close(wfd);
    assert.deepEqual(target.device.region(2).read(0, 0x4000), pattern(2));
  });
});

test('a bad stream is refused and the target stays usable; a stopped source resumes unchanged', async () => {
  await withServer((open) => {
    const source = open('source');
    const target = open('target');
    source.device.region(2).write(0, pattern(3));
    const fd = setState(source, S.VFIO_DEVICE_STATE_STOP_COPY);
    const stream = drain(source, fd);
    source.sys.close(fd);
    for (const bad of [new Uint8Array(0), stream.subarray(0, 100), Uint8Array.from(stream, (b, i) => (i === 0 ? b ^ 0xff : b))]) {
      const wfd = setState(target, S.VFIO_DEVICE_STATE_RESUMING);
      target.sys.write(wfd, bad);
      throwsCode(() => setState(target, S.VFIO_DEVICE_STATE_STOP), 'EINVAL');
      assert.equal(getState(target), S.VFIO_DEVICE_STATE_RESUMING);
      target.sys.close(wfd);
      target.device.reset(); // VFIO_USER_DEVICE_RESET: back to RUNNING, as from ERROR
      assert.equal(getState(target), S.VFIO_DEVICE_STATE_RUNNING);
    }
    assert.equal(setState(source, S.VFIO_DEVICE_STATE_RUNNING), -1);
    assert.deepEqual(source.device.region(2).read(0, 0x4000), pattern(3));
  });
});

test('MIG_DATA_READ and MIG_DATA_WRITE without a data session are EINVAL on the server', async () => {
  await withServer((open) => {
    const source = open('source');
    const raw = (command: 'VFIO_USER_MIG_DATA_READ' | 'VFIO_USER_MIG_DATA_WRITE', body: Uint8Array): unknown =>
      source.connection.request(command, body, { syscall: 'read' });
    throwsCode(() => raw('VFIO_USER_MIG_DATA_READ', new Uint8Array([16, 0, 0, 0, 8, 0, 0, 0])), 'EINVAL');
    throwsCode(() => raw('VFIO_USER_MIG_DATA_WRITE', new Uint8Array([9, 0, 0, 0, 1, 0, 0, 0, 7])), 'EINVAL');
    throwsCode(() => raw('VFIO_USER_MIG_DATA_READ', new Uint8Array([16, 0, 0, 0])), 'EINVAL');
  });
});

test('DMA logging: inline ranges, the pages the device wrote in the report bitmap, cleared by reading', async () => {
  await withServer((open) => {
    const source = open('source');
    const log = source.sys.migration;
    assert.equal(log.startDirtyLog([{ iova: 0x100000n, length: 0x100000n }], 4096n), 4096n);
    throwsCode(() => log.startDirtyLog([{ iova: 0x100000n, length: 0x100000n }], 4096n), 'EINVAL');
    const dma = (iova: bigint): void => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, iova, true);
      source.device.region(2).write(DMA_TRIGGER, b);
    };
    dma(0x100000n);
    dma(0x102000n);
    dma(0x300000n); // outside the range: not logged
    const report = log.reportDirtyLog(0x100000n, 0x100000n, 4096n);
    assert.equal(report.bitmap.byteLength, 32);
    assert.equal(report.bitmap[0], 0b101);
    assert.ok(report.bitmap.subarray(1).every((b) => b === 0));
    assert.ok(log.reportDirtyLog(0x100000n, 0x100000n, 4096n).bitmap.every((b) => b === 0), 'reading clears');
    throwsCode(() => log.reportDirtyLog(0x100000n, 0x1000n, 1000n), 'EINVAL');
    // The kernel's layout with user pointers works for memory of the handle's allocate(), EFAULT elsewhere.
    const control = vfio_device_feature_dma_logging_control.encode({ page_size: 4096n, num_ranges: 1, ranges: 0x1000n });
    throwsCode(() => feature(source, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START | F.VFIO_DEVICE_FEATURE_SET, control), 'EFAULT');
    const bitmap = source.sys.allocate(4096);
    dma(0x101000n);
    const kernelReport = vfio_device_feature_dma_logging_report.encode({ iova: 0x100000n, length: 0x10000n, page_size: 4096n, bitmap: bitmap.address });
    feature(source, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | F.VFIO_DEVICE_FEATURE_GET, kernelReport);
    assert.equal(new Uint8Array(bitmap.buffer)[0], 0b10);
    source.sys.munmap(bitmap);
    log.stopDirtyLog();
    // So the client of vfio/migration.ts, written for kernel fds, runs unchanged over the socket.
    const mig = new DeviceMigration(source.sys, source.device.fd);
    assert.equal(mig.startLogging([{ iova: 0x200000n, length: 0x10000n }], 4096n), 4096n);
    dma(0x203000n);
    assert.equal(mig.report(0x200000n, 0x10000n, 4096n)[0], 0b1000);
    mig.stopLogging();
    throwsCode(() => log.reportDirtyLog(0x100000n, 0x1000n, 4096n), 'EINVAL');
  });
});

test('migrateDevice drives the whole move, the source working between pre-copy rounds', async () => {
  await withServer(async (open) => {
    const source = open('source');
    const target = open('target');
    const bar2 = source.device.region(2);
    let seed = 10;
    bar2.write(0, pattern(seed));
    const report = await migrateDevice(source.device, target.device, {
      precopyRounds: 3,
      betweenRounds: async () => { bar2.write(0, pattern(++seed)); },
    });
    assert.equal(report.precopyRounds, 3);
    assert.equal(report.precopyBytes, 8 + 0x4000); // this device sends its pre-copy record once
    assert.equal(report.stopCopyBytes, 8 + 0x4000);
    assert.ok(report.downtimeMs >= 0 && report.downtimeMs <= report.totalMs);
    assert.deepEqual(target.device.region(2).read(0, 0x4000), pattern(13));
    assert.equal(new DeviceMigration(target.sys, target.device.fd).state(), S.VFIO_DEVICE_STATE_RUNNING);
    assert.equal(new DeviceMigration(source.sys, source.device.fd).state(), S.VFIO_DEVICE_STATE_STOP);
  });
});

test('migrateDevice onto a device that cannot migrate fails and leaves the source running, unchanged', async () => {
  await withServer(async (open) => {
    const source = open('source');
    const plain = open('plain');
    source.device.region(2).write(0, pattern(20));
    await assert.rejects(migrateDevice(source.device, plain.device), (err: unknown) => isSysError(err) && err.code === 'ENOTTY');
    const control = new DeviceMigration(source.sys, source.device.fd);
    assert.equal(control.state(), S.VFIO_DEVICE_STATE_RUNNING);
    // A failure mid-way (the target refuses the stream after STOP_COPY): the source runs again.
    const target = open('target');
    const before = source.device.region(2).read(0, 0x4000);
    await assert.rejects(migrateDevice(source.device, target.device, {
      precopyRounds: 0,
      beforeResume: () => { throw sysError('ECANCELED', 'migrate'); },
    }), (err: unknown) => isSysError(err) && err.code === 'ECANCELED');
    assert.equal(control.state(), S.VFIO_DEVICE_STATE_RUNNING);
    assert.deepEqual(source.device.region(2).read(0, 0x4000), before);
    assert.equal(new DeviceMigration(target.sys, target.device.fd).state(), S.VFIO_DEVICE_STATE_RUNNING, 'the target was reset');
  });
});
