// The vfio-user server's lifecycle, against a server in another process: one client per
// vGPU (a second one gets EBUSY), clients vanishing mid-message, one that stops reading,
// vGPU removal while a client holds it, socket files (modes, stale ones, live ones) and
// closing the bus.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { encodeCommand, encodeRegionRead, encodeVersion } from '../../src/uapi/vfio-user/index.js';
import { PROBE_UUID, SIMGPU_UUID } from './fixtures/names.js';
import { SIMGPU_VENDOR_ID } from '../../src/vendors/simgpu/index.js';
import {
  C, ERRNO, RawClient, ServerProcess, clientMemory, errnoOf, expectBaseline, readReg, startWithBaseline,
  type Baseline,
} from './fixtures/suite.js';

const a = addon();

describe('vfio-user server: lifecycle', () => {
  let server: ServerProcess;
  let baseline: Baseline;
  before(async () => ({ server, baseline } = await startWithBaseline({ maxPendingOutput: 256 * 1024, refusalTimeoutMs: 500 })));
  after(async () => server.stop());

  it('serves one client at a time: a second gets EBUSY for its VERSION, then end of file', async () => {
    const first = RawClient.open(server.paths.simgpu);
    const second = RawClient.connect(server.paths.simgpu);
    const refused = second.call(C.VFIO_USER_VERSION, encodeVersion(0, 0));
    assert.equal(errnoOf(refused), ERRNO.EBUSY);
    assert.ok(second.closedByServer());
    second.close();
    const silent = RawClient.connect(server.paths.simgpu);
    assert.ok(silent.closedByServer(2000), 'a second client that says nothing is closed after a while');
    silent.close();
    assert.equal(readReg(first, 7, 0) & 0xffff, SIMGPU_VENDOR_ID, 'the first client is undisturbed');
    const s = await server.stats();
    assert.equal(s.clients[SIMGPU_UUID], true, 'clientOf says the device is held');
    first.close();
    await expectBaseline(server, baseline);
    const next = RawClient.open(server.paths.simgpu);
    next.close();
    await expectBaseline(server, baseline);
  });

  it('frees everything when a client vanishes mid-message, with fds in flight', async () => {
    let c = RawClient.open(server.paths.probe);
    c.sendRaw(encodeCommand(1, C.VFIO_USER_DEVICE_GET_INFO).subarray(0, 7));
    c.close();
    await expectBaseline(server, baseline);
    c = RawClient.open(server.paths.probe);
    const mem = clientMemory(1);
    const map = encodeCommand(2, C.VFIO_USER_DMA_MAP, new Uint8Array(32));
    c.sendRaw(map.subarray(0, 30), [mem]);
    a.close(mem);
    c.close();
    await expectBaseline(server, baseline);
    c = RawClient.connect(server.paths.probe);
    c.sendRaw(encodeCommand(3, C.VFIO_USER_VERSION, encodeVersion(0, 0)).subarray(0, 18));
    c.close();
    await expectBaseline(server, baseline);
  });

  it('drops a client that does not read its replies past the output limit', async () => {
    const c = RawClient.open(server.paths.simgpu);
    // 64 KiB replies, sent without reading any: the socket buffers fill, then the server's
    // queue. The server may hang up before the last request is sent (EPIPE): that is the
    // outcome this test waits for, not a failure.
    for (let i = 0; i < 64; i++) {
      try {
        c.send(C.VFIO_USER_REGION_READ, encodeRegionRead(0n, 1, 64 * 1024));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EPIPE' && (err as NodeJS.ErrnoException).code !== 'ECONNRESET') throw err;
        break;
      }
    }
    assert.ok(c.closedByServer(5000), 'the server gave up on the client');
    c.close();
    await expectBaseline(server, baseline);
  });

  it('refuses to remove a vGPU a client holds, and removes and serves again once it left', async () => {
    const c = RawClient.open(server.paths.probe);
    assert.deepEqual(await server.request({ op: 'remove', uuid: PROBE_UUID }), { error: 'EBUSY' });
    c.close();
    await expectBaseline(server, baseline);
    // A client that connected but never opened the device does not keep it.
    const idle = RawClient.connect(server.paths.probe);
    assert.deepEqual(await server.request({ op: 'remove', uuid: PROBE_UUID }), { ok: true });
    assert.ok(idle.closedByServer());
    idle.close();
    assert.equal(existsSync(server.paths.probe), false, 'the socket file is gone');
    const created = await server.request<{ ok: boolean; path: string }>({ op: 'create', uuid: PROBE_UUID });
    assert.equal(created.path, server.paths.probe);
    const again = RawClient.open(server.paths.probe);
    assert.equal(readReg(again, 7, 0), 0x10f71af4);
    again.close();
    await expectBaseline(server, baseline);
  });

  it('makes the run directory 0700 and the sockets 0600', () => {
    assert.equal(statSync(dirname(server.paths.simgpu)).mode & 0o777, 0o700);
    assert.equal(statSync(server.paths.simgpu).mode & 0o777, 0o600);
    assert.ok(statSync(server.paths.simgpu).isSocket());
  });
});

describe('vfio-user server: socket files', () => {
  it('refuses a run directory a live server uses, replaces a dead server\'s sockets, and removes them on close', async () => {
    const first = await ServerProcess.start();
    try {
      await assert.rejects(ServerProcess.start({}, first.runDir), /EADDRINUSE/);
      await first.kill();
      assert.ok(existsSync(first.paths.simgpu), 'a killed server leaves its socket behind');
      const second = await ServerProcess.start({}, first.runDir);
      const c = RawClient.open(second.paths.simgpu);
      c.close();
      assert.deepEqual(await second.request({ op: 'close' }), { ok: true });
      await second.exited;
      assert.equal(existsSync(second.paths.simgpu), false);
      assert.equal(existsSync(second.paths.probe), false);
      await second.stop();
    } finally {
      await first.stop();
    }
  });
});
