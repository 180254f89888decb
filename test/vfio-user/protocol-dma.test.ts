// DMA over vfio-user, against a server in another process: DMA_MAP and DMA_UNMAP good and
// bad, device DMA into file-backed regions (mapped by the server) and remote ones (the
// server's DMA_READ/DMA_WRITE, answered here by hand), pins and the unmap notice, a
// client that does not answer, and one that vanishes while the server waits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import {
  decodeDmaReadRequest, decodeDmaUnmap, decodeDmaWriteRequest, encodeDmaMap, encodeDmaReadReply, encodeDmaUnmap, encodeDmaWriteReply,
  encodeErrorReply, encodeReply, encodeVersion, vfioUserDmaFlags as DF, vfioUserHeaderFlags as HF,
} from '../../src/uapi/vfio-user/index.js';
import { PROBE, PROBE_CMD } from './fixtures/probe-vendor.js';
import {
  C, ERRNO, PAGE, RawClient, clientMemory, errnoOf, expectBaseline, readReg, startWithBaseline, writeReg,
  type Baseline, type Message, type ServerProcess,
} from './fixtures/suite.js';

const a = addon();
const RW = DF.VFIO_USER_F_DMA_REGION_READ | DF.VFIO_USER_F_DMA_REGION_WRITE;
const P = BigInt(PAGE);
const BAR0 = 0;
const DMA_TIMEOUT_MS = 400;

function map(c: RawClient, address: bigint, size: bigint, fds: number[] = [], flags = RW, offset = 0n): Message {
  return c.call(C.VFIO_USER_DMA_MAP, encodeDmaMap({ flags, offset, address, size }), fds);
}

function unmap(c: RawClient, address: bigint, size: bigint, flags = 0): Message {
  return c.call(C.VFIO_USER_DMA_UNMAP, encodeDmaUnmap({ flags, address, size }));
}

/** Points the probe at `addr` for `len` bytes and starts command `cmd` (the reply is not awaited). */
function startProbe(c: RawClient, addr: bigint, len: number, cmd: number): number {
  assert.equal(errnoOf(writeReg(c, BAR0, PROBE.ADDR_LO, Number(addr & 0xffffffffn))), 0);
  assert.equal(errnoOf(writeReg(c, BAR0, PROBE.ADDR_HI, Number(addr >> 32n))), 0);
  assert.equal(errnoOf(writeReg(c, BAR0, PROBE.LEN, len)), 0);
  const body = new Uint8Array(20);
  const dv = new DataView(body.buffer);
  dv.setBigUint64(0, BigInt(PROBE.CMD), true);
  dv.setUint32(8, BAR0, true);
  dv.setUint32(12, 4, true);
  dv.setUint32(16, cmd, true);
  return c.send(C.VFIO_USER_REGION_WRITE, body);
}

/** Runs a probe command to its reply and returns STATUS. */
function probe(c: RawClient, addr: bigint, len: number, cmd: number): number {
  const id = startProbe(c, addr, len, cmd);
  const m = c.expectMessage();
  assert.equal(m.header.msg_id, id);
  assert.equal(errnoOf(m), 0);
  return readReg(c, BAR0, PROBE.STATUS);
}

function enableProbe(c: RawClient): void {
  assert.equal(errnoOf(writeReg(c, 7, 4, 0x6)), 0, 'Memory Space and Bus Master Enable');
}

describe('vfio-user server: DMA', () => {
  let server: ServerProcess;
  let baseline: Baseline;
  before(async () => ({ server, baseline } = await startWithBaseline({ dmaTimeoutMs: DMA_TIMEOUT_MS })));
  after(async () => server.stop());

  it('maps client memory and refuses overlapping, unaligned, empty, badly flagged or badly backed maps', async () => {
    const c = RawClient.open(server.paths.probe);
    const connected = (await server.stats()).fds;
    const mem = clientMemory(4);
    assert.equal(errnoOf(map(c, 0x10000n, 4n * P, [mem])), 0);
    let s = await server.stats();
    assert.equal(s.bus.mappedDmaRegions, 1);
    assert.ok(s.clientMappings >= 1, 'the server maps the client\'s memory');
    assert.equal(errnoOf(map(c, 0x10000n + P, P)), ERRNO.EEXIST, 'overlap');
    assert.equal(errnoOf(map(c, 0x10000n - P, 2n * P)), ERRNO.EEXIST, 'overlap from below');
    assert.equal(errnoOf(map(c, 0x80001n, P)), ERRNO.EINVAL, 'unaligned address');
    assert.equal(errnoOf(map(c, 0x80000n, P - 1n)), ERRNO.EINVAL, 'unaligned size');
    assert.equal(errnoOf(map(c, 0x80000n, 0n)), ERRNO.EINVAL, 'zero length');
    assert.equal(errnoOf(map(c, 0x80000n, P, [], 0)), ERRNO.EINVAL, 'neither READ nor WRITE');
    assert.equal(errnoOf(map(c, 0x80000n, P, [], RW | 8)), ERRNO.EINVAL, 'unknown flag');
    const spare = clientMemory(1);
    assert.equal(errnoOf(map(c, 0x80000n, 2n * P, [spare])), ERRNO.EINVAL, 'a file shorter than the region');
    assert.equal(errnoOf(map(c, 0x80000n, P, [spare], RW, 1n)), ERRNO.EINVAL, 'an unaligned file offset');
    assert.equal(errnoOf(map(c, 0x80000n, P, [spare, mem])), ERRNO.EINVAL, 'two fds');
    const efd = a.eventfd(0, 0);
    assert.equal(errnoOf(map(c, 0x80000n, P, [efd])), ERRNO.EINVAL, 'not a memory file');
    a.close(efd);
    const short = new Uint8Array(24);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DMA_MAP, short, [spare])), ERRNO.EINVAL, 'a short body');
    s = await server.stats();
    assert.equal(s.fds, connected + 1, 'only the one mapped region keeps an fd');
    assert.equal(errnoOf(map(c, 0x100000n, 2n * P)), 0, 'no fd: a remote region');
    s = await server.stats();
    assert.equal(s.bus.dmaRegions, 2);
    a.close(spare);
    a.close(mem);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('unmaps as the kernel does, answers with the request, and supports UNMAP_ALL but not dirty bitmaps', async () => {
    const c = RawClient.open(server.paths.probe);
    const mem = clientMemory(2);
    assert.equal(errnoOf(map(c, 0x10000n, P, [mem])), 0);
    assert.equal(errnoOf(map(c, 0x10000n + P, P, [a.dup(mem)], RW, P)), 0);
    assert.equal(errnoOf(map(c, 0x40000n, 4n * P)), 0);
    const never = unmap(c, 1n << 40n, 1n << 40n);
    assert.equal(errnoOf(never), 0, 'a range never mapped unmaps nothing, successfully');
    assert.deepEqual(decodeDmaUnmap(never.body), { argsz: 24, flags: 0, address: 1n << 40n, size: 1n << 40n });
    assert.equal(errnoOf(unmap(c, 0x40000n + P, P)), ERRNO.EINVAL, 'splits a region');
    assert.equal(errnoOf(unmap(c, 0x10000n, 0n)), ERRNO.EINVAL, 'empty');
    assert.equal(errnoOf(unmap(c, 0x10001n, P)), ERRNO.EINVAL, 'unaligned');
    assert.equal(errnoOf(unmap(c, 0x10000n, P, 0x80)), ERRNO.EINVAL, 'unknown flag');
    assert.equal(errnoOf(unmap(c, 1n, 0n, DF.VFIO_DMA_UNMAP_FLAG_ALL)), ERRNO.EINVAL, 'UNMAP_ALL with an address');
    const bitmap = encodeDmaUnmap({ flags: DF.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, address: 0x10000n, size: P, bitmap: { pgsize: P, size: 8n } });
    assert.equal(errnoOf(c.call(C.VFIO_USER_DMA_UNMAP, bitmap)), ERRNO.ENOTSUP);
    assert.equal(errnoOf(unmap(c, 0x10000n, 2n * P)), 0, 'both file regions at once');
    let s = await server.stats();
    assert.equal(s.bus.dmaRegions, 1);
    assert.equal(s.bus.mappedDmaRegions, 0);
    assert.equal(errnoOf(map(c, 0x10000n, P, [mem])), 0);
    assert.equal(errnoOf(unmap(c, 0n, 0n, DF.VFIO_DMA_UNMAP_FLAG_ALL)), 0);
    s = await server.stats();
    assert.equal(s.bus.dmaRegions, 0);
    a.close(mem);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('holds the client to the max_dma_maps it negotiated', async () => {
    const c = RawClient.connect(server.paths.probe);
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 0, '{"capabilities":{"max_dma_maps":2}}'))), 0);
    assert.equal(errnoOf(map(c, 0n, P)), 0);
    assert.equal(errnoOf(map(c, P, P)), 0);
    assert.equal(errnoOf(map(c, 2n * P, P)), ERRNO.ENOSPC);
    assert.equal(errnoOf(unmap(c, 0n, P)), 0);
    assert.equal(errnoOf(map(c, 2n * P, P)), 0);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('lets the device reach mapped memory directly, pin it, and unpin on the unmap notice', async () => {
    const c = RawClient.open(server.paths.probe);
    enableProbe(c);
    const mem = clientMemory(2);
    a.pwrite(mem, Uint8Array.of(9, 8, 7, 6), 16n);
    assert.equal(errnoOf(map(c, 0x200000n, 2n * P, [mem])), 0);
    assert.equal(probe(c, 0x200000n + 16n, 4, PROBE_CMD.READ), 0);
    assert.equal(readReg(c, BAR0, PROBE.DATA), 0x06070809);
    assert.equal(errnoOf(writeReg(c, BAR0, PROBE.DATA, 0x11223344)), 0);
    assert.equal(probe(c, 0x200000n + P, 4, PROBE_CMD.WRITE), 0);
    const seen = new Uint8Array(4);
    a.pread(mem, seen, P);
    assert.deepEqual([...seen], [0x44, 0x33, 0x22, 0x11]);
    assert.equal(probe(c, 0x200000n, 1, PROBE_CMD.PIN), 0);
    assert.equal(readReg(c, BAR0, PROBE.PINS), 1);
    assert.equal((await server.stats()).bus.pinnedPages, 1);
    assert.equal(errnoOf(unmap(c, 0x200000n, 2n * P)), 0);
    assert.equal(readReg(c, BAR0, PROBE.PINS), 0, 'the device was told and unpinned');
    assert.equal((await server.stats()).bus.pinnedPages, 0);
    assert.equal(probe(c, 0x200000n, 4, PROBE_CMD.READ), 14, 'unmapped: a DMA fault');
    // A pin that the client's disconnect has to drop.
    assert.equal(errnoOf(map(c, 0x200000n, P, [mem])), 0);
    assert.equal(probe(c, 0x200000n, 1, PROBE_CMD.PIN), 0);
    a.close(mem);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('serves remote regions with DMA_READ and DMA_WRITE, queueing the client\'s commands meanwhile', async () => {
    const c = RawClient.open(server.paths.probe);
    enableProbe(c);
    assert.equal(errnoOf(map(c, 0x300000n, 2n * P)), 0);
    assert.equal(probe(c, 0x300000n, 1, PROBE_CMD.PIN), 14, 'nothing to pin in a remote region: EFAULT');
    // Device read: the server asks us; a pipelined REGION_READ waits its turn.
    const writeId = startProbe(c, 0x300000n + P - 8n, 16, PROBE_CMD.READ);
    const readId = c.send(C.VFIO_USER_REGION_READ, (() => {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setBigUint64(0, BigInt(PROBE.DATA + 8), true);
      new DataView(b.buffer).setUint32(12, 4, true);
      return b;
    })());
    const request = c.expectMessage();
    assert.equal(request.header.flags & HF.VFIO_USER_F_TYPE_MASK, HF.VFIO_USER_F_TYPE_COMMAND);
    assert.equal(request.header.command, C.VFIO_USER_DMA_READ);
    const { address, count } = decodeDmaReadRequest(request.body);
    assert.deepEqual({ address, count }, { address: 0x300000n + P - 8n, count: 16 });
    c.sendRaw(encodeReply(request.header, encodeDmaReadReply(address, new Uint8Array(count).fill(0xaa))));
    const first = c.expectMessage();
    assert.equal(first.header.msg_id, writeId, 'the REGION_WRITE that started the DMA completes first');
    const second = c.expectMessage();
    assert.equal(second.header.msg_id, readId, 'the queued REGION_READ comes after');
    assert.equal(new DataView(second.body.buffer, second.body.byteOffset + 16).getUint32(0, true), 0xaaaaaaaa);
    // Device write: DMA_WRITE with the data; our reply completes it.
    assert.equal(errnoOf(writeReg(c, BAR0, PROBE.DATA, 0x55667788)), 0);
    const wid = startProbe(c, 0x300000n + 4n, 4, PROBE_CMD.WRITE);
    const dmaWrite = c.expectMessage();
    assert.equal(dmaWrite.header.command, C.VFIO_USER_DMA_WRITE);
    const w = decodeDmaWriteRequest(dmaWrite.body);
    assert.equal(w.address, 0x300000n + 4n);
    assert.deepEqual([...w.data], [0x88, 0x77, 0x66, 0x55]);
    c.sendRaw(encodeReply(dmaWrite.header, encodeDmaWriteReply(w.address, w.count)));
    assert.equal(c.expectMessage().header.msg_id, wid);
    assert.equal(readReg(c, BAR0, PROBE.STATUS), 0);
    // An error reply from the client is a DMA fault for the device.
    startProbe(c, 0x300000n, 4, PROBE_CMD.READ);
    const refused = c.expectMessage();
    c.sendRaw(encodeErrorReply(refused.header, 'EFAULT'));
    c.expectMessage();
    assert.equal(readReg(c, BAR0, PROBE.STATUS), 14);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('speaks QEMU 10.1\'s DMA_READ/DMA_WRITE layout to a client that proposes 0.0, as QEMU does', async () => {
    const c = RawClient.open(server.paths.probe, undefined, 0);
    enableProbe(c);
    assert.equal(errnoOf(map(c, 0x500000n, P)), 0);
    // Device read: QEMU's reply has a u32 count with the data at 12.
    const readId = startProbe(c, 0x500000n + 8n, 4, PROBE_CMD.READ);
    const request = c.expectMessage();
    assert.equal(request.header.command, C.VFIO_USER_DMA_READ);
    const { address, count } = decodeDmaReadRequest(request.body);
    c.sendRaw(encodeReply(request.header, encodeDmaReadReply(address, Uint8Array.of(1, 2, 3, 4).subarray(0, count), 'qemu')));
    assert.equal(c.expectMessage().header.msg_id, readId);
    assert.equal(readReg(c, BAR0, PROBE.STATUS), 0, 'the QEMU-layout reply was understood');
    assert.equal(readReg(c, BAR0, PROBE.DATA), 0x04030201);
    // Device write: the request in QEMU's layout, and QEMU's empty reply completes it.
    assert.equal(errnoOf(writeReg(c, BAR0, PROBE.DATA, 0x11223344)), 0);
    const writeId = startProbe(c, 0x500000n + 16n, 4, PROBE_CMD.WRITE);
    const dmaWrite = c.expectMessage();
    assert.equal(dmaWrite.header.command, C.VFIO_USER_DMA_WRITE);
    const w = decodeDmaWriteRequest(dmaWrite.body, 'qemu');
    assert.deepEqual({ address: w.address, data: [...w.data] }, { address: 0x500000n + 16n, data: [0x44, 0x33, 0x22, 0x11] });
    c.sendRaw(encodeReply(dmaWrite.header));
    assert.equal(c.expectMessage().header.msg_id, writeId);
    assert.equal(readReg(c, BAR0, PROBE.STATUS), 0);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('gives up on a DMA_READ nobody answers, drops the late reply, and goes on', async () => {
    const c = RawClient.open(server.paths.probe);
    enableProbe(c);
    assert.equal(errnoOf(map(c, 0x300000n, P)), 0);
    const id = startProbe(c, 0x300000n, 4, PROBE_CMD.READ);
    const request = c.expectMessage();
    assert.equal(request.header.command, C.VFIO_USER_DMA_READ);
    const started = Date.now();
    const reply = c.expectMessage(5000);
    assert.equal(reply.header.msg_id, id);
    assert.ok(Date.now() - started >= DMA_TIMEOUT_MS - 50, 'the server waited for the timeout');
    assert.equal(readReg(c, BAR0, PROBE.STATUS), 14);
    c.sendRaw(encodeReply(request.header, encodeDmaReadReply(0x300000n, new Uint8Array(4))));
    assert.equal(readReg(c, BAR0, PROBE.STATUS), 14, 'the late reply was dropped, no error reply for it');
    c.close();
    await expectBaseline(server, baseline);
  });

  it('releases everything when the client vanishes while the server waits for its DMA_READ reply', async () => {
    const c = RawClient.open(server.paths.probe);
    enableProbe(c);
    const mem = clientMemory(1);
    assert.equal(errnoOf(map(c, 0x200000n, P, [mem])), 0);
    assert.equal(probe(c, 0x200000n, 1, PROBE_CMD.PIN), 0);
    const efd = a.eventfd(0, 0);
    const setIrq = new Uint8Array(20);
    const dv = new DataView(setIrq.buffer);
    dv.setUint32(0, 20, true);
    dv.setUint32(4, (1 << 2) | (1 << 5), true);
    dv.setUint32(8, 1, true);
    dv.setUint32(16, 1, true);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, setIrq, [efd])), 0);
    assert.equal(errnoOf(map(c, 0x300000n, P)), 0);
    startProbe(c, 0x300000n, 4, PROBE_CMD.READ);
    assert.equal(c.expectMessage().header.command, C.VFIO_USER_DMA_READ);
    c.close();
    a.close(mem);
    a.close(efd);
    await expectBaseline(server, baseline);
    const next = RawClient.open(server.paths.probe);
    assert.equal(readReg(next, 7, 0), 0x10f71af4, 'the next client gets the device');
    next.close();
    await expectBaseline(server, baseline);
  });
});
