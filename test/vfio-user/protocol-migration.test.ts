// The vfio-user server's migration against raw messages: VERSION's "migration"
// capability only for a vGPU that migrates (simgpu, not the probe vendor's), DEVICE_FEATURE
// replies byte for byte (GET grows argsz, PROBE and SET echo the request, data_fd -1, P2P
// hidden), the kernel's errnos for what a device lacks or a request gets wrong, and a
// STOP_COPY stream read with MIG_DATA_READ to its short end. Nothing of the client's stays.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { flags as F } from '../../src/uapi/constants.js';
import { deviceFeature as N, migStates as S } from '../../src/uapi/migration.js';
import {
  decodeDeviceFeature, decodeMigData, decodeVersion, encodeDeviceFeature, encodeDmaLoggingReport, encodeMigDataRead,
  encodeMigState, encodeVersion, parseVersionCapabilities,
} from '../../src/uapi/vfio-user/index.js';
import { C, ERRNO, RawClient, errnoOf, expectBaseline, startWithBaseline, type Baseline, type ServerProcess } from './fixtures/suite.js';

const ENOTTY = 25;
const CAPS = '{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576}}';

function feature(c: RawClient, flags: number, data: Uint8Array = new Uint8Array(0), argsz?: number): { errno: number; argsz: number; flags: number; data: Uint8Array } {
  const m = c.call(C.VFIO_USER_DEVICE_FEATURE, encodeDeviceFeature(flags, data, argsz));
  const errno = errnoOf(m);
  if (errno) return { errno, argsz: 0, flags: 0, data: new Uint8Array(0) };
  return { errno, ...decodeDeviceFeature(m.body) };
}

describe('vfio-user server: migration', () => {
  let server: ServerProcess;
  let baseline: Baseline;
  before(async () => ({ server, baseline } = await startWithBaseline()));
  after(async () => server.stop());

  it('announces migration in VERSION for simgpu only', () => {
    for (const [path, migrates] of [[server.paths.simgpu, true], [server.paths.probe, false]] as const) {
      const c = RawClient.connect(path);
      const reply = decodeVersion(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 1, CAPS)).body);
      const caps = parseVersionCapabilities(reply.capabilities);
      assert.equal(caps.migration !== undefined, migrates, path);
      if (caps.migration) assert.equal(caps.migration.maxBitmapSize, 1048576, 'one report fits a reply the client takes');
      c.close();
    }
  });

  it('answers DEVICE_FEATURE as the spec lays it out, with the kernel\'s errnos', () => {
    const c = RawClient.open(server.paths.simgpu, CAPS);
    // GET carries no data; argsz says how much reply the client takes (16: the flags fit, 8: EINVAL).
    assert.equal(feature(c, N.VFIO_DEVICE_FEATURE_MIGRATION | F.VFIO_DEVICE_FEATURE_GET).errno, ERRNO.EINVAL);
    const get = feature(c, N.VFIO_DEVICE_FEATURE_MIGRATION | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(0), 16);
    assert.equal(get.errno, 0);
    assert.equal(get.argsz, 16, 'GET: argsz grows by the data');
    assert.equal(new DataView(get.data.buffer, get.data.byteOffset).getBigUint64(0, true), 5n, 'STOP_COPY | PRE_COPY, no P2P');
    const probe = feature(c, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_PROBE | F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_SET);
    assert.deepEqual([probe.errno, probe.argsz, probe.data.byteLength], [0, 8, 0], 'PROBE: the request back');
    const state = feature(c, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_GET, encodeMigState(0));
    assert.deepEqual([...state.data], [S.VFIO_DEVICE_STATE_RUNNING, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    const set = (s: number): number => feature(c, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | F.VFIO_DEVICE_FEATURE_SET, encodeMigState(s)).errno;
    assert.equal(set(S.VFIO_DEVICE_STATE_RUNNING_P2P), ERRNO.EINVAL, 'P2P is not used in vfio-user');
    assert.equal(feature(c, N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(8)).errno, ERRNO.EINVAL, 'not a vfio-user feature');
    assert.equal(feature(c, N.VFIO_DEVICE_FEATURE_MIGRATION | F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_SET).errno, ERRNO.EINVAL);
    assert.equal(feature(c, N.VFIO_DEVICE_FEATURE_MIGRATION | (1 << 20)).errno, ERRNO.EINVAL, 'an unknown flag');
    const report = encodeDmaLoggingReport({ iova: 0x100000n, length: 0x10000n, pageSize: 4096n });
    const reportFlags = N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | F.VFIO_DEVICE_FEATURE_GET;
    assert.equal(feature(c, reportFlags, report, 8 + 24).errno, ERRNO.EINVAL, 'argsz leaves no room for the bitmap');
    assert.equal(feature(c, reportFlags, report, 8 + 24 + 8).errno, ERRNO.EINVAL, 'logging is not started');
    const huge = encodeDmaLoggingReport({ iova: 0n, length: 1n << 48n, pageSize: 4096n });
    assert.equal(feature(c, reportFlags, huge, 0xffffffff).errno, ERRNO.E2BIG, 'a bitmap past max_bitmap_size');
    // Reads without a saving session, and larger than the client takes.
    assert.equal(errnoOf(c.call(C.VFIO_USER_MIG_DATA_READ, encodeMigDataRead(4096))), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_MIG_DATA_READ, encodeMigDataRead(2 << 20))), ERRNO.E2BIG);

    // A whole stream: STOP_COPY (data_fd -1), MIG_DATA_READ until a short reply, back to RUNNING.
    assert.equal(set(S.VFIO_DEVICE_STATE_STOP_COPY), 0);
    let total = 0;
    for (;;) {
      const m = c.call(C.VFIO_USER_MIG_DATA_READ, encodeMigDataRead(65536));
      assert.equal(errnoOf(m), 0);
      const got = decodeMigData(m.body);
      assert.equal(got.argsz, 8 + got.size);
      total += got.size;
      if (got.size < 65536) break;
    }
    assert.ok(total > 0);
    assert.equal(decodeMigData(c.call(C.VFIO_USER_MIG_DATA_READ, encodeMigDataRead(16)).body).size, 0, 'the end stays the end');
    assert.equal(errnoOf(c.call(C.VFIO_USER_MIG_DATA_WRITE, [Uint8Array.of(9, 0, 0, 0, 1, 0, 0, 0), Uint8Array.of(0)])), ERRNO.EINVAL, 'a saving stream is not written');
    assert.equal(set(S.VFIO_DEVICE_STATE_RUNNING), 0);
    assert.equal(errnoOf(c.call(C.VFIO_USER_MIG_DATA_READ, encodeMigDataRead(16))), ERRNO.EINVAL, 'the session ended');
    c.close();

    const probeVgpu = RawClient.open(server.paths.probe, CAPS);
    assert.equal(feature(probeVgpu, N.VFIO_DEVICE_FEATURE_MIGRATION | F.VFIO_DEVICE_FEATURE_GET, new Uint8Array(0), 16).errno, ENOTTY, 'a vGPU that cannot migrate');
    probeVgpu.close();
  });

  it('leaves nothing of the clients behind', async () => {
    await expectBaseline(server, baseline);
  });
});
