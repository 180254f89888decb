// VFIO migration v2 and device DMA logging in <linux/vfio.h>: the feature numbers, the
// migration states and flags, and the structs the features and the data fd carry.
// The 6.1 header the addon compiles against lacks PRE_COPY (6.3) and MIG_DATA_SIZE
// (6.4), so these are declared from the kernel's uapi header (6.12) and checked against
// the addon where the header has them (test/uapi/migration-layout.test.ts).
import { defineStruct } from './struct.js';

/** _IO(';', 100 + 21) on a migration data fd (the same number as VFIO_EEH_PE_OP). */
export const VFIO_MIG_GET_PRECOPY_INFO = (0x3b << 8) | (100 + 21);

/** VFIO_DEVICE_FEATURE numbers (the low 16 bits of vfio_device_feature.flags). */
export const deviceFeature = {
  VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: 0,
  VFIO_DEVICE_FEATURE_MIGRATION: 1,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: 2,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY: 3,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: 4,
  VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: 5,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START: 6,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: 7,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: 8,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: 9,
} as const;

/** vfio_device_feature_migration.flags. */
export const migrationFlags = {
  VFIO_MIGRATION_STOP_COPY: 1 << 0,
  VFIO_MIGRATION_P2P: 1 << 1,
  VFIO_MIGRATION_PRE_COPY: 1 << 2,
} as const;

/** enum vfio_device_mig_state. */
export const migStates = {
  VFIO_DEVICE_STATE_ERROR: 0,
  VFIO_DEVICE_STATE_STOP: 1,
  VFIO_DEVICE_STATE_RUNNING: 2,
  VFIO_DEVICE_STATE_STOP_COPY: 3,
  VFIO_DEVICE_STATE_RESUMING: 4,
  VFIO_DEVICE_STATE_RUNNING_P2P: 5,
  VFIO_DEVICE_STATE_PRE_COPY: 6,
  VFIO_DEVICE_STATE_PRE_COPY_P2P: 7,
} as const;

export const vfio_device_feature_migration = defineStruct('vfio_device_feature_migration', 8, {
  flags: ['u64', 0],
});

export const vfio_device_feature_mig_state = defineStruct('vfio_device_feature_mig_state', 8, {
  device_state: ['u32', 0], data_fd: ['s32', 4],
});

export const vfio_device_feature_mig_data_size = defineStruct('vfio_device_feature_mig_data_size', 8, {
  stop_copy_length: ['u64', 0],
});

export const vfio_precopy_info = defineStruct('vfio_precopy_info', 24, {
  argsz: ['u32', 0], flags: ['u32', 4], initial_bytes: ['u64', 8], dirty_bytes: ['u64', 16],
});

/** `ranges` is a user pointer to num_ranges vfio_device_feature_dma_logging_range. */
export const vfio_device_feature_dma_logging_control = defineStruct('vfio_device_feature_dma_logging_control', 24, {
  page_size: ['u64', 0], num_ranges: ['u32', 8], __reserved: ['u32', 12], ranges: ['u64', 16],
});

export const vfio_device_feature_dma_logging_range = defineStruct('vfio_device_feature_dma_logging_range', 16, {
  iova: ['u64', 0], length: ['u64', 8],
});

/** `bitmap` is a user pointer to u64s, one bit per page_size of IOVA from `iova`. */
export const vfio_device_feature_dma_logging_report = defineStruct('vfio_device_feature_dma_logging_report', 32, {
  iova: ['u64', 0], length: ['u64', 8], page_size: ['u64', 16], bitmap: ['u64', 24],
});

export const migrationStructs = [
  vfio_device_feature_migration, vfio_device_feature_mig_state, vfio_device_feature_mig_data_size, vfio_precopy_info,
  vfio_device_feature_dma_logging_control, vfio_device_feature_dma_logging_range, vfio_device_feature_dma_logging_report,
] as const;
