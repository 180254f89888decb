// How one kernel VFIO_DEVICE_SET_IRQS buffer becomes vfio-user messages (irq-set.ts), and
// what the client accepts of a server's VERSION reply (negotiate.ts): pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flags } from '../../../src/uapi/constants.js';
import { vfio_irq_set } from '../../../src/uapi/structs.js';
import { decodeIrqSet, joinBody, VFIO_USER_MAJOR, VFIO_USER_MINOR } from '../../../src/uapi/vfio-user/index.js';
import { irqSetMessages } from '../../../src/vfio/user/irq-set.js';
import { acceptVersion, type ClientLimits } from '../../../src/vfio/user/negotiate.js';

const TRIGGER_EVENTFD = flags.VFIO_IRQ_SET_ACTION_TRIGGER | flags.VFIO_IRQ_SET_DATA_EVENTFD;

function kernelSet(flagBits: number, index: number, start: number, data: readonly number[], itemSize: 0 | 1 | 4): Uint8Array {
  const size = vfio_irq_set.size + data.length * itemSize;
  const buf = vfio_irq_set.encode({ argsz: size, flags: flagBits, index, start, count: data.length }, size);
  const dv = new DataView(buf.buffer);
  data.forEach((v, i) => (itemSize === 4 ? dv.setInt32(vfio_irq_set.size + i * 4, v, true) : dv.setUint8(vfio_irq_set.size + i, v)));
  return buf;
}

function summary(arg: Uint8Array, sendFds: number): unknown[] {
  return irqSetMessages(arg, sendFds).map((m) => {
    const set = decodeIrqSet(joinBody(m.body));
    return { argsz: set.argsz, start: set.start, count: set.count, fds: m.fds, data: [...set.data] };
  });
}

test('eventfds: runs of assigned fds at most max_msg_fds a message, runs of -1 without fds, argsz 20 each', () => {
  const arg = kernelSet(TRIGGER_EVENTFD, 2, 1, [10, 11, 12, -1, -1, 13], 4);
  assert.deepEqual(summary(arg, 2), [
    { argsz: 20, start: 1, count: 2, fds: [10, 11], data: [] },
    { argsz: 20, start: 3, count: 1, fds: [12], data: [] },
    { argsz: 20, start: 4, count: 2, fds: [], data: [] },
    { argsz: 20, start: 6, count: 1, fds: [13], data: [] },
  ]);
  assert.deepEqual(summary(arg, 16).map((m) => (m as { count: number }).count), [3, 2, 1]);
  assert.throws(() => irqSetMessages(arg, 0), { code: 'EINVAL', operation: 'VFIO_USER_DEVICE_SET_IRQS' });
  assert.deepEqual(summary(kernelSet(TRIGGER_EVENTFD, 1, 0, [-1, -1], 4), 0), [{ argsz: 20, start: 0, count: 2, fds: [], data: [] }],
    'unassigning needs no fds');
});

test('DATA_NONE and DATA_BOOL pass as they are; a short buffer is EINVAL', () => {
  assert.deepEqual(summary(kernelSet(flags.VFIO_IRQ_SET_ACTION_TRIGGER | flags.VFIO_IRQ_SET_DATA_NONE, 1, 0, [], 0), 1),
    [{ argsz: 20, start: 0, count: 0, fds: [], data: [] }]);
  assert.deepEqual(summary(kernelSet(flags.VFIO_IRQ_SET_ACTION_MASK | flags.VFIO_IRQ_SET_DATA_BOOL, 0, 0, [1, 0, 1], 1), 1),
    [{ argsz: 23, start: 0, count: 3, fds: [], data: [1, 0, 1] }]);
  const short = kernelSet(TRIGGER_EVENTFD, 1, 0, [5, 6], 4).subarray(0, 24);
  assert.throws(() => irqSetMessages(short, 4), { code: 'EINVAL' });
});

test('VERSION replies: within our limits is accepted and sized; another major, a higher minor, tiny transfers or twin sockets are refused', () => {
  const limits: ClientLimits = { maxDataXferSize: 1 << 20, maxMsgFds: 16, pgsizes: 4096n, maxDmaMaps: 65535 };
  const caps = (c: object): string => JSON.stringify({ capabilities: c });
  const n = acceptVersion({ major: VFIO_USER_MAJOR, minor: 0, capabilities: caps({ max_msg_fds: 4, max_data_xfer_size: 1 << 24, pgsizes: 0x201000 }) }, 0, limits);
  assert.deepEqual({ xfer: n.xferSize, fds: n.sendFds, page: n.dmaPageSize, maps: n.maxDmaMaps }, { xfer: 1 << 20, fds: 4, page: 4096n, maps: 65535 });
  const defaults = acceptVersion({ major: VFIO_USER_MAJOR, minor: VFIO_USER_MINOR, capabilities: undefined }, 0, limits);
  assert.deepEqual({ fds: defaults.sendFds, xfer: defaults.xferSize }, { fds: 1, xfer: 1 << 20 }, 'the spec\'s defaults when the server says nothing');
  const refused = (reply: Parameters<typeof acceptVersion>[0], fds = 0): unknown => {
    try {
      acceptVersion(reply, fds, limits);
      return 'accepted';
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  assert.equal(refused({ major: VFIO_USER_MAJOR + 1, minor: 0, capabilities: undefined }), 'EPROTONOSUPPORT');
  assert.equal(refused({ major: VFIO_USER_MAJOR, minor: VFIO_USER_MINOR + 1, capabilities: undefined }), 'EPROTONOSUPPORT');
  assert.equal(refused({ major: VFIO_USER_MAJOR, minor: 0, capabilities: caps({ max_data_xfer_size: 4 }) }), 'EPROTO');
  assert.equal(refused({ major: VFIO_USER_MAJOR, minor: 0, capabilities: caps({ pgsizes: 512 }) }), 'EPROTO');
  assert.equal(refused({ major: VFIO_USER_MAJOR, minor: 0, capabilities: caps({ twin_socket: { supported: true, fd_index: 0 } }) }, 1), 'EPROTO');
  assert.equal(refused({ major: VFIO_USER_MAJOR, minor: 0, capabilities: '{"capabilities": 7}' }), 'EPROTO');
});
