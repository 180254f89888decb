// VfioUserMessageReader: messages cut anywhere, many per chunk, fds paired with the
// message whose first byte came with them, a broken stream, oversized messages skipped.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isSysError } from '../../src/addon/errors.js';
import {
  VfioUserMessageReader, type VfioUserFrame, encodeCommand, encodeRegionRead, encodeRegionWrite, vfioUserCommands,
  vfioUserMessageLimit,
} from '../../src/uapi/index.js';

const { VFIO_USER_REGION_READ, VFIO_USER_REGION_WRITE, VFIO_USER_DEVICE_RESET } = vfioUserCommands;

function regionRead(id: number): Uint8Array {
  return encodeCommand(id, VFIO_USER_REGION_READ, encodeRegionRead(BigInt(id) * 4n, 0, 4));
}

function regionWrite(id: number, dataBytes: number): Uint8Array {
  return encodeCommand(id, VFIO_USER_REGION_WRITE, encodeRegionWrite(0n, 0, new Uint8Array(dataBytes).fill(id & 0xff)));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** A view of the bytes in a buffer of its own, as recvmsg would hand them over. */
function chunk(bytes: Uint8Array): Uint8Array {
  return bytes.slice();
}

/** msg_id -> fds of each complete (not oversized) message. */
function fdsById(frames: VfioUserFrame[]): Record<number, number[]> {
  return Object.fromEntries(frames.map((f) => [f.header.msg_id, f.fds]));
}

function reader(maxMessageSize = 4096): VfioUserMessageReader {
  return new VfioUserMessageReader({ maxMessageSize });
}

function body(frame: VfioUserFrame | undefined): Uint8Array {
  assert.ok(frame !== undefined && !frame.oversized, 'expected a complete message');
  return frame.body;
}

describe('VfioUserMessageReader: framing', () => {
  it('a message split byte by byte comes out once, whole, after its last byte', () => {
    const msg = regionWrite(3, 5);
    const r = reader();
    const frames: VfioUserFrame[] = [];
    msg.forEach((byte, i) => {
      const out = r.push(new Uint8Array([byte]), i === 0 ? [7] : []);
      if (i < msg.byteLength - 1) assert.deepEqual(out, [], `nothing before the last byte (${i})`);
      frames.push(...out);
    });
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0]!.header, { msg_id: 3, command: VFIO_USER_REGION_WRITE, size: 37, flags: 0, error_no: 0 });
    assert.deepEqual(body(frames[0]), msg.subarray(16));
    assert.deepEqual(frames[0]!.fds, [7]);
    assert.equal(r.bufferedBytes, 0);
  });

  it('many messages in one chunk, in order, as views of the chunk (no copy)', () => {
    const c = chunk(concat(...Array.from({ length: 100 }, (_, i) => regionRead(i))));
    const frames = reader().push(c);
    assert.deepEqual(frames.map((f) => f.header.msg_id), Array.from({ length: 100 }, (_, i) => i));
    for (const f of frames) {
      const b = body(f);
      assert.equal(b.buffer, c.buffer);
      assert.equal(b.byteLength, 16);
      assert.equal(new DataView(b.buffer, b.byteOffset).getUint32(12, true), 4);
    }
  });

  it('a header cut at every offset, and a body arriving later', () => {
    const msg = regionWrite(9, 40);
    for (let cut = 1; cut < msg.byteLength; cut++) {
      const r = reader();
      assert.deepEqual(r.push(chunk(msg.subarray(0, cut))), []);
      const frames = r.push(chunk(msg.subarray(cut)));
      assert.equal(frames.length, 1, `cut at ${cut}`);
      assert.deepEqual(body(frames[0]), msg.subarray(16));
    }
  });

  it('a message without a body (DEVICE_RESET)', () => {
    const frames = reader().push(encodeCommand(5, VFIO_USER_DEVICE_RESET));
    assert.equal(frames.length, 1);
    assert.equal(body(frames[0]).byteLength, 0);
  });

  it('a limit fit for max_data_xfer_size', () => {
    assert.equal(vfioUserMessageLimit(1 << 20), 16 + 16 + (1 << 20));
    assert.equal(vfioUserMessageLimit(8), 16 + 65536);
    assert.throws(() => reader(15), RangeError);
  });
});

describe('VfioUserMessageReader: fds', () => {
  it('two messages start in the chunk: the fds are the last one\'s', () => {
    const frames = reader().push(chunk(concat(regionRead(1), regionRead(2))), [10]);
    assert.deepEqual(fdsById(frames), { 1: [], 2: [10] });
  });

  it('a message whose first byte came with the fds keeps them until it completes', () => {
    const msg = regionWrite(1, 100);
    const r = reader();
    assert.deepEqual(r.push(chunk(msg.subarray(0, 30)), [11]), []);
    assert.deepEqual(fdsById(r.push(chunk(msg.subarray(30)))), { 1: [11] });
  });

  it('a whole message and the start of the next: the fds go to the one in progress', () => {
    const b = regionWrite(2, 20);
    const r = reader();
    assert.deepEqual(fdsById(r.push(chunk(concat(regionRead(1), b.subarray(0, 5))), [12])), { 1: [] });
    assert.deepEqual(fdsById(r.push(chunk(b.subarray(5)))), { 2: [12] });
  });

  it('no message starts in the chunk: the fds go to the message in progress', () => {
    const msg = regionWrite(1, 100);
    const r = reader();
    r.push(chunk(msg.subarray(0, 20)), [14]);
    r.push(chunk(msg.subarray(20, 60)), [13]);
    assert.deepEqual(fdsById(r.push(chunk(msg.subarray(60)))), { 1: [14, 13] });
  });

  it('the end of one message and a whole next one: the fds are the next one\'s', () => {
    const a = regionWrite(1, 50);
    const r = reader();
    r.push(chunk(a.subarray(0, 10)), [16]);
    assert.deepEqual(fdsById(r.push(chunk(concat(a.subarray(10), regionRead(2))), [15])), { 1: [16], 2: [15] });
  });

  it('close() hands back the fds of a message in progress, and refuses more pushes', () => {
    const r = reader();
    r.push(chunk(regionWrite(1, 100).subarray(0, 40)), [40, 41]);
    assert.deepEqual(r.close(), [40, 41]);
    assert.throws(() => r.push(regionRead(2)), (err: unknown) => isSysError(err, 'EBADF'));
  });

  it('close() hands back nothing that a yielded message took', () => {
    const r = reader();
    r.push(chunk(regionRead(1)), [50]);
    assert.deepEqual(r.close(), []);
  });
});

describe('VfioUserMessageReader: a size below 16 breaks the stream', () => {
  function badHeader(size: number): Uint8Array {
    const h = regionRead(66).subarray(0, 16).slice();
    new DataView(h.buffer).setUint32(4, size, true);
    return h;
  }

  it('messages before the bad header come out; the reader says why and keeps every fd', () => {
    const r = reader();
    const frames = r.push(chunk(concat(regionRead(1), badHeader(8), regionRead(2))), [20]);
    assert.deepEqual(fdsById(frames), { 1: [] });
    assert.match(r.broken ?? '', /message 66 \(VFIO_USER_REGION_READ\) declares 8 bytes, fewer than its 16-byte header/);
    assert.deepEqual(r.push(chunk(regionRead(3)), [21]), []);
    assert.deepEqual(r.close(), [20, 21]);
  });

  it('also when the bad header arrives in pieces, with the fds of its first piece', () => {
    const r = reader();
    assert.deepEqual(r.push(chunk(badHeader(0).subarray(0, 6)), [22]), []);
    assert.equal(r.broken, undefined);
    assert.deepEqual(r.push(chunk(badHeader(0).subarray(6))), []);
    assert.match(r.broken ?? '', /declares 0 bytes/);
    assert.deepEqual(r.close(), [22]);
  });

  it('a size of exactly 16 is a message with no body, not a break', () => {
    const r = reader();
    assert.equal(r.push(chunk(badHeader(16))).length, 1);
    assert.equal(r.broken, undefined);
  });
});

describe('VfioUserMessageReader: oversized messages are skipped, not buffered', () => {
  it('skipped as it streams in, yielded with its fds, and the next message still parses', () => {
    const big = regionWrite(1, 100); // 132 bytes
    const r = reader(64);
    assert.deepEqual(r.push(chunk(big.subarray(0, 26)), [30]), []);
    assert.equal(r.bufferedBytes, 0);
    assert.deepEqual(r.push(chunk(big.subarray(26, 86))), []);
    assert.equal(r.bufferedBytes, 0);
    const frames = r.push(chunk(concat(big.subarray(86), regionRead(2))));
    assert.equal(frames.length, 2);
    assert.deepEqual(frames[0], { oversized: true, header: { msg_id: 1, command: VFIO_USER_REGION_WRITE, size: 132, flags: 0, error_no: 0 }, fds: [30] });
    assert.equal(frames[1]!.oversized, false);
    assert.equal(frames[1]!.header.msg_id, 2);
  });

  it('whole in one chunk, between two messages', () => {
    const frames = reader(64).push(chunk(concat(regionRead(1), regionWrite(2, 100), regionRead(3))), [31]);
    assert.deepEqual(frames.map((f) => [f.header.msg_id, f.oversized]), [[1, false], [2, true], [3, false]]);
    assert.deepEqual(fdsById(frames), { 1: [], 2: [], 3: [31] });
  });

  it('a message of exactly the limit is buffered, and only it', () => {
    const msg = regionWrite(1, 48); // 80 bytes
    const r = reader(80);
    r.push(chunk(msg.subarray(0, 40)));
    assert.equal(r.bufferedBytes, 64);
    const frames = r.push(chunk(msg.subarray(40)));
    assert.deepEqual(body(frames[0]), msg.subarray(16));
    assert.equal(r.bufferedBytes, 0);
  });
});
