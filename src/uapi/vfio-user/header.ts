// The 16-byte header in front of every vfio-user message, and whole-message encoders.
//
//   0  u16 msg_id    echoed by the reply; the sender's to choose, may repeat
//   2  u16 command   vfioUserCommands; repeated in the reply
//   4  u32 size      of the whole message, header included
//   8  u32 flags     type (bits 0-3: 0 command, 1 reply), 0x10 no-reply, 0x20 error
//  12  u32 error_no  an errno in an error reply (may be 0); reserved in a command
import { type ErrnoCode, type SysError, errnoCode, errnoNumber, sysError } from '../../addon/errors.js';
import { defineStruct, type StructValue } from '../struct.js';
import { VFIO_USER_HEADER_SIZE, vfioUserCommandName, vfioUserHeaderFlags as F } from './constants.js';
import { invalid } from './invalid.js';

export const vfio_user_header = defineStruct('vfio_user_header', VFIO_USER_HEADER_SIZE, {
  msg_id: ['u16', 0], command: ['u16', 2], size: ['u32', 4], flags: ['u32', 8], error_no: ['u32', 12],
});

export type VfioUserHeader = StructValue<typeof vfio_user_header.fields>;

/** A body in one piece or in parts (a fixed struct and its data, without joining them first). */
export type VfioUserBody = Uint8Array | readonly Uint8Array[];

const MAX_MESSAGE_SIZE = 0xffffffff;

export function decodeHeader(bytes: Uint8Array, offset = 0): VfioUserHeader {
  if (offset + VFIO_USER_HEADER_SIZE > bytes.byteLength) {
    throw invalid(`header needs ${VFIO_USER_HEADER_SIZE} bytes, ${Math.max(0, bytes.byteLength - offset)} present`);
  }
  return vfio_user_header.decode(bytes, offset);
}

export function isReply(header: VfioUserHeader): boolean {
  return (header.flags & F.VFIO_USER_F_TYPE_MASK) === F.VFIO_USER_F_TYPE_REPLY;
}

export function isCommand(header: VfioUserHeader): boolean {
  return (header.flags & F.VFIO_USER_F_TYPE_MASK) === F.VFIO_USER_F_TYPE_COMMAND;
}

/** A command the receiver must answer (the spec: every command unless No_reply is set). */
export function expectsReply(header: VfioUserHeader): boolean {
  return isCommand(header) && (header.flags & F.VFIO_USER_F_NO_REPLY) === 0;
}

/** The error an error reply carries, or undefined for a successful reply. */
export function replyError(reply: VfioUserHeader): SysError | undefined {
  if ((reply.flags & F.VFIO_USER_F_ERROR) === 0) return undefined;
  // The spec allows an error reply with errno 0; unknown numbers become EIO too.
  const known = errnoCode(reply.error_no);
  const detail = reply.error_no === 0 ? 'error reply without an errno' :
    known === undefined ? `unknown errno ${reply.error_no}` : undefined;
  return sysError(known ?? 'EIO', 'vfio-user', vfioUserCommandName(reply.command), detail);
}

function bodyParts(body: VfioUserBody | undefined): readonly Uint8Array[] {
  if (body === undefined) return [];
  return body instanceof Uint8Array ? [body] : body;
}

function u16(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`${what} ${value} is not a u16`);
  return value;
}

function assemble(msgId: number, command: number, flags: number, errorNo: number, body: VfioUserBody | undefined): Uint8Array {
  const parts = bodyParts(body);
  let size = VFIO_USER_HEADER_SIZE;
  for (const part of parts) size += part.byteLength;
  if (size > MAX_MESSAGE_SIZE) throw new RangeError(`a ${size}-byte message does not fit the header's u32 size`);
  const message = new Uint8Array(size);
  vfio_user_header.write(message, {
    msg_id: u16(msgId, 'msg_id'), command: u16(command, 'command'), size, flags, error_no: errorNo,
  });
  let at = VFIO_USER_HEADER_SIZE;
  for (const part of parts) { message.set(part, at); at += part.byteLength; }
  return message;
}

export interface CommandOptions {
  /** Ask the receiver not to reply (posted writes, REGION_WRITE_MULTI). */
  noReply?: boolean;
}

/** A whole command message (header and body) for one sendmsg. */
export function encodeCommand(msgId: number, command: number, body?: VfioUserBody, options: CommandOptions = {}): Uint8Array {
  const flags = F.VFIO_USER_F_TYPE_COMMAND | (options.noReply === true ? F.VFIO_USER_F_NO_REPLY : 0);
  return assemble(msgId, command, flags, 0, body);
}

/** The reply to `request`: its msg_id and command, the reply type, and `body`. */
export function encodeReply(request: Pick<VfioUserHeader, 'msg_id' | 'command'>, body?: VfioUserBody): Uint8Array {
  return assemble(request.msg_id, request.command, F.VFIO_USER_F_TYPE_REPLY, 0, body);
}

/** One Uint8Array holding a body given in parts (copies only when there are several). */
export function joinBody(body: VfioUserBody): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body.length === 1) return body[0]!;
  let size = 0;
  for (const part of body) size += part.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of body) { out.set(part, at); at += part.byteLength; }
  return out;
}

/** An error reply: the header alone (the spec forbids a body), with the errno set. */
export function encodeErrorReply(request: Pick<VfioUserHeader, 'msg_id' | 'command'>, error: ErrnoCode | number): Uint8Array {
  const errno = typeof error === 'number' ? error : errnoNumber(error);
  if (!Number.isInteger(errno) || errno <= 0 || errno > 0xffffffff) throw new RangeError(`errno ${errno} is not a positive u32`);
  return assemble(request.msg_id, request.command, F.VFIO_USER_F_TYPE_REPLY | F.VFIO_USER_F_ERROR, errno, undefined);
}
