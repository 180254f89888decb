// The mock kernel's side of VFIO_DEVICE_FEATURE (device/migration/feature.ts runs the
// core's checks): a data channel becomes a new fd of the fd table, and the logging
// features reach their user pointers (the START ranges, the REPORT bitmap) through the
// process's memory, EFAULT where it is not there.
import { sysError } from '../../addon/errors.js';
import type { FeatureTransport } from '../../device/migration/feature.js';
import type { IovaBitmap, IovaRange } from '../../device/migration/ops.js';
import { deviceFeature as N, vfio_device_feature_dma_logging_range } from '../../uapi/migration.js';
import type { AddressSpace } from './address-space.js';
import type { FdTable } from './fd-table.js';
import { MigrationFile } from './migration-file.js';
import type { KernelFlavour } from './options.js';

const OP = 'VFIO_DEVICE_FEATURE';

/** Features 6.1's vfio_ioctl_device_feature runs itself; 6.12's adds MIG_DATA_SIZE. */
const coreFeatures: Record<KernelFlavour, ReadonlySet<number>> = {
  '6.1': new Set([N.VFIO_DEVICE_FEATURE_MIGRATION, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT]),
  '6.12': new Set([N.VFIO_DEVICE_FEATURE_MIGRATION, N.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    N.VFIO_DEVICE_FEATURE_DMA_LOGGING_START, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, N.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
    N.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE]),
};

/** `dirtyReports` false: iova_bitmap is not built (Debian's 6.12), so a REPORT that passed the checks is EOPNOTSUPP. */
export function mockFeatureTransport(fds: FdTable, mm: AddressSpace, flavour: KernelFlavour, pageSize: number, dirtyReports: boolean): FeatureTransport {
  return {
    pageSize,
    coreKnows: (feature) => coreFeatures[flavour].has(feature),
    installChannel: (channel) => fds.installWith(() => new MigrationFile(channel)),
    loggingRange: (control, _data, index): IovaRange => {
      const size = vfio_device_feature_dma_logging_range.size;
      const bytes = mm.copyFromUser(control.ranges + BigInt(index * size), size, OP);
      const { iova, length } = vfio_device_feature_dma_logging_range.decode(bytes);
      return { iova, length };
    },
    reportBitmap: (report) => {
      if (!dirtyReports) throw sysError('EOPNOTSUPP', 'ioctl', OP, 'this kernel is built without iova_bitmap (CONFIG_IOMMUFD_DRIVER)');
      return new UserBitmap(mm, report.bitmap, report.iova, report.length, report.page_size);
    },
  };
}

/**
 * The user's u64 array of a DMA_LOGGING_REPORT: bit n is the page_size unit at
 * iova + n * page_size. The whole array must be writable user memory (EFAULT first,
 * before the device is asked: iova_bitmap_alloc pins it); bits are only ever set.
 */
class UserBitmap implements IovaBitmap {
  constructor(private readonly mm: AddressSpace, private readonly addr: bigint, private readonly base: bigint,
    length: bigint, private readonly pageSize: bigint) {
    const bits = (length + pageSize - 1n) / pageSize;
    const bytes = ((bits + 63n) / 64n) * 8n;
    if (bytes > 0n) {
      // Probe: copy_from_user and back, so an unwritable array is EFAULT before any bit is set.
      const words = mm.copyFromUser(addr, Number(bytes), OP);
      mm.copyToUser(addr, words, OP);
    }
  }

  set(iova: bigint, length: bigint): void {
    if (length <= 0n || iova < this.base) return;
    const first = (iova - this.base) / this.pageSize;
    const last = (iova + length - 1n - this.base) / this.pageSize;
    const from = (first / 8n);
    const to = (last / 8n);
    const bytes = this.mm.copyFromUser(this.addr + from, Number(to - from + 1n), OP);
    for (let bit = first; bit <= last; bit++) {
      const at = Number(bit / 8n - from);
      bytes[at]! |= 1 << Number(bit % 8n);
    }
    this.mm.copyToUser(this.addr + from, bytes, OP);
  }
}
