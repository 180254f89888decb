// What the client answers to the commands a server sends it (server-commands.ts): the DMA
// target's answer for DMA_READ/DMA_WRITE, errors for anything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errnoNumber, sysError } from '../../../src/addon/errors.js';
import { decodeHeader, vfioUserCommands as C, vfioUserHeaderFlags as F, type VfioUserFrame } from '../../../src/uapi/vfio-user/index.js';
import { answerServerCommand } from '../../../src/vfio/user/server-commands.js';

function frame(command: number, flags = 0, body = new Uint8Array(16), fds: number[] = []): VfioUserFrame {
  return { oversized: false, header: { msg_id: 7, command, size: 16 + body.byteLength, flags, error_no: 0 }, body, fds };
}

function answered(reply: Uint8Array | undefined): { flags: number; errno: number; msgId: number; body: number[] } {
  assert.ok(reply);
  const h = decodeHeader(reply);
  return { flags: h.flags, errno: h.error_no, msgId: h.msg_id, body: [...reply.subarray(16)] };
}

test('DMA_READ/DMA_WRITE go to the handler: its body, or its errno', () => {
  const ok = answered(answerServerCommand(frame(C.VFIO_USER_DMA_READ), () => Uint8Array.of(1, 2, 3)));
  assert.deepEqual(ok, { flags: F.VFIO_USER_F_TYPE_REPLY, errno: 0, msgId: 7, body: [1, 2, 3] });
  const denied = answered(answerServerCommand(frame(C.VFIO_USER_DMA_WRITE), () => sysError('EPERM', 'vfio-user')));
  assert.deepEqual([denied.flags, denied.errno, denied.body], [F.VFIO_USER_F_TYPE_REPLY | F.VFIO_USER_F_ERROR, errnoNumber('EPERM'), []]);
  const thrown = answered(answerServerCommand(frame(C.VFIO_USER_DMA_WRITE), () => { throw sysError('EINVAL', 'vfio-user'); }));
  assert.equal(thrown.errno, errnoNumber('EINVAL'));
  assert.equal(answered(answerServerCommand(frame(C.VFIO_USER_DMA_READ), undefined)).errno, errnoNumber('EFAULT'), 'nothing mapped yet');
});

test('other commands are ENOSYS, fds EINVAL, an oversized one E2BIG; No_reply gets nothing', () => {
  assert.equal(answered(answerServerCommand(frame(C.VFIO_USER_REGION_READ), () => new Uint8Array(0))).errno, errnoNumber('ENOSYS'));
  assert.equal(answered(answerServerCommand(frame(99), () => new Uint8Array(0))).errno, errnoNumber('ENOSYS'));
  assert.equal(answered(answerServerCommand(frame(C.VFIO_USER_DMA_READ, 0, new Uint8Array(16), [42]), () => new Uint8Array(0))).errno, errnoNumber('EINVAL'));
  const big: VfioUserFrame = { oversized: true, header: { msg_id: 1, command: C.VFIO_USER_DMA_WRITE, size: 1 << 30, flags: 0, error_no: 0 }, fds: [] };
  assert.equal(answered(answerServerCommand(big, () => new Uint8Array(0))).errno, errnoNumber('E2BIG'));
  let called = false;
  assert.equal(answerServerCommand(frame(C.VFIO_USER_DMA_WRITE, F.VFIO_USER_F_NO_REPLY), () => { called = true; return new Uint8Array(0); }), undefined);
  assert.equal(called, true, 'the write is done, only the reply is left out');
});
