// The DEVICE_FEATURE payloads of vfio-user: migration flags, device state, DMA logging
// with inline ranges and bitmap; byte layouts per docs/interop/vfio-user.rst.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import {
  VFIO_USER_DMA_LOGGING_MAX_RANGES, checkFeatureRequest, decodeDeviceFeature, decodeDmaLoggingControl, decodeDmaLoggingReport,
  decodeDmaLoggingReportReply, decodeMigState, decodeMigrationFlags, deviceStateName, dmaLoggingBitmapSize, encodeDeviceFeature,
  encodeDmaLoggingControl, encodeDmaLoggingReport, encodeDmaLoggingReportReply, encodeMigState, encodeMigrationFlags,
  featureFlags, joinBody, vfioUserDeviceStates, vfioUserFeatures, vfioUserMigrationFlags,
} from '../../src/uapi/vfio-user/index.js';

function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/[\s|]/g, ''), 'hex'));
}

function same(actual: Uint8Array, expected: string): void {
  assert.equal(Buffer.from(actual).toString('hex'), expected.replace(/[\s|]/g, ''));
}

function einval(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => isSysError(err) && err.code === 'EINVAL' && (!pattern || pattern.test(err.message)));
}

describe('vfio-user DEVICE_FEATURE header', () => {
  it('has the spec numbers', () => {
    assert.deepEqual(Object.values(vfioUserFeatures), [1, 2, 6, 7, 8]);
    assert.deepEqual(Object.values(vfioUserMigrationFlags), [1, 2, 4]);
    assert.equal(vfioUserDeviceStates.PRE_COPY, 6);
    assert.equal(deviceStateName(3), 'STOP_COPY');
    assert.equal(deviceStateName(9), 'state 9');
  });

  it('builds flags and checks them as vfio_ioctl_device_feature does', () => {
    const flags = featureFlags(vfioUserFeatures.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 'set');
    assert.equal(flags, 0x20002);
    const body = joinBody(encodeDeviceFeature(flags, encodeMigState(vfioUserDeviceStates.STOP_COPY)));
    same(body, '10000000 02000200 03000000 ffffffff');
    const req = checkFeatureRequest(decodeDeviceFeature(body));
    assert.deepEqual([req.feature, req.get, req.set, req.probe], [2, false, true, false]);
    assert.equal(decodeMigState(req.data), 3);
    assert.equal(checkFeatureRequest({ argsz: 8, flags: featureFlags(1, ['probe', 'get', 'set']), data: new Uint8Array(0) }).probe, true);
    einval(() => checkFeatureRequest({ argsz: 8, flags: featureFlags(1, ['get', 'set']), data: new Uint8Array(0) }), /GET and SET/);
    einval(() => checkFeatureRequest({ argsz: 8, flags: 1 << 19 | 1, data: new Uint8Array(0) }), /unknown flags 0x80001/);
  });
});

describe('vfio-user migration features', () => {
  it('carries the migration flags as a u64', () => {
    const data = encodeMigrationFlags(5n);
    same(data, '0500000000000000');
    assert.equal(decodeMigrationFlags(data), 5n);
    einval(() => decodeMigrationFlags(data.subarray(0, 4)));
  });

  it('refuses a device state the enum lacks and a short body', () => {
    einval(() => decodeMigState(hex('08000000 ffffffff')), /no device state 8/);
    einval(() => decodeMigState(hex('0200')));
  });
});

describe('vfio-user DMA logging', () => {
  it('puts DMA_LOGGING_START ranges inline after the control struct', () => {
    const control = { pageSize: 4096n, ranges: [{ iova: 0x100000n, length: 0x2000n }, { iova: 0x400000n, length: 0x1000n }] };
    const data = encodeDmaLoggingControl(control);
    same(data, '0010000000000000 02000000 00000000' +
      '0000100000000000 0020000000000000' + '0000400000000000 0010000000000000');
    assert.deepEqual(decodeDmaLoggingControl(data), control);
    assert.deepEqual(decodeDmaLoggingControl(encodeDmaLoggingControl({ pageSize: 4096n, ranges: [] })).ranges, []);
  });

  it('refuses a control whose ranges do not match num_ranges or are too many', () => {
    const data = encodeDmaLoggingControl({ pageSize: 4096n, ranges: [{ iova: 0n, length: 4096n }] });
    einval(() => decodeDmaLoggingControl(data.subarray(0, 24)), /with 1 ranges/);
    einval(() => decodeDmaLoggingControl(joinBody([data, new Uint8Array(16)])), /with 1 ranges/);
    const many = encodeDmaLoggingControl({ pageSize: 4096n, ranges: [] });
    new DataView(many.buffer).setUint32(8, VFIO_USER_DMA_LOGGING_MAX_RANGES + 1, true);
    assert.throws(() => decodeDmaLoggingControl(many), (err: unknown) => isSysError(err) && err.code === 'E2BIG' && /257 ranges/.test(err.message));
  });

  it('returns the report bitmap inline at 24, in whole u64s', () => {
    const report = { iova: 0x100000n, length: 65n * 4096n, pageSize: 4096n };
    assert.equal(dmaLoggingBitmapSize(report.length, report.pageSize), 16);
    assert.equal(dmaLoggingBitmapSize(4096n, 4096n), 8);
    assert.equal(dmaLoggingBitmapSize(4097n, 4096n), 8);
    const request = encodeDmaLoggingReport(report);
    same(request, '0000100000000000 0010040000000000 0010000000000000');
    assert.deepEqual(decodeDmaLoggingReport(request), report);
    const bitmap = new Uint8Array(16);
    bitmap[0] = 0b101;
    bitmap[8] = 1;
    const reply = decodeDmaLoggingReportReply(encodeDmaLoggingReportReply(report, bitmap));
    assert.deepEqual(reply.report, report);
    same(reply.bitmap, '0500000000000000 0100000000000000');
    einval(() => decodeDmaLoggingReportReply(encodeDmaLoggingReportReply(report, new Uint8Array(8))), /reply/);
  });

  it('refuses a short report and a reply whose page size is not a power of two', () => {
    einval(() => decodeDmaLoggingReport(new Uint8Array(16)));
    einval(() => decodeDmaLoggingReportReply(encodeDmaLoggingReportReply({ iova: 0n, length: 4096n, pageSize: 12288n }, new Uint8Array(8))), /page size/);
  });
});
