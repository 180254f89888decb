// VFIO_DEVICE_IOEVENTFD (vfio_pci_ioctl_ioeventfd / vfio_pci_ioeventfd): registers
// "when this eventfd is signalled, write `data` of `count` bytes at this BAR offset".
// The mock checks and records registrations exactly as the kernel does, but cannot
// watch an eventfd from inside a device (DeviceContext only signals), so a registered
// write never happens by itself. Each registration holds a reference to its eventfd
// (vfio_virqfd_enable takes one), released when it is removed or the device closes.
import { isSysError, sysError } from '../../../addon/errors.js';
import { flags as F } from '../../../uapi/constants.js';
import { vfio_device_ioeventfd } from '../../../uapi/structs.js';
import type { EventfdRef, EventfdSink } from '../../../device/backend.js';
import type { MsixTableInfo } from '../../../device/pci/regions.js';
import { splitOffset } from '../../../device/pci/regions.js';

/** VFIO_PCI_IOEVENTFD_MAX */
export const VFIO_PCI_IOEVENTFD_MAX = 1000;
const OP = 'VFIO_DEVICE_IOEVENTFD';
/** offsetofend(struct vfio_device_ioeventfd, fd) */
const MINSZ = 28;

export interface Ioeventfd {
  readonly bar: number;
  readonly pos: number;
  readonly data: bigint;
  readonly count: number;
  readonly fd: number;
}

interface Registered extends Ioeventfd {
  readonly ref: EventfdRef;
}

export class IoeventfdTable {
  private list: Registered[] = [];

  constructor(private readonly barLength: (bar: number) => number, private readonly eventfds: EventfdSink,
    private readonly msix: () => MsixTableInfo | undefined) {}

  get entries(): readonly Ioeventfd[] {
    return this.list;
  }

  /** Every registration goes, with its eventfd reference. */
  clear(): void {
    for (const e of this.list) e.ref.release();
    this.list = [];
  }

  ioctl(buf: Uint8Array): number {
    if (buf.byteLength < MINSZ) throw sysError('EFAULT', 'ioctl', OP, 'buffer shorter than vfio_device_ioeventfd');
    const ev = vfio_device_ioeventfd.decode(buf.byteLength >= vfio_device_ioeventfd.size ? buf : padded(buf));
    if (ev.argsz < MINSZ) throw sysError('EINVAL', 'ioctl', OP, `argsz ${ev.argsz}`);
    if (ev.flags & ~F.VFIO_DEVICE_IOEVENTFD_SIZE_MASK) throw sysError('EINVAL', 'ioctl', OP, 'unknown flags');
    const count = ev.flags & F.VFIO_DEVICE_IOEVENTFD_SIZE_MASK;
    if (![1, 2, 4, 8].includes(count) || ev.fd < -1) throw sysError('EINVAL', 'ioctl', OP, 'exactly one size flag and fd >= -1');
    const { index: bar, pos } = splitOffset(ev.offset);
    if (bar > 5) throw sysError('EINVAL', 'ioctl', OP, 'only BARs take ioeventfds');
    if (pos + count > this.barLength(bar)) throw sysError('EINVAL', 'ioctl', OP, 'past the end of the BAR');
    const msix = this.msix();
    if (msix && bar === msix.bar && !(pos + count <= msix.offset || pos >= msix.offset + msix.size)) {
      throw sysError('EINVAL', 'ioctl', OP, 'inside the MSI-X table');
    }
    const same = this.list.findIndex((e) => e.pos === pos && e.bar === bar && e.data === ev.data && e.count === count);
    if (same >= 0) {
      if (ev.fd !== -1) throw sysError('EEXIST', 'ioctl', OP, 'already registered');
      this.list.splice(same, 1)[0]!.ref.release();
      return 0;
    }
    if (ev.fd < 0) throw sysError('ENODEV', 'ioctl', OP, 'nothing registered to remove');
    if (this.list.length >= VFIO_PCI_IOEVENTFD_MAX) throw sysError('ENOSPC', 'ioctl', OP);
    let ref: EventfdRef;
    try {
      ref = this.eventfds.acquire(ev.fd);
    } catch (err) {
      if (isSysError(err)) throw sysError(err.code, 'ioctl', OP, `fd ${ev.fd}: ${err.message}`);
      throw err;
    }
    this.list.push({ bar, pos, data: ev.data, count, fd: ev.fd, ref });
    return 0;
  }
}

/** The kernel copies only offsetofend(fd) bytes: decode a short buffer as if padded. */
function padded(buf: Uint8Array): Uint8Array {
  const out = new Uint8Array(vfio_device_ioeventfd.size);
  out.set(buf);
  return out;
}
