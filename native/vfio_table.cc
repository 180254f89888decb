// The VFIO table: every ioctl number, constant and struct layout of <linux/vfio.h> as
// this compiler sees them, so test/uapi/layout.test.ts can check src/uapi name by name.
// Struct fields use the TypeScript codecs' flattened names: a capability's
// `header.id` is `id`, dirty_bitmap_get's `bitmap.pgsize` is `bitmap_pgsize`.
#include <linux/vfio.h>

#include <cstddef>
#include <cstdint>

#include "exports.h"

namespace vfio_vgpu {

namespace {

void Put(Napi::Object table, const char* name, double value) {
  table.Set(name, Napi::Number::New(table.Env(), value));
}

Napi::Object Ioctls(Napi::Env env) {
  Napi::Object t = Napi::Object::New(env);
#define IOCTL(name) Put(t, #name, static_cast<double>(name))
  IOCTL(VFIO_GET_API_VERSION);
  IOCTL(VFIO_CHECK_EXTENSION);
  IOCTL(VFIO_SET_IOMMU);
  IOCTL(VFIO_GROUP_GET_STATUS);
  IOCTL(VFIO_GROUP_SET_CONTAINER);
  IOCTL(VFIO_GROUP_UNSET_CONTAINER);
  IOCTL(VFIO_GROUP_GET_DEVICE_FD);
  IOCTL(VFIO_DEVICE_GET_INFO);
  IOCTL(VFIO_DEVICE_GET_REGION_INFO);
  IOCTL(VFIO_DEVICE_GET_IRQ_INFO);
  IOCTL(VFIO_DEVICE_SET_IRQS);
  IOCTL(VFIO_DEVICE_RESET);
  IOCTL(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO);
  IOCTL(VFIO_DEVICE_PCI_HOT_RESET);
  IOCTL(VFIO_DEVICE_QUERY_GFX_PLANE);
  IOCTL(VFIO_DEVICE_GET_GFX_DMABUF);
  IOCTL(VFIO_DEVICE_IOEVENTFD);
  IOCTL(VFIO_DEVICE_FEATURE);
  IOCTL(VFIO_IOMMU_GET_INFO);
  IOCTL(VFIO_IOMMU_MAP_DMA);
  IOCTL(VFIO_IOMMU_UNMAP_DMA);
  IOCTL(VFIO_IOMMU_ENABLE);
  IOCTL(VFIO_IOMMU_DISABLE);
  IOCTL(VFIO_IOMMU_DIRTY_PAGES);
  IOCTL(VFIO_IOMMU_SPAPR_TCE_GET_INFO);
  IOCTL(VFIO_EEH_PE_OP);
  IOCTL(VFIO_IOMMU_SPAPR_REGISTER_MEMORY);
  IOCTL(VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY);
  IOCTL(VFIO_IOMMU_SPAPR_TCE_CREATE);
  IOCTL(VFIO_IOMMU_SPAPR_TCE_REMOVE);
#undef IOCTL
  return t;
}

// The header's flags are plain ints, so (1 << 31) comes out negative; the kernel stores
// them in __u32 fields, so the table gives the unsigned 32-bit value.
template <typename T>
double AsU32(T value) {
  return static_cast<double>(static_cast<uint32_t>(value));
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object t = Napi::Object::New(env);
#define CONSTANT(name) Put(t, #name, AsU32(name))
  CONSTANT(VFIO_API_VERSION);
  CONSTANT(VFIO_TYPE1_IOMMU);
  CONSTANT(VFIO_SPAPR_TCE_IOMMU);
  CONSTANT(VFIO_TYPE1v2_IOMMU);
  CONSTANT(VFIO_DMA_CC_IOMMU);
  CONSTANT(VFIO_EEH);
  CONSTANT(VFIO_TYPE1_NESTING_IOMMU);
  CONSTANT(VFIO_SPAPR_TCE_v2_IOMMU);
  CONSTANT(VFIO_NOIOMMU_IOMMU);
  CONSTANT(VFIO_UNMAP_ALL);
  CONSTANT(VFIO_UPDATE_VADDR);
  CONSTANT(VFIO_GROUP_FLAGS_VIABLE);
  CONSTANT(VFIO_GROUP_FLAGS_CONTAINER_SET);
  CONSTANT(VFIO_DEVICE_FLAGS_RESET);
  CONSTANT(VFIO_DEVICE_FLAGS_PCI);
  CONSTANT(VFIO_DEVICE_FLAGS_PLATFORM);
  CONSTANT(VFIO_DEVICE_FLAGS_AMBA);
  CONSTANT(VFIO_DEVICE_FLAGS_CCW);
  CONSTANT(VFIO_DEVICE_FLAGS_AP);
  CONSTANT(VFIO_DEVICE_FLAGS_FSL_MC);
  CONSTANT(VFIO_DEVICE_FLAGS_CAPS);
  CONSTANT(VFIO_REGION_INFO_FLAG_READ);
  CONSTANT(VFIO_REGION_INFO_FLAG_WRITE);
  CONSTANT(VFIO_REGION_INFO_FLAG_MMAP);
  CONSTANT(VFIO_REGION_INFO_FLAG_CAPS);
  CONSTANT(VFIO_IRQ_INFO_EVENTFD);
  CONSTANT(VFIO_IRQ_INFO_MASKABLE);
  CONSTANT(VFIO_IRQ_INFO_AUTOMASKED);
  CONSTANT(VFIO_IRQ_INFO_NORESIZE);
  CONSTANT(VFIO_IRQ_SET_DATA_NONE);
  CONSTANT(VFIO_IRQ_SET_DATA_BOOL);
  CONSTANT(VFIO_IRQ_SET_DATA_EVENTFD);
  CONSTANT(VFIO_IRQ_SET_ACTION_MASK);
  CONSTANT(VFIO_IRQ_SET_ACTION_UNMASK);
  CONSTANT(VFIO_IRQ_SET_ACTION_TRIGGER);
  CONSTANT(VFIO_IRQ_SET_DATA_TYPE_MASK);
  CONSTANT(VFIO_IRQ_SET_ACTION_TYPE_MASK);
  CONSTANT(VFIO_GFX_PLANE_TYPE_PROBE);
  CONSTANT(VFIO_GFX_PLANE_TYPE_DMABUF);
  CONSTANT(VFIO_GFX_PLANE_TYPE_REGION);
  CONSTANT(VFIO_DEVICE_IOEVENTFD_8);
  CONSTANT(VFIO_DEVICE_IOEVENTFD_16);
  CONSTANT(VFIO_DEVICE_IOEVENTFD_32);
  CONSTANT(VFIO_DEVICE_IOEVENTFD_64);
  CONSTANT(VFIO_DEVICE_IOEVENTFD_SIZE_MASK);
  CONSTANT(VFIO_DEVICE_FEATURE_MASK);
  CONSTANT(VFIO_DEVICE_FEATURE_GET);
  CONSTANT(VFIO_DEVICE_FEATURE_SET);
  CONSTANT(VFIO_DEVICE_FEATURE_PROBE);
  CONSTANT(VFIO_IOMMU_INFO_PGSIZES);
  CONSTANT(VFIO_IOMMU_INFO_CAPS);
  CONSTANT(VFIO_DMA_MAP_FLAG_READ);
  CONSTANT(VFIO_DMA_MAP_FLAG_WRITE);
  CONSTANT(VFIO_DMA_MAP_FLAG_VADDR);
  CONSTANT(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
  CONSTANT(VFIO_DMA_UNMAP_FLAG_ALL);
  CONSTANT(VFIO_DMA_UNMAP_FLAG_VADDR);
  CONSTANT(VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
  CONSTANT(VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
  CONSTANT(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP);
  CONSTANT(VFIO_PCI_BAR0_REGION_INDEX);
  CONSTANT(VFIO_PCI_BAR1_REGION_INDEX);
  CONSTANT(VFIO_PCI_BAR2_REGION_INDEX);
  CONSTANT(VFIO_PCI_BAR3_REGION_INDEX);
  CONSTANT(VFIO_PCI_BAR4_REGION_INDEX);
  CONSTANT(VFIO_PCI_BAR5_REGION_INDEX);
  CONSTANT(VFIO_PCI_ROM_REGION_INDEX);
  CONSTANT(VFIO_PCI_CONFIG_REGION_INDEX);
  CONSTANT(VFIO_PCI_VGA_REGION_INDEX);
  CONSTANT(VFIO_PCI_NUM_REGIONS);
  CONSTANT(VFIO_PCI_INTX_IRQ_INDEX);
  CONSTANT(VFIO_PCI_MSI_IRQ_INDEX);
  CONSTANT(VFIO_PCI_MSIX_IRQ_INDEX);
  CONSTANT(VFIO_PCI_ERR_IRQ_INDEX);
  CONSTANT(VFIO_PCI_REQ_IRQ_INDEX);
  CONSTANT(VFIO_PCI_NUM_IRQS);
  CONSTANT(VFIO_REGION_INFO_CAP_SPARSE_MMAP);
  CONSTANT(VFIO_REGION_INFO_CAP_TYPE);
  CONSTANT(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
  CONSTANT(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
  CONSTANT(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
  CONSTANT(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
  CONSTANT(VFIO_REGION_TYPE_PCI_VENDOR_TYPE);
  CONSTANT(VFIO_REGION_TYPE_PCI_VENDOR_MASK);
  CONSTANT(VFIO_REGION_TYPE_GFX);
  CONSTANT(VFIO_REGION_TYPE_CCW);
  CONSTANT(VFIO_REGION_TYPE_MIGRATION_DEPRECATED);
  CONSTANT(VFIO_REGION_SUBTYPE_GFX_EDID);
  CONSTANT(VFIO_DEVICE_GFX_LINK_STATE_UP);
  CONSTANT(VFIO_DEVICE_GFX_LINK_STATE_DOWN);
  // The rest of the header's numeric names, for TypeScript that has yet to use them.
  CONSTANT(VFIO_TYPE);
  CONSTANT(VFIO_BASE);
  CONSTANT(VFIO_DEVICE_INFO_CAP_ZPCI_BASE);
  CONSTANT(VFIO_DEVICE_INFO_CAP_ZPCI_GROUP);
  CONSTANT(VFIO_DEVICE_INFO_CAP_ZPCI_UTIL);
  CONSTANT(VFIO_DEVICE_INFO_CAP_ZPCI_PFIP);
  CONSTANT(VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION);
  CONSTANT(VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG);
  CONSTANT(VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG);
  CONSTANT(VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM);
  CONSTANT(VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD);
  CONSTANT(VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD);
  CONSTANT(VFIO_REGION_SUBTYPE_CCW_SCHIB);
  CONSTANT(VFIO_REGION_SUBTYPE_CCW_CRW);
  CONSTANT(VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED);
  CONSTANT(VFIO_DEVICE_STATE_V1_STOP);
  CONSTANT(VFIO_DEVICE_STATE_V1_RUNNING);
  CONSTANT(VFIO_DEVICE_STATE_V1_SAVING);
  CONSTANT(VFIO_DEVICE_STATE_V1_RESUMING);
  CONSTANT(VFIO_DEVICE_STATE_MASK);
  CONSTANT(VFIO_REGION_INFO_CAP_NVLINK2_SSATGT);
  CONSTANT(VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD);
  CONSTANT(VFIO_DEVICE_FEATURE_PCI_VF_TOKEN);
  CONSTANT(VFIO_MIGRATION_STOP_COPY);
  CONSTANT(VFIO_MIGRATION_P2P);
  CONSTANT(VFIO_DEVICE_FEATURE_MIGRATION);
  CONSTANT(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE);
  CONSTANT(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
  CONSTANT(VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP);
  CONSTANT(VFIO_DEVICE_FEATURE_LOW_POWER_EXIT);
  CONSTANT(VFIO_DEVICE_FEATURE_DMA_LOGGING_START);
  CONSTANT(VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP);
  CONSTANT(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT);
  CONSTANT(VFIO_IOMMU_SPAPR_INFO_DDW);
  CONSTANT(VFIO_EEH_PE_DISABLE);
  CONSTANT(VFIO_EEH_PE_ENABLE);
  CONSTANT(VFIO_EEH_PE_UNFREEZE_IO);
  CONSTANT(VFIO_EEH_PE_UNFREEZE_DMA);
  CONSTANT(VFIO_EEH_PE_GET_STATE);
  CONSTANT(VFIO_EEH_PE_STATE_NORMAL);
  CONSTANT(VFIO_EEH_PE_STATE_RESET);
  CONSTANT(VFIO_EEH_PE_STATE_STOPPED);
  CONSTANT(VFIO_EEH_PE_STATE_STOPPED_DMA);
  CONSTANT(VFIO_EEH_PE_STATE_UNAVAIL);
  CONSTANT(VFIO_EEH_PE_RESET_DEACTIVATE);
  CONSTANT(VFIO_EEH_PE_RESET_HOT);
  CONSTANT(VFIO_EEH_PE_RESET_FUNDAMENTAL);
  CONSTANT(VFIO_EEH_PE_CONFIGURE);
  CONSTANT(VFIO_EEH_PE_INJECT_ERR);
  CONSTANT(VFIO_CCW_CONFIG_REGION_INDEX);
  CONSTANT(VFIO_CCW_NUM_REGIONS);
  CONSTANT(VFIO_CCW_IO_IRQ_INDEX);
  CONSTANT(VFIO_CCW_CRW_IRQ_INDEX);
  CONSTANT(VFIO_CCW_REQ_IRQ_INDEX);
  CONSTANT(VFIO_CCW_NUM_IRQS);
  CONSTANT(VFIO_DEVICE_STATE_ERROR);
  CONSTANT(VFIO_DEVICE_STATE_STOP);
  CONSTANT(VFIO_DEVICE_STATE_RUNNING);
  CONSTANT(VFIO_DEVICE_STATE_STOP_COPY);
  CONSTANT(VFIO_DEVICE_STATE_RESUMING);
  CONSTANT(VFIO_DEVICE_STATE_RUNNING_P2P);
#undef CONSTANT
  return t;
}

// One struct: { size: sizeof, fields: { tsName: offsetof } }.
class Layout {
 public:
  Layout(Napi::Env env, size_t size) : layout_(Napi::Object::New(env)), fields_(Napi::Object::New(env)) {
    layout_.Set("size", Napi::Number::New(env, static_cast<double>(size)));
    layout_.Set("fields", fields_);
  }
  Layout& Field(const char* name, size_t offset) {
    Put(fields_, name, static_cast<double>(offset));
    return *this;
  }
  Napi::Object Object() const { return layout_; }

 private:
  Napi::Object layout_;
  Napi::Object fields_;
};

Napi::Object Structs(Napi::Env env) {
  Napi::Object t = Napi::Object::New(env);
#define FIELD(type, ts_name, member) .Field(#ts_name, offsetof(struct type, member))
#define STRUCT(type, fields) t.Set(#type, Layout(env, sizeof(struct type)) fields.Object())
  STRUCT(vfio_info_cap_header,
         FIELD(vfio_info_cap_header, id, id)
         FIELD(vfio_info_cap_header, version, version)
         FIELD(vfio_info_cap_header, next, next));
  STRUCT(vfio_group_status,
         FIELD(vfio_group_status, argsz, argsz)
         FIELD(vfio_group_status, flags, flags));
  STRUCT(vfio_device_info,
         FIELD(vfio_device_info, argsz, argsz)
         FIELD(vfio_device_info, flags, flags)
         FIELD(vfio_device_info, num_regions, num_regions)
         FIELD(vfio_device_info, num_irqs, num_irqs)
         FIELD(vfio_device_info, cap_offset, cap_offset));
  STRUCT(vfio_region_info,
         FIELD(vfio_region_info, argsz, argsz)
         FIELD(vfio_region_info, flags, flags)
         FIELD(vfio_region_info, index, index)
         FIELD(vfio_region_info, cap_offset, cap_offset)
         FIELD(vfio_region_info, size, size)
         FIELD(vfio_region_info, offset, offset));
  STRUCT(vfio_region_sparse_mmap_area,
         FIELD(vfio_region_sparse_mmap_area, offset, offset)
         FIELD(vfio_region_sparse_mmap_area, size, size));
  STRUCT(vfio_region_info_cap_sparse_mmap,
         FIELD(vfio_region_info_cap_sparse_mmap, id, header.id)
         FIELD(vfio_region_info_cap_sparse_mmap, version, header.version)
         FIELD(vfio_region_info_cap_sparse_mmap, next, header.next)
         FIELD(vfio_region_info_cap_sparse_mmap, nr_areas, nr_areas)
         FIELD(vfio_region_info_cap_sparse_mmap, reserved, reserved));
  STRUCT(vfio_region_info_cap_type,
         FIELD(vfio_region_info_cap_type, id, header.id)
         FIELD(vfio_region_info_cap_type, version, header.version)
         FIELD(vfio_region_info_cap_type, next, header.next)
         FIELD(vfio_region_info_cap_type, type, type)
         FIELD(vfio_region_info_cap_type, subtype, subtype));
  STRUCT(vfio_region_gfx_edid,
         FIELD(vfio_region_gfx_edid, edid_offset, edid_offset)
         FIELD(vfio_region_gfx_edid, edid_max_size, edid_max_size)
         FIELD(vfio_region_gfx_edid, edid_size, edid_size)
         FIELD(vfio_region_gfx_edid, max_xres, max_xres)
         FIELD(vfio_region_gfx_edid, max_yres, max_yres)
         FIELD(vfio_region_gfx_edid, link_state, link_state));
  STRUCT(vfio_irq_info,
         FIELD(vfio_irq_info, argsz, argsz)
         FIELD(vfio_irq_info, flags, flags)
         FIELD(vfio_irq_info, index, index)
         FIELD(vfio_irq_info, count, count));
  STRUCT(vfio_irq_set,
         FIELD(vfio_irq_set, argsz, argsz)
         FIELD(vfio_irq_set, flags, flags)
         FIELD(vfio_irq_set, index, index)
         FIELD(vfio_irq_set, start, start)
         FIELD(vfio_irq_set, count, count));
  STRUCT(vfio_device_gfx_plane_info,
         FIELD(vfio_device_gfx_plane_info, argsz, argsz)
         FIELD(vfio_device_gfx_plane_info, flags, flags)
         FIELD(vfio_device_gfx_plane_info, drm_plane_type, drm_plane_type)
         FIELD(vfio_device_gfx_plane_info, drm_format, drm_format)
         FIELD(vfio_device_gfx_plane_info, drm_format_mod, drm_format_mod)
         FIELD(vfio_device_gfx_plane_info, width, width)
         FIELD(vfio_device_gfx_plane_info, height, height)
         FIELD(vfio_device_gfx_plane_info, stride, stride)
         FIELD(vfio_device_gfx_plane_info, size, size)
         FIELD(vfio_device_gfx_plane_info, x_pos, x_pos)
         FIELD(vfio_device_gfx_plane_info, y_pos, y_pos)
         FIELD(vfio_device_gfx_plane_info, x_hot, x_hot)
         FIELD(vfio_device_gfx_plane_info, y_hot, y_hot)
         FIELD(vfio_device_gfx_plane_info, region_index, region_index)
         FIELD(vfio_device_gfx_plane_info, dmabuf_id, dmabuf_id));
  STRUCT(vfio_device_ioeventfd,
         FIELD(vfio_device_ioeventfd, argsz, argsz)
         FIELD(vfio_device_ioeventfd, flags, flags)
         FIELD(vfio_device_ioeventfd, offset, offset)
         FIELD(vfio_device_ioeventfd, data, data)
         FIELD(vfio_device_ioeventfd, fd, fd));
  STRUCT(vfio_device_feature,
         FIELD(vfio_device_feature, argsz, argsz)
         FIELD(vfio_device_feature, flags, flags));
  // Migration v2 and DMA logging (the header's; PRE_COPY and MIG_DATA_SIZE came after 6.1).
  STRUCT(vfio_device_feature_migration,
         FIELD(vfio_device_feature_migration, flags, flags));
  STRUCT(vfio_device_feature_mig_state,
         FIELD(vfio_device_feature_mig_state, device_state, device_state)
         FIELD(vfio_device_feature_mig_state, data_fd, data_fd));
  STRUCT(vfio_device_feature_dma_logging_control,
         FIELD(vfio_device_feature_dma_logging_control, page_size, page_size)
         FIELD(vfio_device_feature_dma_logging_control, num_ranges, num_ranges)
         FIELD(vfio_device_feature_dma_logging_control, __reserved, __reserved)
         FIELD(vfio_device_feature_dma_logging_control, ranges, ranges));
  STRUCT(vfio_device_feature_dma_logging_range,
         FIELD(vfio_device_feature_dma_logging_range, iova, iova)
         FIELD(vfio_device_feature_dma_logging_range, length, length));
  STRUCT(vfio_device_feature_dma_logging_report,
         FIELD(vfio_device_feature_dma_logging_report, iova, iova)
         FIELD(vfio_device_feature_dma_logging_report, length, length)
         FIELD(vfio_device_feature_dma_logging_report, page_size, page_size)
         FIELD(vfio_device_feature_dma_logging_report, bitmap, bitmap));
  STRUCT(vfio_iommu_type1_info,
         FIELD(vfio_iommu_type1_info, argsz, argsz)
         FIELD(vfio_iommu_type1_info, flags, flags)
         FIELD(vfio_iommu_type1_info, iova_pgsizes, iova_pgsizes)
         FIELD(vfio_iommu_type1_info, cap_offset, cap_offset));
  STRUCT(vfio_iova_range,
         FIELD(vfio_iova_range, start, start)
         FIELD(vfio_iova_range, end, end));
  STRUCT(vfio_iommu_type1_info_cap_iova_range,
         FIELD(vfio_iommu_type1_info_cap_iova_range, id, header.id)
         FIELD(vfio_iommu_type1_info_cap_iova_range, version, header.version)
         FIELD(vfio_iommu_type1_info_cap_iova_range, next, header.next)
         FIELD(vfio_iommu_type1_info_cap_iova_range, nr_iovas, nr_iovas)
         FIELD(vfio_iommu_type1_info_cap_iova_range, reserved, reserved));
  STRUCT(vfio_iommu_type1_info_cap_migration,
         FIELD(vfio_iommu_type1_info_cap_migration, id, header.id)
         FIELD(vfio_iommu_type1_info_cap_migration, version, header.version)
         FIELD(vfio_iommu_type1_info_cap_migration, next, header.next)
         FIELD(vfio_iommu_type1_info_cap_migration, flags, flags)
         FIELD(vfio_iommu_type1_info_cap_migration, pgsize_bitmap, pgsize_bitmap)
         FIELD(vfio_iommu_type1_info_cap_migration, max_dirty_bitmap_size, max_dirty_bitmap_size));
  STRUCT(vfio_iommu_type1_info_dma_avail,
         FIELD(vfio_iommu_type1_info_dma_avail, id, header.id)
         FIELD(vfio_iommu_type1_info_dma_avail, version, header.version)
         FIELD(vfio_iommu_type1_info_dma_avail, next, header.next)
         FIELD(vfio_iommu_type1_info_dma_avail, avail, avail));
  STRUCT(vfio_iommu_type1_dma_map,
         FIELD(vfio_iommu_type1_dma_map, argsz, argsz)
         FIELD(vfio_iommu_type1_dma_map, flags, flags)
         FIELD(vfio_iommu_type1_dma_map, vaddr, vaddr)
         FIELD(vfio_iommu_type1_dma_map, iova, iova)
         FIELD(vfio_iommu_type1_dma_map, size, size));
  STRUCT(vfio_iommu_type1_dma_unmap,
         FIELD(vfio_iommu_type1_dma_unmap, argsz, argsz)
         FIELD(vfio_iommu_type1_dma_unmap, flags, flags)
         FIELD(vfio_iommu_type1_dma_unmap, iova, iova)
         FIELD(vfio_iommu_type1_dma_unmap, size, size));
  STRUCT(vfio_bitmap,
         FIELD(vfio_bitmap, pgsize, pgsize)
         FIELD(vfio_bitmap, size, size)
         FIELD(vfio_bitmap, data, data));
  STRUCT(vfio_iommu_type1_dirty_bitmap,
         FIELD(vfio_iommu_type1_dirty_bitmap, argsz, argsz)
         FIELD(vfio_iommu_type1_dirty_bitmap, flags, flags));
  STRUCT(vfio_iommu_type1_dirty_bitmap_get,
         FIELD(vfio_iommu_type1_dirty_bitmap_get, iova, iova)
         FIELD(vfio_iommu_type1_dirty_bitmap_get, size, size)
         FIELD(vfio_iommu_type1_dirty_bitmap_get, bitmap_pgsize, bitmap.pgsize)
         FIELD(vfio_iommu_type1_dirty_bitmap_get, bitmap_size, bitmap.size)
         FIELD(vfio_iommu_type1_dirty_bitmap_get, bitmap_data, bitmap.data));
  STRUCT(vfio_pci_dependent_device,
         FIELD(vfio_pci_dependent_device, group_id, group_id)
         FIELD(vfio_pci_dependent_device, segment, segment)
         FIELD(vfio_pci_dependent_device, bus, bus)
         FIELD(vfio_pci_dependent_device, devfn, devfn));
  STRUCT(vfio_pci_hot_reset_info,
         FIELD(vfio_pci_hot_reset_info, argsz, argsz)
         FIELD(vfio_pci_hot_reset_info, flags, flags)
         FIELD(vfio_pci_hot_reset_info, count, count));
  STRUCT(vfio_pci_hot_reset,
         FIELD(vfio_pci_hot_reset, argsz, argsz)
         FIELD(vfio_pci_hot_reset, flags, flags)
         FIELD(vfio_pci_hot_reset, count, count));
#undef STRUCT
#undef FIELD
  return t;
}

}  // namespace

void InitVfioTable(Napi::Env env, Napi::Object exports) {
  Napi::Object vfio = Napi::Object::New(env);
  vfio.Set("ioctls", Ioctls(env));
  vfio.Set("constants", Constants(env));
  vfio.Set("structs", Structs(env));
  exports.Set("vfio", vfio);
}

}  // namespace vfio_vgpu
