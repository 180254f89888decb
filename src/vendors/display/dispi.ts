// The display vGPU's register interface: the bochs "dispi" (VBE display interface)
// registers, as QEMU's stdvga and Linux's bochs DRM driver use them, placed flat in a
// 4 KiB MMIO BAR the way QEMU's PCI stdvga and the kernel's mbochs sample lay it out:
//   0x000..0x3ff  the EDID blob (read-only mirror of the EDID region's blob)
//   0x500..0x515  dispi register i at 0x500 + 2 * i, 16-bit accesses only
// plus the numbers VFIO_DEVICE_QUERY_GFX_PLANE speaks (drm_fourcc.h, drm_mode.h).

/** dispi register indexes (VBE_DISPI_INDEX_*). */
export const DispiReg = {
  ID: 0x0,
  XRES: 0x1,
  YRES: 0x2,
  BPP: 0x3,
  ENABLE: 0x4,
  BANK: 0x5,
  VIRT_WIDTH: 0x6,
  VIRT_HEIGHT: 0x7,
  X_OFFSET: 0x8,
  Y_OFFSET: 0x9,
  VIDEO_MEMORY_64K: 0xa,
} as const;

/** How many dispi registers there are (VBE_DISPI_INDEX_COUNT). */
export const DISPI_REG_COUNT = 0xb;

/** What ID reads: the newest interface version (VBE_DISPI_ID5). */
export const DISPI_ID5 = 0xb0c5;
/** The family every version shares (ID & 0xfff0), as bochs-drm checks it. */
export const DISPI_ID0 = 0xb0c0;

/** ENABLE bits (VBE_DISPI_*). */
export const DispiEnable = {
  ENABLED: 0x01,
  /** While set, XRES, YRES and BPP read the maximums instead of the mode. */
  GETCAPS: 0x02,
  DAC_8BIT: 0x20,
  LFB_ENABLED: 0x40,
  /** Enabling does not clear the framebuffer. */
  NOCLEARMEM: 0x80,
} as const;

/** The MMIO BAR's layout. */
export const DisplayMmio = {
  SIZE: 0x1000,
  EDID: 0x000,
  EDID_SIZE: 0x400,
  DISPI: 0x500,
} as const;

/** Where dispi register `index` lives in the MMIO BAR. */
export function dispiOffset(index: number): number {
  return DisplayMmio.DISPI + index * 2;
}

/** BAR0 holds the framebuffer, BAR2 the registers, region 9 the EDID (mbochs' layout). */
export const FRAMEBUFFER_BAR = 0;
export const MMIO_BAR = 2;
export const EDID_REGION_INDEX = 9;

/** DRM_FORMAT_XRGB8888: fourcc 'XR24', 32-bit little-endian pixels 0x00RRGGBB. */
export const DRM_FORMAT_XRGB8888 = 0x34325258;

/** enum drm_plane_type. */
export const DrmPlaneType = { OVERLAY: 0, PRIMARY: 1, CURSOR: 2 } as const;

/** The only depth the display scans out. */
export const DISPLAY_BPP = 32;
