// display: a sample vendor driver for a display vGPU you can look at, modelled on the
// kernel's mdpy and mbochs samples (bochs dispi mode registers, a mappable framebuffer,
// an EDID region, VFIO_DEVICE_QUERY_GFX_PLANE with region planes).
export * from './dispi.js';
export { buildEdid, EDID_BLOCK_SIZE, EDID_PRODUCT_NAME, preferredMode } from './edid.js';
export { EDID_BLOB_OFFSET, EDID_MAX_SIZE, EDID_REGION_SIZE, EdidReg } from './edid-region.js';
export { DisplayParent } from './parent.js';
export type { DisplayParentOptions } from './parent.js';
export { DisplayVgpu, DISPLAY_CLASS, DISPLAY_DEVICE_ID, DISPLAY_VENDOR_ID } from './vgpu.js';
export { DEFAULT_VIDEO_MEMORY, DISPLAY_PROFILES, displayType } from './types.js';
export type { DisplayProfile, DisplayType } from './types.js';
export { GFX_PLANE_MINSZ } from './plane.js';
export type { ScanoutMode } from './plane.js';
export { displayDriver } from './driver.js';
export { DisplayGuest } from './guest.js';
export type { DisplayMode } from './guest.js';
export { capturePlane, dispiPlane, encodePng, xrgbToRgba, offersRegionPlanes, queryPrimaryPlane, screenshotPng } from './screenshot.js';
export type { GfxPlane, RgbaImage } from './screenshot.js';
export { DISPLAY_DEMO_UUID, runDisplayDemo } from './demo.js';
export type { DisplayDemoOptions } from './demo.js';
export { COLOUR_BARS, drawTestPattern } from './pattern.js';
export { createCanvas, drawText, fillRect, pixelAt } from './canvas.js';
export type { Canvas } from './canvas.js';
