// What a mock kernel is configured with: which kernel it imitates and the process
// limits the real kernel would take from the environment.
import { addon } from '../../addon/addon.js';
import type { Range } from '../../uapi/caps.js';
import { processMemlockLimit, runningAsRoot } from './locked-memory.js';

/** The kernels the notes describe; they differ in a few answers (kernel-semantics.md). */
export type KernelFlavour = '6.1' | '6.12';

export interface MockKernelOptions {
  /** Default '6.1'. */
  kernel?: KernelFlavour;
  /** RLIMIT_MEMLOCK in bytes; default: this process's limit, or 8 MiB if unknown. Infinity: unlimited. */
  memlockLimit?: number;
  /** Whether the process has CAP_IPC_LOCK; default: true when running as root. */
  capIpcLock?: boolean;
  /** vfio_iommu_type1's dma_entry_limit module parameter; default 65535. */
  dmaEntryLimit?: number;
  /**
   * CONFIG_IOMMUFD_DRIVER, which carries iova_bitmap from about 6.8 on: without it (as
   * Debian's 6.12 is built) DMA_LOGGING_REPORT passes the core's checks, then fails
   * EOPNOTSUPP (iova_bitmap_for_each's stub). 6.1 builds iova_bitmap into vfio itself.
   * Default false, as the 6.12 the notes describe; ignored for 6.1.
   */
  iommufdDriver?: boolean;
}

/** What an IOMMU-backed group's domain looks like: the emulated VT-d of the notes. */
export interface IommuPlatform {
  readonly pgsizeBitmap: bigint;
  readonly aperture: Range;
  /** Reserved regions excluded from the valid IOVA ranges (the MSI window). */
  readonly reserved: readonly Range[];
}

export const VTD_PLATFORM: IommuPlatform = {
  pgsizeBitmap: 0x40201000n,
  aperture: { start: 0n, end: 0x7f_ffff_ffffn },
  reserved: [{ start: 0xfee0_0000n, end: 0xfeef_ffffn }],
};

export interface ResolvedKernelOptions {
  readonly kernel: KernelFlavour;
  readonly memlockLimit: number;
  readonly capIpcLock: boolean;
  readonly dmaEntryLimit: number;
  /** Whether DMA_LOGGING_REPORT can report (iova_bitmap is built). */
  readonly dirtyReports: boolean;
  readonly pageSize: number;
  readonly platform: IommuPlatform;
}

export function resolveKernelOptions(options: MockKernelOptions = {}): ResolvedKernelOptions {
  const kernel = options.kernel ?? '6.1';
  if (kernel !== '6.1' && kernel !== '6.12') throw new TypeError(`unknown kernel flavour ${String(kernel)}`);
  const memlockLimit = options.memlockLimit ?? processMemlockLimit() ?? 8 * 1024 * 1024;
  if (!(memlockLimit >= 0)) throw new TypeError(`memlockLimit must be a non-negative number, got ${memlockLimit}`);
  const dmaEntryLimit = options.dmaEntryLimit ?? 65535;
  if (!Number.isInteger(dmaEntryLimit) || dmaEntryLimit < 0 || dmaEntryLimit > 0xffff_ffff) {
    throw new TypeError(`dmaEntryLimit must be an unsigned 32-bit integer, got ${dmaEntryLimit}`);
  }
  return {
    kernel,
    memlockLimit,
    capIpcLock: options.capIpcLock ?? runningAsRoot(),
    dmaEntryLimit,
    dirtyReports: kernel === '6.1' || options.iommufdDriver === true,
    pageSize: addon().pageSize,
    platform: VTD_PLATFORM,
  };
}
