// The display vendor driver's identity.
import type { VendorDriver } from '../../vgpu/vendor.js';

/** The driver: its name prefixes its type ids ("display-vga"). */
export const displayDriver: VendorDriver = { name: 'display' };
