// The vfio-user server against raw messages, good and bad, over a real socket to a
// server in another process: VERSION, framing, fds, device and region info, interrupts,
// region access and reset. Every bad input gets its error reply, the server survives (a
// good command works after it) and after disconnect no fd or mapping of ours is left.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addon } from '../../src/addon/addon.js';
import { capIds, flags as VF, pciRegion } from '../../src/uapi/constants.js';
import { decodeSparseMmap, findCap } from '../../src/uapi/caps.js';
import {
  decodeDeviceInfo, decodeIrqInfo, decodeRegionInfo, decodeRegionIoFdsReply, decodeVersion, encodeCommand, encodeIrqInfoRequest,
  encodeIrqSet, encodeRegionInfoRequest, encodeRegionIoFdsRequest, encodeRegionRead, encodeRegionWrite, encodeVersion,
  parseVersionCapabilities, vfioUserHeaderFlags as HF,
} from '../../src/uapi/vfio-user/index.js';
import { SIMGPU_ID } from '../../src/vendors/simgpu/registers.js';
import { SIMGPU_UUID } from './fixtures/names.js';
import { PROBE } from './fixtures/probe-vendor.js';
import {
  C, ERRNO, PAGE, RawClient, clientMemory, errnoOf, expectBaseline, readReg, startWithBaseline, writeReg,
  type Baseline, type ServerProcess,
} from './fixtures/suite.js';

const a = addon();
const deviceInfoRequest = (): Uint8Array => Uint8Array.of(16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
const BAR0 = 0;
const BAR1 = 1;
const BAR2 = 2;
const CONFIG = pciRegion.VFIO_PCI_CONFIG_REGION_INDEX;

/** A following good command works: the connection survived. */
function stillWorks(c: RawClient): void {
  const m = c.call(C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest());
  assert.equal(errnoOf(m), 0, 'GET_INFO after the bad input');
}

describe('vfio-user server: messages', () => {
  let server: ServerProcess;
  let baseline: Baseline;
  before(async () => ({ server, baseline } = await startWithBaseline()));
  after(async () => server.stop());

  it('negotiates VERSION: the client\'s major, the lower minor, our limits, and closes on a foreign major', async () => {
    let c = RawClient.connect(server.paths.simgpu);
    const m = c.call(C.VFIO_USER_VERSION, encodeVersion(0, 7, '{"capabilities":{"max_msg_fds":4,"max_dma_maps":100,"max_data_xfer_size":4096,"unknown":1}}'));
    assert.equal(errnoOf(m), 0);
    assert.equal(m.header.flags & HF.VFIO_USER_F_TYPE_MASK, HF.VFIO_USER_F_TYPE_REPLY);
    const v = decodeVersion(m.body);
    assert.equal(v.major, 0);
    assert.ok(v.minor <= 7);
    const caps = parseVersionCapabilities(v.capabilities);
    assert.equal(caps.maxMsgFds, 16);
    assert.equal(caps.maxDataXferSize, 1024 * 1024);
    assert.equal(caps.maxDmaMaps, 100, 'the lower of the two');
    assert.equal(caps.pgsizes, BigInt(PAGE));
    assert.equal(caps.writeMultiple, false);
    // A second VERSION is refused; the session goes on.
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 0))), ERRNO.EINVAL);
    stillWorks(c);
    c.close();
    c = RawClient.connect(server.paths.simgpu);
    c.send(C.VFIO_USER_VERSION, encodeVersion(1, 0));
    assert.ok(c.closedByServer(), 'a foreign major version closes the connection');
    c.close();
    await expectBaseline(server, baseline);
  });

  it('answers anything before VERSION, and a malformed VERSION, with EINVAL; a good VERSION still works after', async () => {
    const c = RawClient.connect(server.paths.simgpu);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest())), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, new Uint8Array(2))), ERRNO.EINVAL, 'a body shorter than major and minor');
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 0, '{"capabilities":'))), ERRNO.EINVAL, 'broken JSON');
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 0, '{"capabilities":{"max_msg_fds":"x"}}'))), ERRNO.EINVAL);
    const memfd = clientMemory(1);
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 0), [memfd])), ERRNO.EINVAL, 'VERSION takes no fds');
    a.close(memfd);
    assert.equal(errnoOf(c.call(C.VFIO_USER_VERSION, encodeVersion(0, 0))), 0, 'no capabilities: the spec\'s defaults');
    stillWorks(c);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('survives bad framing: oversized messages, sizes that disagree with the body, unknown commands, replies, other types', async () => {
    const c = RawClient.open(server.paths.simgpu);
    // Oversized: discarded while streaming, E2BIG.
    const huge = new Uint8Array(2 * 1024 * 1024 + 64);
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_WRITE, huge)), ERRNO.E2BIG);
    stillWorks(c);
    // A size that counts fewer bytes than the struct: the body is short, EINVAL.
    const header = encodeCommand(0x7001, C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(0).subarray(0, 16));
    c.sendRaw(header);
    let m = c.expectMessage();
    assert.equal(m.header.msg_id, 0x7001);
    assert.equal(errnoOf(m), ERRNO.EINVAL);
    // A size larger than what one send carries: the rest comes later and completes it.
    const whole = encodeCommand(0x7002, C.VFIO_USER_REGION_READ, encodeRegionRead(0n, BAR0, 4));
    c.sendRaw(whole.subarray(0, 20));
    c.sendRaw(whole.subarray(20));
    m = c.expectMessage();
    assert.equal(m.header.msg_id, 0x7002);
    assert.equal(new DataView(m.body.buffer, m.body.byteOffset + 16).getUint32(0, true), SIMGPU_ID);
    // A REGION_WRITE whose count says more data than its size brings.
    const write = encodeRegionWrite(0x10n, BAR0, new Uint8Array(8)) as readonly Uint8Array[];
    new DataView(write[0]!.buffer).setUint32(12, 16, true);
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_WRITE, write)), ERRNO.EINVAL);
    // Unknown, not offered, wrong direction.
    assert.equal(errnoOf(c.call(99, new Uint8Array(0))), ERRNO.ENOSYS);
    const why = (await server.stats()).lastErrors[SIMGPU_UUID];
    assert.deepEqual({ command: why?.command, errno: why?.errno }, { command: 'command 99', errno: ERRNO.ENOSYS });
    assert.match(why!.detail, /unknown/, 'the server keeps why it refused, for diagnostics');
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_WRITE_MULTI, new Uint8Array(8))), ERRNO.ENOTSUP);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DMA_READ, new Uint8Array(16))), ERRNO.EINVAL);
    // A reply where a command was expected, and a message of no known type.
    const reply = encodeCommand(0x7003, C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest());
    new DataView(reply.buffer).setUint32(8, HF.VFIO_USER_F_TYPE_REPLY, true);
    c.sendRaw(reply);
    m = c.expectMessage();
    assert.equal(m.header.msg_id, 0x7003);
    assert.equal(errnoOf(m), ERRNO.EINVAL);
    const typed = encodeCommand(0x7004, C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest());
    new DataView(typed.buffer).setUint32(8, 2, true);
    c.sendRaw(typed);
    assert.equal(errnoOf(c.expectMessage()), ERRNO.EINVAL);
    // No_reply: nothing comes back, the next command's reply is next.
    c.send(C.VFIO_USER_DEVICE_RESET, undefined, [], true);
    stillWorks(c);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('closes the connection on a size below the header, and frees everything', async () => {
    const c = RawClient.open(server.paths.simgpu);
    const bad = encodeCommand(0x7005, C.VFIO_USER_DEVICE_GET_INFO);
    new DataView(bad.buffer).setUint32(4, 8, true);
    c.sendRaw(bad);
    assert.ok(c.closedByServer());
    c.close();
    await expectBaseline(server, baseline);
    const again = RawClient.open(server.paths.simgpu);
    stillWorks(again);
    again.close();
    await expectBaseline(server, baseline);
  });

  it('closes fds where none belong and refuses more fds than negotiated', async () => {
    const c = RawClient.open(server.paths.simgpu);
    const connected = (await server.stats()).fds;
    const fds = Array.from({ length: 17 }, () => clientMemory(1));
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest(), fds.slice(0, 1))), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(0n, BAR0, 4), fds.slice(0, 3))), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest(), fds)), ERRNO.EINVAL, '17 fds, 16 negotiated');
    stillWorks(c);
    const s = await server.stats();
    assert.equal(s.fds, connected, 'every fd sent was closed');
    for (const fd of fds) a.close(fd);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('describes the device: GET_INFO, IRQ info, region IO fds', async () => {
    const c = RawClient.open(server.paths.simgpu);
    const info = decodeDeviceInfo(c.call(C.VFIO_USER_DEVICE_GET_INFO, deviceInfoRequest()).body);
    assert.deepEqual(info, { argsz: 16, flags: VF.VFIO_DEVICE_FLAGS_PCI | VF.VFIO_DEVICE_FLAGS_RESET, num_regions: 9, num_irqs: 5 });
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_INFO, new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))), ERRNO.EINVAL, 'argsz 8');
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_INFO, new Uint8Array(4))), ERRNO.EINVAL, 'a short body');
    const msi = decodeIrqInfo(c.call(C.VFIO_USER_DEVICE_GET_IRQ_INFO, encodeIrqInfoRequest(1)).body);
    assert.equal(msi.count, 1);
    assert.ok(msi.flags & VF.VFIO_IRQ_INFO_EVENTFD);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_IRQ_INFO, encodeIrqInfoRequest(9))), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_IRQ_INFO, encodeIrqInfoRequest(1, 8))), ERRNO.EINVAL);
    const io = c.call(C.VFIO_USER_DEVICE_GET_REGION_IO_FDS, encodeRegionIoFdsRequest(BAR0, 256));
    assert.equal(errnoOf(io), 0);
    assert.equal(decodeRegionIoFdsReply(io.body).count, 0, 'no ioeventfd sub-regions');
    assert.equal(io.fds.length, 0);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_REGION_IO_FDS, encodeRegionIoFdsRequest(42, 256))), ERRNO.EINVAL);
    const badFlags = encodeRegionIoFdsRequest(BAR0, 256);
    badFlags[4] = 1;
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_REGION_IO_FDS, badFlags)), ERRNO.EINVAL);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('gives region info with an fd for mappable regions, the sparse areas the file covers, and argsz for more', async () => {
    let c = RawClient.open(server.paths.simgpu);
    const bar1 = c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(BAR1, 256));
    const { info } = decodeRegionInfo(bar1.body);
    assert.ok(info.flags & VF.VFIO_REGION_INFO_FLAG_MMAP);
    assert.equal(info.size, 512n * 1024n * 1024n);
    assert.equal(info.offset, 0n);
    assert.equal(bar1.fds.length, 1);
    // The fd is the framebuffer itself: what REGION_WRITE puts there, the mapping shows.
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_WRITE, encodeRegionWrite(0x2000n, BAR1, Uint8Array.of(1, 2, 3, 4)))), 0);
    const seen = new Uint8Array(4);
    a.pread(bar1.fds[0]!, seen, info.offset + 0x2000n);
    assert.deepEqual([...seen], [1, 2, 3, 4]);
    a.close(bar1.fds[0]!);
    const bar0 = c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(BAR0));
    assert.equal(decodeRegionInfo(bar0.body).info.flags & VF.VFIO_REGION_INFO_FLAG_MMAP, 0);
    assert.equal(bar0.fds.length, 0);
    const config = decodeRegionInfo(c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(CONFIG)).body).info;
    assert.equal(config.size, 4096n);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(9))), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(BAR1, 16))), ERRNO.EINVAL);
    c.close();
    c = RawClient.open(server.paths.probe);
    // BAR2: memory at 0..16 KiB, registers above: a sparse capability, only with room for it.
    const small = c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(BAR2));
    const head = decodeRegionInfo(small.body);
    assert.ok(head.info.argsz > 32, 'argsz says how much the whole reply needs');
    assert.equal(small.body.byteLength, 32);
    assert.equal(small.fds.length, 0, 'no fd until the whole reply fits');
    const full = c.call(C.VFIO_USER_DEVICE_GET_REGION_INFO, encodeRegionInfoRequest(BAR2, head.info.argsz));
    const decoded = decodeRegionInfo(full.body);
    assert.ok(decoded.info.flags & VF.VFIO_REGION_INFO_FLAG_CAPS);
    const sparse = findCap(full.body, decoded.info.cap_offset, capIds.VFIO_REGION_INFO_CAP_SPARSE_MMAP);
    assert.ok(sparse);
    assert.deepEqual(decodeSparseMmap(full.body, sparse.offset), [{ offset: 0n, size: 16384n }]);
    assert.equal(full.fds.length, 1);
    for (const fd of full.fds) a.close(fd);
    c.close();
    await expectBaseline(server, baseline);
  });

  it('reads and writes regions through the device, refusing what is out of bounds or too wide', async () => {
    const c = RawClient.open(server.paths.probe);
    assert.equal(readReg(c, CONFIG, 0), 0x10f71af4, 'vendor and device ids');
    assert.equal(errnoOf(writeReg(c, CONFIG, 4, 0x2)), 0, 'Memory Space Enable');
    assert.equal(errnoOf(writeReg(c, BAR0, PROBE.DATA, 0xcafef00d)), 0);
    assert.equal(readReg(c, BAR0, PROBE.DATA), 0xcafef00d);
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(4096n, BAR0, 4))), ERRNO.EINVAL, 'past BAR0');
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(1n << 41n, BAR0, 4))), ERRNO.EINVAL, 'far past BAR0');
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(0n, 12, 4))), ERRNO.EINVAL, 'no region 12');
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(0n, BAR2, 1024 * 1024 + 1))), ERRNO.EINVAL, 'above max_data_xfer_size');
    assert.equal(errnoOf(c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(0n, 8, 4))), ERRNO.EINVAL, 'VGA');
    // A read running past the end is clipped: the reply says how much.
    const tail = c.call(C.VFIO_USER_REGION_READ, encodeRegionRead(4096n - 2n, BAR0, 8));
    assert.equal(errnoOf(tail), 0);
    assert.equal(new DataView(tail.body.buffer, tail.body.byteOffset).getUint32(12, true), 2);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_RESET)), 0);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_RESET, new Uint8Array(4))), ERRNO.EINVAL, 'RESET has no body');
    c.close();
    await expectBaseline(server, baseline);
  });

  it('binds eventfds from SCM_RIGHTS for SET_IRQS, refuses count mismatches, and releases them at disconnect', async () => {
    const c = RawClient.open(server.paths.probe);
    const connected = (await server.stats()).fds;
    const MSI = 1;
    const TRIGGER_EVENTFD = VF.VFIO_IRQ_SET_DATA_EVENTFD | VF.VFIO_IRQ_SET_ACTION_TRIGGER;
    const efd = a.eventfd(0, a.constants['EFD_NONBLOCK'] ?? 0o4000);
    const other = a.eventfd(0, a.constants['EFD_NONBLOCK'] ?? 0o4000);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1 }), [efd, other])), ERRNO.EINVAL);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 2 }), [efd])), ERRNO.EINVAL);
    const noneWithFd = encodeIrqSet({ flags: VF.VFIO_IRQ_SET_DATA_NONE | VF.VFIO_IRQ_SET_ACTION_TRIGGER, index: MSI, start: 0, count: 1 });
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, noneWithFd, [efd])), ERRNO.EINVAL, 'DATA_NONE takes no fd');
    const memfd = clientMemory(1);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1 }), [memfd])), ERRNO.EINVAL, 'not an eventfd');
    a.close(memfd);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1 }), [efd])), 0);
    let s = await server.stats();
    assert.equal(s.bus.eventfdReferences, 1);
    assert.equal(s.fds, connected + 1, 'the device\'s reference; the received fd was closed');
    // The client triggers the interrupt itself: the device signals our eventfd.
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, noneWithFd)), 0);
    assert.equal(a.eventfdRead(efd), 1n);
    // De-assign with no fds.
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1 }))), 0);
    s = await server.stats();
    assert.equal(s.bus.eventfdReferences, 0);
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: MSI, start: 0, count: 1 }), [other])), 0);
    c.close();
    await expectBaseline(server, baseline);
    a.close(efd);
    a.close(other);
  });

  it('refuses a SET_IRQS count past the index\'s interrupts at once, however large (found by npm run fuzz)', async () => {
    const c = RawClient.open(server.paths.probe);
    const TRIGGER_EVENTFD = VF.VFIO_IRQ_SET_DATA_EVENTFD | VF.VFIO_IRQ_SET_ACTION_TRIGGER;
    // A de-assign (no fds) of 4 billion interrupts held the server ~20 s building their data.
    for (const [index, start, count] of [[1, 0, 0xffffffff], [1, 0, 2], [1, 1, 1], [1, 0xffffffff, 1], [0, 0, 0x3cd443aa]]) {
      const reply = c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: index!, start: start!, count: count! }));
      assert.equal(errnoOf(reply), ERRNO.EINVAL, `index ${index} start ${start} count ${count}`);
    }
    assert.equal(errnoOf(c.call(C.VFIO_USER_DEVICE_SET_IRQS, encodeIrqSet({ flags: TRIGGER_EVENTFD, index: 1, start: 0, count: 1 }))), 0, 'the range the index has');
    c.close();
    await expectBaseline(server, baseline);
  });

  it('lets go of a client that closed with our reply unread while its last bytes were still queued (found by npm run fuzz)', async () => {
    // The client's close with unread data makes the server's socket report an error
    // (ECONNRESET) along with the queued bytes; libuv then stops watching it for good, so
    // the server must read on past the data to the error, in that one callback.
    const c = RawClient.connect(server.paths.simgpu);
    c.sendRaw(encodeCommand(1, C.VFIO_USER_VERSION, encodeVersion(0, 1, '{"capabilities":{"max_msg_fds":8}}')));
    assert.ok(a.poll(c.fd, a.constants['POLLIN'] ?? 1, 3000), 'the VERSION reply arrived (left unread)');
    server.child.kill('SIGSTOP');
    try {
      // Half a message: the server can do nothing with it but read it.
      c.sendRaw(new Uint8Array(Buffer.from('0200040018000000000000000000000000000000', 'hex')));
      c.close();
    } finally {
      server.child.kill('SIGCONT');
    }
    await expectBaseline(server, baseline);
  });
});
