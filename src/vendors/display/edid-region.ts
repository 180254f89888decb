// The display vGPU's EDID region (VFIO_REGION_TYPE_GFX / VFIO_REGION_SUBTYPE_GFX_EDID),
// with the semantics of the kernel's mbochs sample: one page, struct
// vfio_region_gfx_edid at its start (32-bit aligned accesses only; edid_size and
// link_state writable, the rest read-only) and the blob from the middle of the page
// (edid_offset), up to edid_max_size bytes. A VMM updates it as the uapi says: link
// down, write the blob, set edid_size, link up. Unlike mbochs, whose monitor is blank
// until the VMM writes one, the vGPU starts with a monitor plugged in: our EDID for the
// type's largest mode, link up.
import { regionTypes as T } from '../../uapi/constants.js';
import type { RegisterHandler, VgpuRegion } from '../../vgpu/vendor.js';

export const EDID_REGION_SIZE = 4096;
/** edid_offset: where the blob starts in the region. */
export const EDID_BLOB_OFFSET = EDID_REGION_SIZE / 2;
/** edid_max_size. */
export const EDID_MAX_SIZE = 0x400;

/** Byte offsets of struct vfio_region_gfx_edid's fields. */
export const EdidReg = {
  EDID_OFFSET: 0,
  EDID_MAX_SIZE: 4,
  EDID_SIZE: 8,
  MAX_XRES: 12,
  MAX_YRES: 16,
  LINK_STATE: 20,
} as const;
const REGS_SIZE = 24;

export class EdidState {
  private edidSize: number;
  private linkState: number;
  readonly blob = new Uint8Array(EDID_MAX_SIZE);

  constructor(private readonly maxXres: number, private readonly maxYres: number, initial: Uint8Array) {
    this.blob.set(initial.subarray(0, EDID_MAX_SIZE));
    this.edidSize = Math.min(initial.byteLength, EDID_MAX_SIZE);
    this.linkState = T.VFIO_DEVICE_GFX_LINK_STATE_UP;
  }

  /** The EDID region's state for a migration stream: edid_size, link_state, then the blob. */
  save(): Uint8Array {
    const out = new Uint8Array(8 + this.blob.byteLength);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, this.edidSize, true);
    dv.setUint32(4, this.linkState, true);
    out.set(this.blob, 8);
    return out;
  }

  /** Checks a saved state (throws) and returns its load. */
  prepareLoad(bytes: Uint8Array): () => void {
    if (bytes.byteLength !== 8 + this.blob.byteLength) throw new Error(`EDID state of ${bytes.byteLength} bytes, expected ${8 + this.blob.byteLength}`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
    const size = dv.getUint32(0, true);
    const link = dv.getUint32(4, true);
    if (size > this.blob.byteLength) throw new Error(`EDID size ${size}`);
    return () => {
      this.edidSize = size;
      this.linkState = link;
      this.blob.set(bytes.subarray(8));
    };
  }

  get linkUp(): boolean {
    return this.linkState === T.VFIO_DEVICE_GFX_LINK_STATE_UP;
  }

  /** The region as the core serves it. */
  region(): VgpuRegion {
    const handler: RegisterHandler = {
      read: (offset, size) => (offset < EDID_BLOB_OFFSET ? this.readReg(offset, size) : this.readBlob(offset - EDID_BLOB_OFFSET, size)),
      write: (offset, size, value) => {
        if (offset < EDID_BLOB_OFFSET) this.writeReg(offset, size, value);
        else this.writeBlob(offset - EDID_BLOB_OFFSET, size, value);
      },
    };
    return {
      type: T.VFIO_REGION_TYPE_GFX, subtype: T.VFIO_REGION_SUBTYPE_GFX_EDID,
      size: EDID_REGION_SIZE, readable: true, writable: true, handler,
    };
  }

  /** The blob as the MMIO BAR mirrors it: zeros while the link is down or past edid_size. */
  mirrorRead(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      const byte = this.linkUp && at < this.edidSize && at < EDID_MAX_SIZE ? this.blob[at]! : 0;
      v = (v << 8) | byte;
    }
    return v >>> 0;
  }

  // Register accesses other than aligned 32-bit ones are ignored (read 0), as mbochs does.
  private readReg(offset: number, size: number): number {
    if (size !== 4 || offset % 4 !== 0 || offset + 4 > REGS_SIZE) return 0;
    switch (offset) {
      case EdidReg.EDID_OFFSET: return EDID_BLOB_OFFSET;
      case EdidReg.EDID_MAX_SIZE: return EDID_MAX_SIZE;
      case EdidReg.EDID_SIZE: return this.edidSize;
      case EdidReg.MAX_XRES: return this.maxXres;
      case EdidReg.MAX_YRES: return this.maxYres;
      default: return this.linkState;
    }
  }

  private writeReg(offset: number, size: number, value: number): void {
    if (size !== 4) return;
    if (offset === EdidReg.EDID_SIZE) this.edidSize = value >>> 0;
    else if (offset === EdidReg.LINK_STATE) this.linkState = value >>> 0;
  }

  private readBlob(offset: number, size: number): number {
    if (offset + size > EDID_MAX_SIZE) return 0;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.blob[offset + i]!;
    return v >>> 0;
  }

  private writeBlob(offset: number, size: number, value: number): void {
    if (offset + size > EDID_MAX_SIZE) return;
    for (let i = 0; i < size; i++) this.blob[offset + i] = (value >>> (8 * i)) & 0xff;
  }
}
