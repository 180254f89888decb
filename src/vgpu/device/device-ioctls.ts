// VFIO_DEVICE_FEATURE as far as a vGPU itself answers it: the host already ran the VFIO
// core's header checks and its features (migration and DMA logging through the vGPU's
// MigrationOps / DirtyLogOps, device/migration/feature.ts); a feature left over would go
// to the driver's device_feature op, which a vGPU lacks: EINVAL, as vfio_main.c answers.
// Reached directly (not through a host), the header is still checked first.
import { sysError } from '../../addon/errors.js';
import { featureHeader } from '../../device/migration/feature.js';

/** VFIO_DEVICE_FEATURE on a vGPU for a feature the core does not run. */
export function deviceFeature(buf: Uint8Array): never {
  const req = featureHeader(buf);
  throw sysError('EINVAL', 'ioctl', 'VFIO_DEVICE_FEATURE', `feature ${req.feature} is not supported by a vGPU`);
}
