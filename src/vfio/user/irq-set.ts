// VFIO_DEVICE_SET_IRQS as vfio-user messages. The kernel takes one vfio_irq_set with
// `count` s32 eventfds after it (-1: unassign that vector). vfio-user sends eventfds as
// SCM_RIGHTS, never in the payload, so each message's argsz is the bare 20 bytes; the
// spec says a DATA_EVENTFD message without fds de-assigns its vectors; and a message may
// carry at most the server's max_msg_fds. So, as QEMU's client does: the vectors are cut
// into runs of assigned fds (sent, at most max_msg_fds a message) and runs of -1 (sent
// without fds), each run with its own start and count. The runs take effect one by one.
import { sysError } from '../../addon/errors.js';
import { flags } from '../../uapi/constants.js';
import { vfio_irq_set } from '../../uapi/structs.js';
import { encodeIrqSet, type VfioUserBody } from '../../uapi/vfio-user/index.js';

export interface IrqSetMessage {
  body: VfioUserBody;
  /** Eventfds to send with it (the caller's; copies go). */
  fds: number[];
}

const OP = 'VFIO_USER_DEVICE_SET_IRQS';

/** The messages one kernel SET_IRQS buffer becomes; `sendFds` is the server's max_msg_fds. */
export function irqSetMessages(arg: Uint8Array, sendFds: number): IrqSetMessage[] {
  if (arg.byteLength < vfio_irq_set.size) throw sysError('EINVAL', 'ioctl', OP, 'the argument is shorter than vfio_irq_set');
  const head = vfio_irq_set.decode(arg);
  const dataType = head.flags & flags.VFIO_IRQ_SET_DATA_TYPE_MASK;
  const itemSize = dataType === flags.VFIO_IRQ_SET_DATA_EVENTFD ? 4 : dataType === flags.VFIO_IRQ_SET_DATA_BOOL ? 1 : 0;
  const dataBytes = itemSize * head.count;
  if (head.argsz < vfio_irq_set.size + dataBytes || arg.byteLength < vfio_irq_set.size + dataBytes) {
    throw sysError('EINVAL', 'ioctl', OP, `argsz ${head.argsz} does not hold ${head.count} data items`);
  }
  const { flags: setFlags, index, start, count } = head;
  if (dataType !== flags.VFIO_IRQ_SET_DATA_EVENTFD) {
    const bools = dataType === flags.VFIO_IRQ_SET_DATA_BOOL ? arg.slice(vfio_irq_set.size, vfio_irq_set.size + count) : undefined;
    return [{ body: encodeIrqSet({ flags: setFlags, index, start, count }, bools), fds: [] }];
  }
  const dv = new DataView(arg.buffer, arg.byteOffset + vfio_irq_set.size, dataBytes);
  const fds = Array.from({ length: count }, (_, i) => dv.getInt32(i * 4, true));
  if (count === 0) return [{ body: encodeIrqSet({ flags: setFlags, index, start, count: 0 }), fds: [] }];
  if (sendFds < 1 && fds.some((fd) => fd >= 0)) {
    throw sysError('EINVAL', 'ioctl', OP, 'the server accepts no fds (max_msg_fds 0), so no eventfd can reach it');
  }
  const messages: IrqSetMessage[] = [];
  for (let at = 0; at < count;) {
    const assigned = fds[at]! >= 0;
    let run = 1;
    while (at + run < count && (fds[at + run]! >= 0) === assigned && (!assigned || run < sendFds)) run++;
    messages.push({
      body: encodeIrqSet({ flags: setFlags, index, start: start + at, count: run }),
      fds: assigned ? fds.slice(at, at + run) : [],
    });
    at += run;
  }
  return messages;
}
