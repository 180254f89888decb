// The vfio-user header and message bodies against bytes computed by hand from the spec
// (and from QEMU 10.1 where it differs), so that a wrong offset or width fails.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import { regionTypeCap } from '../../src/uapi/caps.js';
import { flags as vfio } from '../../src/uapi/constants.js';
import {
  VFIO_USER_HEADER_SIZE, decodeDeviceFeature, decodeDeviceInfo, decodeDmaMap, decodeDmaReadReply,
  decodeDmaReadRequest, decodeDmaUnmap, decodeDmaUnmapReply, decodeDmaWriteReply, decodeDmaWriteRequest, decodeHeader,
  decodeIrqInfo, decodeIrqSet, decodeMigData, decodeMigDataRead, decodeRegionAccess, decodeRegionAccessHead,
  decodeRegionInfo, decodeRegionIoFdsReply, decodeRegionIoFdsRequest, decodeWriteMulti, decodeWriteMultiReply,
  encodeCommand, encodeDeviceFeature, encodeDeviceInfo, encodeDeviceInfoRequest, encodeDmaMap, encodeDmaReadReply, encodeDmaReadRequest,
  encodeDmaUnmap, encodeDmaUnmapReply, encodeDmaWriteReply, encodeDmaWriteRequest, encodeErrorReply, encodeIrqInfo,
  encodeIrqInfoRequest, encodeIrqSet, encodeMigData, encodeMigDataRead, encodeRegionInfoReply, encodeRegionInfoRequest,
  encodeRegionIoFdsReply, encodeRegionIoFdsRequest, encodeRegionRead, encodeRegionReadReply, encodeRegionWrite,
  encodeRegionWriteReply, encodeReply, encodeWriteMulti, encodeWriteMultiReply, expectsReply, isCommand, isReply,
  isVfioUserCommand, joinBody, replyError, vfioUserCommandName, vfioUserCommands, vfioUserDmaFlags,
  vfioUserHeaderFlags, vfioUserIoFdFlags,
} from '../../src/uapi/index.js';

/** Bytes from a hex string; spaces and | are for the reader. */
function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/[\s|]/g, ''), 'hex'));
}

function same(actual: Uint8Array | readonly Uint8Array[], expected: string): void {
  assert.equal(Buffer.from(joinBody(actual)).toString('hex'), Buffer.from(hex(expected)).toString('hex'));
}

function einval(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isSysError(err, 'EINVAL'), `expected EINVAL, got ${String(err)}`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

describe('vfio-user constants', () => {
  it('command numbers are the spec\'s (14 retired)', () => {
    assert.deepEqual(Object.values(vfioUserCommands), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18]);
    assert.equal(vfioUserCommands.VFIO_USER_REGION_READ, 9);
    assert.equal(vfioUserCommands.VFIO_USER_DEVICE_FEATURE, 16);
    assert.equal(vfioUserCommandName(5), 'VFIO_USER_DEVICE_GET_REGION_INFO');
    assert.equal(vfioUserCommandName(14), 'command 14');
    assert.equal(isVfioUserCommand(14), false);
    assert.equal(isVfioUserCommand(18), true);
  });

  it('flag bits', () => {
    assert.deepEqual(vfioUserHeaderFlags, {
      VFIO_USER_F_TYPE_MASK: 0xf, VFIO_USER_F_TYPE_COMMAND: 0, VFIO_USER_F_TYPE_REPLY: 1, VFIO_USER_F_NO_REPLY: 0x10, VFIO_USER_F_ERROR: 0x20,
    });
    assert.equal(vfioUserDmaFlags.VFIO_DMA_UNMAP_FLAG_ALL, vfio.VFIO_DMA_UNMAP_FLAG_ALL);
    assert.equal(vfioUserDmaFlags.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, vfio.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
    assert.equal(vfioUserIoFdFlags.KVM_IOEVENTFD_FLAG_DATAMATCH, 1);
  });
});

describe('vfio-user header', () => {
  it('a command: msg_id, command, size with the header, flags, error_no', () => {
    const msg = encodeCommand(0x1234, vfioUserCommands.VFIO_USER_REGION_READ, encodeRegionRead(0x1000n, 2, 4));
    same(msg, '3412 0900 20000000 00000000 00000000 | 0010000000000000 02000000 04000000');
    const h = decodeHeader(msg);
    assert.deepEqual(h, { msg_id: 0x1234, command: 9, size: 32, flags: 0, error_no: 0 });
    assert.ok(isCommand(h) && expectsReply(h) && !isReply(h));
  });

  it('no-reply sets bit 4', () => {
    const msg = encodeCommand(1, vfioUserCommands.VFIO_USER_REGION_WRITE, encodeRegionWrite(0n, 0, hex('aa')), { noReply: true });
    same(msg.subarray(0, 16), '0100 0a00 21000000 10000000 00000000');
    assert.equal(expectsReply(decodeHeader(msg)), false);
  });

  it('a reply echoes msg_id and command, type 1, body in parts joined once', () => {
    const msg = encodeReply({ msg_id: 0x1234, command: 9 }, encodeRegionReadReply(0x1000n, 2, hex('01020304')));
    same(msg, '3412 0900 24000000 01000000 00000000 | 0010000000000000 02000000 04000000 01020304');
    assert.ok(isReply(decodeHeader(msg)));
  });

  it('an error reply is the header alone with the errno', () => {
    const msg = encodeErrorReply({ msg_id: 7, command: vfioUserCommands.VFIO_USER_DMA_MAP }, 'EEXIST');
    same(msg, '0700 0200 10000000 21000000 11000000');
    const err = replyError(decodeHeader(msg));
    assert.ok(isSysError(err, 'EEXIST'));
    assert.equal(err.operation, 'VFIO_USER_DMA_MAP');
    assert.equal(replyError(decodeHeader(encodeReply({ msg_id: 7, command: 2 }))), undefined);
    assert.equal(decodeHeader(encodeErrorReply({ msg_id: 1, command: 9 }, 22)).error_no, 22);
  });

  it('an error reply with errno 0 or an unknown errno reads as EIO', () => {
    const zero = { msg_id: 1, command: 3, size: 16, flags: 0x21, error_no: 0 };
    assert.match(replyError(zero)!.message, /EIO.*without an errno/);
    assert.match(replyError({ ...zero, error_no: 99999 })!.message, /EIO.*unknown errno 99999/);
  });

  it('refuses what does not fit the header', () => {
    assert.throws(() => encodeCommand(0x10000, 1), RangeError);
    assert.throws(() => encodeErrorReply({ msg_id: 1, command: 1 }, 0), RangeError);
    einval(() => decodeHeader(new Uint8Array(15)), /16 bytes, 15 present/);
    assert.equal(VFIO_USER_HEADER_SIZE, 16);
  });
});

describe('vfio-user DMA_MAP and DMA_UNMAP', () => {
  it('DMA_MAP: argsz, flags, offset, address, size', () => {
    const body = encodeDmaMap({ flags: 3, offset: 0x1000n, address: 0xfee00000n, size: 0x200000n });
    same(body, '20000000 03000000 | 0010000000000000 | 0000e0fe00000000 | 0000200000000000');
    assert.deepEqual(decodeDmaMap(body), { argsz: 32, flags: 3, offset: 0x1000n, address: 0xfee00000n, size: 0x200000n });
    einval(() => decodeDmaMap(body.subarray(0, 31)), /DMA_MAP.*31 bytes/);
  });

  it('DMA_UNMAP without bitmap: argsz 24, the entry echoed in the reply', () => {
    const body = encodeDmaUnmap({ flags: vfioUserDmaFlags.VFIO_DMA_UNMAP_FLAG_ALL, address: 0x10000n, size: 0x1000n });
    same(body, '18000000 02000000 | 0000010000000000 | 0010000000000000');
    const req = decodeDmaUnmap(body);
    assert.deepEqual(req, { argsz: 24, flags: 2, address: 0x10000n, size: 0x1000n });
    same(encodeDmaUnmapReply(req), '18000000 02000000 0000010000000000 0010000000000000');
    assert.equal(decodeDmaUnmapReply(encodeDmaUnmapReply(req)).bitmapData, undefined);
    einval(() => decodeDmaUnmap(body.subarray(0, 23)));
  });

  it('DMA_UNMAP with a dirty bitmap: the bitmap head after the entry, the bits in the reply', () => {
    const unmap = { flags: 1, address: 0x10000n, size: 0x8000n, bitmap: { pgsize: 4096n, size: 8n } };
    const body = encodeDmaUnmap(unmap);
    same(body, '30000000 01000000 0000010000000000 0080000000000000 | 0010000000000000 0800000000000000');
    const req = decodeDmaUnmap(body);
    assert.deepEqual(req, { argsz: 48, ...unmap });
    const reply = decodeDmaUnmapReply(encodeDmaUnmapReply(req, hex('ff00000000000001')));
    same(reply.bitmapData!, 'ff00000000000001');
    einval(() => decodeDmaUnmap(body.subarray(0, 24)), /dirty bitmap/);
    einval(() => decodeDmaUnmapReply(joinBody([body, hex('ff')])), /bitmap of 8 bytes, 1 present/);
    assert.throws(() => encodeDmaUnmapReply(req, hex('ff')), RangeError);
    assert.throws(() => encodeDmaUnmap({ ...unmap, bitmap: { pgsize: 4096n, size: 1n << 32n } }), /argsz .* is not a u32/);
    assert.throws(() => encodeDmaUnmap({ flags: 1, address: 0n, size: 0n }), /bitmap goes with GET_DIRTY_BITMAP/);
  });
});

describe('vfio-user DMA_READ and DMA_WRITE', () => {
  it('a DMA_READ request is 16 bytes, the same for the spec and QEMU', () => {
    const body = encodeDmaReadRequest(0x3000n, 8);
    same(body, '0030000000000000 0800000000000000');
    assert.deepEqual(decodeDmaReadRequest(body), { address: 0x3000n, count: 8 });
    einval(() => decodeDmaReadRequest(joinBody([body, hex('00')])));
  });

  it('the spec layout: u64 count, data at 16', () => {
    const body = encodeDmaWriteRequest(0x2000n, hex('aabbcc'));
    same(body, '0020000000000000 0300000000000000 aabbcc');
    const w = decodeDmaWriteRequest(joinBody(body));
    assert.equal(w.count, 3);
    same(w.data, 'aabbcc');
    same(decodeDmaReadReply(joinBody(encodeDmaReadReply(0x2000n, hex('aabbcc')))).data, 'aabbcc');
    einval(() => decodeDmaWriteRequest(hex('0020000000000000 0400000000000000 aabbcc')), /19 bytes, expected 20/);
    einval(() => decodeDmaWriteRequest(hex('0020000000000000 00000000000000ff')), /absurd/);
  });

  it('QEMU 10.1\'s layout: u32 count, data at 12, 4 bytes of padding after it', () => {
    const body = encodeDmaWriteRequest(0x2000n, hex('aabbcc'), 'qemu');
    same(body, '0020000000000000 03000000 aabbcc 00000000');
    const w = decodeDmaWriteRequest(joinBody(body), 'qemu');
    assert.deepEqual({ address: w.address, count: w.count }, { address: 0x2000n, count: 3 });
    same(w.data, 'aabbcc');
    // QEMU's DMA_READ reply: its 32-byte struct copied from the request, data at 28.
    const reply = decodeDmaReadReply(hex('0030000000000000 04000000 01020304 00000000'), 'qemu');
    same(reply.data, '01020304');
    einval(() => decodeDmaReadReply(hex('0030000000000000 04000000 01020304'), 'qemu'), /16 bytes, expected 20/);
  });

  it('DMA_WRITE replies: the spec\'s address and count, QEMU\'s empty body', () => {
    same(encodeDmaWriteReply(0x2000n, 3), '0020000000000000 0300000000000000');
    assert.equal(encodeDmaWriteReply(0x2000n, 3, 'qemu').byteLength, 0);
    assert.deepEqual(decodeDmaWriteReply(encodeDmaWriteReply(0x2000n, 3)), { address: 0x2000n, count: 3 });
    assert.deepEqual(decodeDmaWriteReply(hex('0020000000000000 03000000')), { address: 0x2000n, count: 3 });
    assert.equal(decodeDmaWriteReply(new Uint8Array(0)), undefined);
    einval(() => decodeDmaWriteReply(hex('00')));
  });
});

describe('vfio-user device messages', () => {
  it('DEVICE_GET_INFO is 16 bytes, not the kernel\'s 20', () => {
    same(encodeDeviceInfoRequest(), '10000000 00000000 00000000 00000000');
    const body = encodeDeviceInfo({ flags: 3, num_regions: 9, num_irqs: 5 });
    same(body, '10000000 03000000 09000000 05000000');
    assert.deepEqual(decodeDeviceInfo(body), { argsz: 16, flags: 3, num_regions: 9, num_irqs: 5 });
    einval(() => decodeDeviceInfo(body.subarray(0, 12)));
  });

  it('GET_REGION_INFO: vfio_region_info, then capabilities only if argsz allows them', () => {
    same(encodeRegionInfoRequest(7), '20000000 00000000 07000000 00000000 0000000000000000 0000000000000000');
    const info = { flags: vfio.VFIO_REGION_INFO_FLAG_READ | vfio.VFIO_REGION_INFO_FLAG_WRITE, index: 2, size: 0x1000000n, offset: 0n };
    const full = encodeRegionInfoReply(info, [regionTypeCap(1, 1)], 48);
    same(full, '30000000 0b000000 02000000 20000000 0000000100000000 0000000000000000 | 0200 0100 00000000 01000000 01000000');
    const decoded = decodeRegionInfo(full);
    assert.equal(decoded.info.argsz, 48);
    assert.deepEqual(decoded.caps, [{ id: 2, version: 1, offset: 32 }]);
    // The client asked for 32 bytes: argsz says 48, no capabilities, no CAPS flag.
    const short = encodeRegionInfoReply(info, [regionTypeCap(1, 1)], 32);
    same(short, '30000000 03000000 02000000 00000000 0000000100000000 0000000000000000');
    assert.deepEqual(decodeRegionInfo(short).caps, []);
  });

  it('GET_REGION_INFO refuses a capability outside the body', () => {
    const full = encodeRegionInfoReply({ flags: 0, index: 2, size: 0n, offset: 0n }, [regionTypeCap(1, 1)], 48);
    const inside = full.slice();
    inside[12] = 8;
    einval(() => decodeRegionInfo(inside), /inside the struct/);
    const past = full.slice();
    past[12] = 44;
    einval(() => decodeRegionInfo(past), /past the 48-byte buffer/);
    einval(() => decodeRegionInfo(full.subarray(0, 31)));
  });

  it('GET_IRQ_INFO: vfio_irq_info', () => {
    same(encodeIrqInfoRequest(2), '10000000 00000000 02000000 00000000');
    const body = encodeIrqInfo({ flags: 9, index: 2, count: 16 });
    same(body, '10000000 09000000 02000000 10000000');
    assert.deepEqual(decodeIrqInfo(body), { argsz: 16, flags: 9, index: 2, count: 16 });
  });

  it('SET_IRQS: vfio_irq_set, then one byte per interrupt with DATA_BOOL', () => {
    const flags = vfio.VFIO_IRQ_SET_DATA_BOOL | vfio.VFIO_IRQ_SET_ACTION_TRIGGER;
    const body = joinBody(encodeIrqSet({ flags, index: 2, start: 0, count: 3 }, hex('010001')));
    same(body, '17000000 22000000 02000000 00000000 03000000 010001');
    const set = decodeIrqSet(body);
    assert.equal(set.argsz, 23);
    same(set.data, '010001');
    einval(() => decodeIrqSet(body.subarray(0, 22)), /22 bytes, expected 23/);
    const eventfd = joinBody(encodeIrqSet({ flags: vfio.VFIO_IRQ_SET_DATA_EVENTFD | vfio.VFIO_IRQ_SET_ACTION_TRIGGER, index: 2, start: 0, count: 4 }));
    same(eventfd, '14000000 24000000 02000000 00000000 04000000');
    assert.equal(decodeIrqSet(eventfd).data.byteLength, 0);
    einval(() => decodeIrqSet(joinBody([eventfd, hex('05000000')])));
    assert.throws(() => encodeIrqSet({ flags, index: 2, start: 0, count: 3 }, hex('01')), RangeError);
  });

  it('GET_REGION_IO_FDS: request, and a reply with an ioeventfd and an ioregionfd', () => {
    const req = encodeRegionIoFdsRequest(0, 96);
    same(req, '60000000 00000000 00000000 00000000');
    assert.deepEqual(decodeRegionIoFdsRequest(req), { argsz: 96, flags: 0, index: 0, count: 0 });
    const subRegions = [
      { kind: 'ioeventfd' as const, offset: 0x100n, size: 4n, fd_index: 0, flags: 1, datamatch: 0xdeadn },
      { kind: 'ioregionfd' as const, offset: 0x200n, size: 0n, fd_index: 1, flags: 2, user_data: 42n },
    ];
    const reply = encodeRegionIoFdsReply(0, subRegions, 96);
    same(reply, '60000000 00000000 00000000 02000000' +
      '0001000000000000 0400000000000000 00000000 00000000 01000000 00000000 adde000000000000' +
      '0002000000000000 0000000000000000 01000000 01000000 02000000 00000000 2a00000000000000');
    assert.deepEqual(decodeRegionIoFdsReply(reply), { argsz: 96, flags: 0, index: 0, count: 2, subRegions, complete: true });
  });

  it('GET_REGION_IO_FDS: a reply too big for argsz, a wider stride, bad replies', () => {
    const sub = { kind: 'ioeventfd' as const, offset: 0x100n, size: 4n, fd_index: 0, flags: 0, datamatch: 0n };
    const short = encodeRegionIoFdsReply(3, [sub, sub], 16);
    same(short, '60000000 00000000 03000000 02000000');
    assert.equal(decodeRegionIoFdsReply(short).complete, false);
    // Entries 48 bytes apart (argsz = 16 + 2 * 48): the stride comes from argsz.
    const wide = new Uint8Array(16 + 96);
    wide.set(hex('70000000 00000000 00000000 02000000'));
    wide.set(hex('0001000000000000'), 16);
    wide.set(hex('0002000000000000'), 64);
    assert.deepEqual(decodeRegionIoFdsReply(wide).subRegions.map((s) => s.offset), [0x100n, 0x200n]);
    const full = encodeRegionIoFdsReply(0, [sub], 56);
    einval(() => decodeRegionIoFdsReply(full.subarray(0, 40)), /40 bytes, expected 56/);
    const badType = full.slice();
    badType[16 + 20] = 2;
    einval(() => decodeRegionIoFdsReply(badType), /type 2 is unknown/);
    const badArgsz = full.slice();
    badArgsz[0] = 40;
    einval(() => decodeRegionIoFdsReply(badArgsz), /does not hold 1 sub-regions/);
  });

  it('DEVICE_FEATURE: vfio_device_feature, then data', () => {
    const body = joinBody(encodeDeviceFeature(0x10001, hex('0100000000000000'), 16));
    same(body, '10000000 01000100 0100000000000000');
    const f = decodeDeviceFeature(body);
    assert.deepEqual({ argsz: f.argsz, flags: f.flags }, { argsz: 16, flags: 0x10001 });
    same(f.data, '0100000000000000');
    einval(() => decodeDeviceFeature(body.subarray(0, 7)));
  });
});

describe('vfio-user region access', () => {
  it('REGION_READ: 16-byte request, reply with the data, which is not copied', () => {
    const req = encodeRegionRead(0x10n, 0, 4);
    same(req, '1000000000000000 00000000 04000000');
    assert.deepEqual(decodeRegionAccessHead(req), { offset: 0x10n, region: 0, count: 4 });
    const reply = joinBody(encodeRegionReadReply(0x10n, 0, hex('01020304')));
    const r = decodeRegionAccess(reply);
    same(r.data, '01020304');
    assert.equal(r.data.buffer, reply.buffer);
    einval(() => decodeRegionAccessHead(reply), /20 bytes, expected 16/);
  });

  it('REGION_WRITE: data after the head, a 16-byte reply', () => {
    same(encodeRegionWrite(0x7fn, 7, hex('beef')), '7f00000000000000 07000000 02000000 beef');
    same(encodeRegionWriteReply(0x7fn, 7, 2), '7f00000000000000 07000000 02000000');
  });

  it('refuses a count the bytes do not match, and short bodies', () => {
    einval(() => decodeRegionAccess(hex('1000000000000000 00000000 04000000 010203')), /19 bytes, expected 20/);
    einval(() => decodeRegionAccess(hex('1000000000000000 00000000 02000000 010203')), /19 bytes, expected 18/);
    einval(() => decodeRegionAccess(hex('1000000000000000 0000')), /at least 16/);
    einval(() => decodeRegionAccess(hex('1000000000000000 00000000 ffffffff')));
  });

  it('REGION_WRITE_MULTI: wr_cnt, then 24-byte writes with 8 bytes of data room', () => {
    const body = encodeWriteMulti([
      { offset: 0x20n, region: 0, count: 2, data: hex('aabb') },
      { offset: 0x40n, region: 1, count: 8, data: hex('0102030405060708') },
    ]);
    same(body, '0200000000000000 | 2000000000000000 00000000 02000000 aabb000000000000' +
      '| 4000000000000000 01000000 08000000 0102030405060708');
    const writes = decodeWriteMulti(body);
    assert.deepEqual(writes.map((w) => [w.offset, w.region, w.count]), [[0x20n, 0, 2], [0x40n, 1, 8]]);
    same(writes[0]!.data, 'aabb');
    einval(() => decodeWriteMulti(body.subarray(0, 40)), /of 2 writes/);
    const nine = body.slice();
    nine[8 + 12] = 9;
    einval(() => decodeWriteMulti(nine), /count 9/);
    same(encodeWriteMultiReply(2), '0200000000000000');
    assert.equal(decodeWriteMultiReply(encodeWriteMultiReply(2)), 2);
  });
});

describe('vfio-user migration data', () => {
  it('MIG_DATA_READ request, data with argsz and size', () => {
    const req = encodeMigDataRead(4096);
    same(req, '08100000 00100000');
    assert.deepEqual(decodeMigDataRead(req), { argsz: 4104, size: 4096 });
    const data = joinBody(encodeMigData(hex('0102')));
    same(data, '0a000000 02000000 0102');
    same(decodeMigData(data).data, '0102');
    einval(() => decodeMigData(hex('0a000000 03000000 0102')));
  });
});
