// The structs of <linux/vfio.h> (6.1 uapi) used by this project, field for field.
import { defineStruct } from './struct.js';

export const vfio_info_cap_header = defineStruct('vfio_info_cap_header', 8, {
  id: ['u16', 0], version: ['u16', 2], next: ['u32', 4],
});

export const vfio_group_status = defineStruct('vfio_group_status', 8, {
  argsz: ['u32', 0], flags: ['u32', 4],
});

export const vfio_device_info = defineStruct('vfio_device_info', 20, {
  argsz: ['u32', 0], flags: ['u32', 4], num_regions: ['u32', 8], num_irqs: ['u32', 12], cap_offset: ['u32', 16],
});

export const vfio_region_info = defineStruct('vfio_region_info', 32, {
  argsz: ['u32', 0], flags: ['u32', 4], index: ['u32', 8], cap_offset: ['u32', 12], size: ['u64', 16], offset: ['u64', 24],
});

export const vfio_region_sparse_mmap_area = defineStruct('vfio_region_sparse_mmap_area', 16, {
  offset: ['u64', 0], size: ['u64', 8],
});

export const vfio_region_info_cap_sparse_mmap = defineStruct('vfio_region_info_cap_sparse_mmap', 16, {
  id: ['u16', 0], version: ['u16', 2], next: ['u32', 4], nr_areas: ['u32', 8], reserved: ['u32', 12],
});

export const vfio_region_info_cap_type = defineStruct('vfio_region_info_cap_type', 16, {
  id: ['u16', 0], version: ['u16', 2], next: ['u32', 4], type: ['u32', 8], subtype: ['u32', 12],
});

export const vfio_region_gfx_edid = defineStruct('vfio_region_gfx_edid', 24, {
  edid_offset: ['u32', 0], edid_max_size: ['u32', 4], edid_size: ['u32', 8],
  max_xres: ['u32', 12], max_yres: ['u32', 16], link_state: ['u32', 20],
});

export const vfio_irq_info = defineStruct('vfio_irq_info', 16, {
  argsz: ['u32', 0], flags: ['u32', 4], index: ['u32', 8], count: ['u32', 12],
});

/** Followed by `count` data items: u8 for DATA_BOOL, s32 for DATA_EVENTFD. */
export const vfio_irq_set = defineStruct('vfio_irq_set', 20, {
  argsz: ['u32', 0], flags: ['u32', 4], index: ['u32', 8], start: ['u32', 12], count: ['u32', 16],
});

export const vfio_device_gfx_plane_info = defineStruct('vfio_device_gfx_plane_info', 64, {
  argsz: ['u32', 0], flags: ['u32', 4], drm_plane_type: ['u32', 8], drm_format: ['u32', 12],
  drm_format_mod: ['u64', 16], width: ['u32', 24], height: ['u32', 28], stride: ['u32', 32],
  size: ['u32', 36], x_pos: ['u32', 40], y_pos: ['u32', 44], x_hot: ['u32', 48], y_hot: ['u32', 52],
  region_index: ['u32', 56], dmabuf_id: ['u32', 56],
});

export const vfio_device_ioeventfd = defineStruct('vfio_device_ioeventfd', 32, {
  argsz: ['u32', 0], flags: ['u32', 4], offset: ['u64', 8], data: ['u64', 16], fd: ['s32', 24],
});

export const vfio_device_feature = defineStruct('vfio_device_feature', 8, {
  argsz: ['u32', 0], flags: ['u32', 4],
});

export const vfio_iommu_type1_info = defineStruct('vfio_iommu_type1_info', 24, {
  argsz: ['u32', 0], flags: ['u32', 4], iova_pgsizes: ['u64', 8], cap_offset: ['u32', 16],
});

export const vfio_iova_range = defineStruct('vfio_iova_range', 16, {
  start: ['u64', 0], end: ['u64', 8],
});

export const vfio_iommu_type1_info_cap_iova_range = defineStruct('vfio_iommu_type1_info_cap_iova_range', 16, {
  id: ['u16', 0], version: ['u16', 2], next: ['u32', 4], nr_iovas: ['u32', 8], reserved: ['u32', 12],
});

export const vfio_iommu_type1_info_cap_migration = defineStruct('vfio_iommu_type1_info_cap_migration', 32, {
  id: ['u16', 0], version: ['u16', 2], next: ['u32', 4], flags: ['u32', 8],
  pgsize_bitmap: ['u64', 16], max_dirty_bitmap_size: ['u64', 24],
});

export const vfio_iommu_type1_info_dma_avail = defineStruct('vfio_iommu_type1_info_dma_avail', 12, {
  id: ['u16', 0], version: ['u16', 2], next: ['u32', 4], avail: ['u32', 8],
});

export const vfio_iommu_type1_dma_map = defineStruct('vfio_iommu_type1_dma_map', 32, {
  argsz: ['u32', 0], flags: ['u32', 4], vaddr: ['u64', 8], iova: ['u64', 16], size: ['u64', 24],
});

/** Followed by a vfio_bitmap when flags has GET_DIRTY_BITMAP. */
export const vfio_iommu_type1_dma_unmap = defineStruct('vfio_iommu_type1_dma_unmap', 24, {
  argsz: ['u32', 0], flags: ['u32', 4], iova: ['u64', 8], size: ['u64', 16],
});

/** `data` is the user address of the bitmap. */
export const vfio_bitmap = defineStruct('vfio_bitmap', 24, {
  pgsize: ['u64', 0], size: ['u64', 8], data: ['u64', 16],
});

/** Followed by a vfio_iommu_type1_dirty_bitmap_get for GET_BITMAP. */
export const vfio_iommu_type1_dirty_bitmap = defineStruct('vfio_iommu_type1_dirty_bitmap', 8, {
  argsz: ['u32', 0], flags: ['u32', 4],
});

export const vfio_iommu_type1_dirty_bitmap_get = defineStruct('vfio_iommu_type1_dirty_bitmap_get', 40, {
  iova: ['u64', 0], size: ['u64', 8], bitmap_pgsize: ['u64', 16], bitmap_size: ['u64', 24], bitmap_data: ['u64', 32],
});

export const vfio_pci_dependent_device = defineStruct('vfio_pci_dependent_device', 8, {
  group_id: ['u32', 0], segment: ['u16', 4], bus: ['u8', 6], devfn: ['u8', 7],
});

/** Followed by `count` vfio_pci_dependent_device entries. */
export const vfio_pci_hot_reset_info = defineStruct('vfio_pci_hot_reset_info', 12, {
  argsz: ['u32', 0], flags: ['u32', 4], count: ['u32', 8],
});

/** Followed by `count` s32 group fds. */
export const vfio_pci_hot_reset = defineStruct('vfio_pci_hot_reset', 12, {
  argsz: ['u32', 0], flags: ['u32', 4], count: ['u32', 8],
});

/** Every struct above, by its kernel name (for the layout test). */
export const allStructs = [
  vfio_info_cap_header, vfio_group_status, vfio_device_info, vfio_region_info,
  vfio_region_sparse_mmap_area, vfio_region_info_cap_sparse_mmap, vfio_region_info_cap_type,
  vfio_region_gfx_edid, vfio_irq_info, vfio_irq_set, vfio_device_gfx_plane_info,
  vfio_device_ioeventfd, vfio_device_feature, vfio_iommu_type1_info, vfio_iova_range,
  vfio_iommu_type1_info_cap_iova_range, vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap,
  vfio_bitmap, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get,
  vfio_pci_dependent_device, vfio_pci_hot_reset_info, vfio_pci_hot_reset,
] as const;
