// The commands a vfio-user server sends its client (DMA_READ and DMA_WRITE) and the
// reply each gets. The DMA target answers them (dma.ts); anything else a server sends is
// ENOSYS, as QEMU's client answers, and a command too large for this client E2BIG.
import { sysError, type SysError } from '../../addon/errors.js';
import {
  encodeErrorReply, encodeReply, expectsReply, vfioUserCommandName, type VfioUserBody, type VfioUserCommandName,
  type VfioUserFrame,
} from '../../uapi/vfio-user/index.js';

/** What the server may ask of the client; answers a body, or the SysError whose errno to reply with. */
export type CommandHandler = (command: VfioUserCommandName, body: Uint8Array) => VfioUserBody | SysError;

/**
 * The reply to a command from the server, or undefined when it asked for none. The
 * caller has closed any fds that came with it (none belongs to these commands).
 */
export function answerServerCommand(frame: VfioUserFrame, handler: CommandHandler | undefined): Uint8Array | undefined {
  const name = vfioUserCommandName(frame.header.command);
  let result: VfioUserBody | SysError;
  if (frame.oversized) {
    result = sysError('E2BIG', 'vfio-user', name, 'above max_data_xfer_size');
  } else if (frame.fds.length > 0) {
    result = sysError('EINVAL', 'vfio-user', name, 'fds with a command that takes none');
  } else if (name !== 'VFIO_USER_DMA_READ' && name !== 'VFIO_USER_DMA_WRITE') {
    result = sysError('ENOSYS', 'vfio-user', name, 'not a command a server sends');
  } else if (!handler) {
    result = sysError('EFAULT', 'vfio-user', name, 'nothing is mapped for DMA');
  } else {
    try {
      result = handler(name, frame.body);
    } catch (err) {
      // A body that does not decode (EINVAL), or a bug: the server still gets its answer.
      result = err instanceof Error ? (err as SysError) : sysError('EIO', 'vfio-user', name, String(err));
    }
  }
  if (!expectsReply(frame.header)) return undefined;
  if (result instanceof Error) {
    const errno = typeof result.errno === 'number' && result.errno > 0 ? result.errno : 'EIO';
    return encodeErrorReply(frame.header, errno);
  }
  return encodeReply(frame.header, result);
}
