// VFIO_USER_DEVICE_SET_IRQS: the kernel's vfio_irq_set with the eventfds out of band.
// DATA_EVENTFD takes `count` fds in the message (one per sub-index, in order), or none
// to de-assign the range (as QEMU sends it); any other number is EINVAL. DATA_NONE and
// DATA_BOOL take no fds. The request becomes the backend's vfio_irq_set with the
// received fd numbers (or -1) as its data; the backend takes its own references
// (eventfd_ctx_fdget: a dup), so every received fd is closed once it returns. A count
// past the interrupts the index has is EINVAL before anything is built from it, as the
// kernel's vfio_set_irqs_validate_and_prepare does (a de-assign of 4 billion eventfds
// would otherwise hold the server for seconds).
import { sysError } from '../../../addon/errors.js';
import { flags as VF } from '../../../uapi/constants.js';
import { ioctls } from '../../../uapi/ioctls.js';
import { vfio_irq_info, vfio_irq_set } from '../../../uapi/structs.js';
import { decodeIrqSet } from '../../../uapi/vfio-user/index.js';
import type { Session } from '../session.js';
import { EMPTY_REPLY, type CommandSpec } from './types.js';

const op = 'VFIO_USER_DEVICE_SET_IRQS';

/** How many interrupts the backend's index has (its GET_IRQ_INFO; its EINVAL for an index it lacks). */
function irqCount(backend: Session['backend'], index: number): number {
  const info = vfio_irq_info.encode({ argsz: vfio_irq_info.size, flags: 0, index, count: 0 });
  backend.ioctl(ioctls.VFIO_DEVICE_GET_IRQ_INFO, info);
  return vfio_irq_info.decode(info).count;
}

export const deviceSetIrqs: CommandSpec = {
  maxFds: (session) => session.negotiated.maxMsgFds,
  handle({ body, fds }, session) {
    const set = decodeIrqSet(body);
    if (set.argsz < vfio_irq_set.size) throw sysError('EINVAL', 'vfio-user', op, `argsz ${set.argsz}`);
    const dataType = set.flags & VF.VFIO_IRQ_SET_DATA_TYPE_MASK;
    let data: Uint8Array;
    if (dataType === VF.VFIO_IRQ_SET_DATA_EVENTFD) {
      if (fds.count !== 0 && fds.count !== set.count) {
        throw sysError('EINVAL', 'vfio-user', op, `${fds.count} eventfds for ${set.count} interrupts`);
      }
      const available = irqCount(session.backend, set.index);
      if (set.count > available || set.start > available - set.count) {
        throw sysError('EINVAL', 'vfio-user', op, `interrupts ${set.start}+${set.count} of index ${set.index}, which has ${available}`);
      }
      data = new Uint8Array(4 * set.count);
      const view = new DataView(data.buffer);
      for (let i = 0; i < set.count; i++) view.setInt32(4 * i, fds.count ? fds.peek(i) : -1, true);
    } else {
      if (fds.count !== 0) throw sysError('EINVAL', 'vfio-user', op, `${fds.count} fds with a request that takes none`);
      data = set.data;
    }
    const kernel = new Uint8Array(vfio_irq_set.size + data.byteLength);
    vfio_irq_set.write(kernel, { argsz: kernel.byteLength, flags: set.flags, index: set.index, start: set.start, count: set.count });
    kernel.set(data, vfio_irq_set.size);
    session.backend.ioctl(ioctls.VFIO_DEVICE_SET_IRQS, kernel);
    return EMPTY_REPLY;
  },
};
