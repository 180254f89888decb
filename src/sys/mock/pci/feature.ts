// VFIO_DEVICE_FEATURE on a vfio-pci device (vfio_ioctl_device_feature in vfio_main.c,
// then vfio_pci_core_ioctl_feature): header checks, then migration, DMA logging and
// the VF token answer ENOTTY (no migration or logging ops, not an SR-IOV PF); the
// low-power features work: entry marks the device as runtime-suspended between
// accesses, and with a wakeup eventfd (held by reference, as pm_wake_eventfd_ctx is)
// the next access signals it and leaves low power.
import { isSysError, sysError, type ErrnoCode } from '../../../addon/errors.js';
import { flags as F } from '../../../uapi/constants.js';
import { deviceFeature } from '../../../uapi/migration.js';
import { vfio_device_feature } from '../../../uapi/structs.js';
import type { EventfdRef, EventfdSink } from '../../../device/backend.js';
import { checkFeature, featureHeader } from '../../../device/migration/feature.js';

const OP = 'VFIO_DEVICE_FEATURE';

function fail(code: ErrnoCode, detail?: string): never {
  throw sysError(code, 'ioctl', OP, detail);
}

/** The runtime-PM state the low-power features drive (vdev->pm_runtime_engaged). */
export class LowPowerState {
  engaged = false;
  /** The wakeup eventfd as the user gave it, while one is registered. */
  wakeFd: number | undefined;
  private wake: EventfdRef | undefined;

  constructor(private readonly eventfds: EventfdSink) {}

  /** vfio_pci_core_runtime_resume, as every ioctl and access does first. */
  resume(): void {
    if (this.engaged && this.wake !== undefined) {
      const wake = this.wake;
      this.engaged = false;
      this.dropWake();
      wake.signal();
      wake.release();
    }
  }

  /** The device closes: out of low power, the wakeup eventfd's reference dropped. */
  release(): void {
    this.engaged = false;
    this.wake?.release();
    this.dropWake();
  }

  private dropWake(): void {
    this.wake = undefined;
    this.wakeFd = undefined;
  }

  ioctl(buf: Uint8Array): number {
    const minsz = vfio_device_feature.size;
    const req = featureHeader(buf);
    switch (req.feature) {
      case deviceFeature.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
        if (checkFeature(req, F.VFIO_DEVICE_FEATURE_SET, 0) === 0) return 0;
        if (this.engaged) fail('EINVAL', 'already in low power');
        this.engaged = true;
        return 0;
      case deviceFeature.VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: {
        if (checkFeature(req, F.VFIO_DEVICE_FEATURE_SET, 8) === 0) return 0;
        if (buf.byteLength < minsz + 8) fail('EFAULT', 'data runs past the buffer');
        const dv = new DataView(buf.buffer, buf.byteOffset + minsz, 8);
        const fd = dv.getInt32(0, true);
        if (fd < 0 || dv.getUint32(4, true) !== 0) fail('EINVAL', 'bad wakeup eventfd or reserved field');
        let wake: EventfdRef;
        try {
          wake = this.eventfds.acquire(fd);
        } catch (err) {
          if (isSysError(err)) fail(err.code, `fd ${fd}: ${err.message}`);
          throw err;
        }
        if (this.engaged) {
          wake.release();
          fail('EINVAL', 'already in low power');
        }
        this.engaged = true;
        this.wake = wake;
        this.wakeFd = fd;
        return 0;
      }
      case deviceFeature.VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
        if (checkFeature(req, F.VFIO_DEVICE_FEATURE_SET, 0) === 0) return 0;
        this.release();
        return 0;
      default:
        // PCI_VF_TOKEN (no token), MIGRATION and MIG_DEVICE_STATE (no migration ops),
        // DMA logging (no logging ops) and anything newer.
        return fail('ENOTTY', `feature ${req.feature} not supported`);
    }
  }
}
