// One display vGPU: the kernel's mbochs sample as a VgpuModel. BAR0 is the framebuffer
// (memory the user maps; prefetchable), BAR2 the 4 KiB MMIO BAR with the EDID mirror and
// the dispi mode registers (dispi.ts), region 9 the EDID region (edid-region.ts), and
// VFIO_DEVICE_QUERY_GFX_PLANE reports the scanout as a region plane (plane.ts). No
// interrupts and no DMA. Register state survives close and open (the display keeps
// showing what it showed, as mbochs'); VFIO_DEVICE_RESET and FLR clear it.
import { sysError } from '../../addon/errors.js';
import type { SharedMemory } from '../../device/memory.js';
import { ioctls } from '../../uapi/ioctls.js';
import type { RegisterHandler, VgpuBar, VgpuMigration, VgpuModel, VgpuPciSpec, VgpuRegion } from '../../vgpu/vendor.js';
import {
  DISPI_ID5, DISPI_REG_COUNT, DISPLAY_BPP, DispiEnable, DispiReg, DisplayMmio, FRAMEBUFFER_BAR, MMIO_BAR,
} from './dispi.js';
import { buildEdid } from './edid.js';
import { EdidState } from './edid-region.js';
import { queryGfxPlane, scanoutMode, type ScanoutMode } from './plane.js';
import { xrgbToRgba, type RgbaImage } from './screenshot.js';
import type { DisplayType } from './types.js';

/** mbochs' identity: QEMU's stdvga ids, class "other display controller". */
export const DISPLAY_VENDOR_ID = 0x1234;
export const DISPLAY_DEVICE_ID = 0x1111;
export const DISPLAY_CLASS = 0x038000;

const PCI: VgpuPciSpec = {
  identity: { vendor: DISPLAY_VENDOR_ID, device: DISPLAY_DEVICE_ID, subsystemVendor: 0x1af4, subsystemDevice: 0x1100, classCode: DISPLAY_CLASS, revision: 1 },
  interruptPin: 0,
  msiVectors: 0,
  express: false,
  powerManagement: false,
};

/** Zeros for clearing the framebuffer, a chunk at a time. */
const CLEAR_CHUNK = 1 << 20;

export class DisplayVgpu implements VgpuModel {
  readonly pci = PCI;
  readonly bars: readonly VgpuBar[];
  readonly regions: readonly VgpuRegion[];
  readonly edid: EdidState;
  private readonly vbe = new Uint16Array(DISPI_REG_COUNT);

  constructor(readonly uuid: string, readonly type: DisplayType, readonly framebuffer: SharedMemory, private readonly pageSize: number) {
    const { profile } = type;
    this.edid = new EdidState(profile.maxWidth, profile.maxHeight, buildEdid({ width: profile.maxWidth, height: profile.maxHeight }));
    const mmio: RegisterHandler = { read: (o, s) => this.mmioRead(o, s), write: (o, s, v) => this.mmioWrite(o, s, v) };
    this.bars = [
      {
        index: FRAMEBUFFER_BAR, size: profile.framebuffer, kind: 'memory32', prefetchable: true,
        areas: [{ kind: 'mapped', offset: 0, size: profile.framebuffer, memory: framebuffer }],
      },
      { index: MMIO_BAR, size: DisplayMmio.SIZE, kind: 'memory32', areas: [{ kind: 'trapped', offset: 0, size: DisplayMmio.SIZE, handler: mmio }] },
    ];
    this.regions = [this.edid.region()];
    this.migration = this.migrationOps();
    this.reset();
  }

  /**
   * Live migration: the mode registers and the EDID region's state as sections; the core
   * streams the framebuffer (only what was written). Nothing runs on its own: quiesce
   * and resume have nothing to stop.
   */
  readonly migration: VgpuMigration;

  private migrationOps(): VgpuMigration {
    return {
      version: 1,
      memory: [this.framebuffer],
      quiesce: () => {},
      resume: () => {},
      save: () => [
        { name: 'dispi', data: new Uint8Array(this.vbe.buffer.slice(0)) },
        { name: 'edid', data: this.edid.save() },
      ],
      load: (sections) => {
        const dispi = sections.get('dispi');
        const edid = sections.get('edid');
        if (!dispi || dispi.byteLength !== this.vbe.byteLength) throw new Error(`the dispi section must be ${this.vbe.byteLength} bytes`);
        if (!edid) throw new Error('no edid section');
        const loadEdid = this.edid.prepareLoad(edid);
        const regs = new Uint16Array(DISPI_REG_COUNT);
        new Uint8Array(regs.buffer).set(dispi);
        if (regs[DispiReg.ID] !== this.vbe[DispiReg.ID] || regs[DispiReg.VIDEO_MEMORY_64K] !== this.vbe[DispiReg.VIDEO_MEMORY_64K]) {
          throw new Error('the dispi identity registers differ from this display\'s');
        }
        loadEdid();
        this.vbe.set(regs);
      },
    };
  }

  /** The mode the display scans out now, if any. */
  get mode(): ScanoutMode | undefined {
    return scanoutMode(this.vbe, { framebufferSize: this.type.profile.framebuffer, pageSize: this.pageSize });
  }

  /**
   * What the display scans out now, read by the vGPU's owner straight from its video
   * memory (as a VMM's own display console shows a device it holds), or undefined while
   * nothing is displayable. Unlike a capture through VFIO this works while a user holds
   * the device open: the daemon uses it for a vGPU a VMM has attached over vfio-user.
   */
  scanout(): RgbaImage | undefined {
    const m = this.mode;
    if (!m) return undefined;
    const bytes = new Uint8Array(m.stride * m.height);
    this.framebuffer.read(0, bytes);
    return xrgbToRgba(bytes, m.width, m.height, m.stride);
  }

  open(): void {
    // Nothing to start: the display has no engine and no interrupts.
  }

  release(): void {
    // Nothing to stop; the mode and the framebuffer stay as the user left them.
  }

  /** mbochs_reset: the registers to their power-on values (the framebuffer is kept). */
  reset(): void {
    this.vbe.fill(0);
    this.vbe[DispiReg.ID] = DISPI_ID5;
    this.vbe[DispiReg.VIDEO_MEMORY_64K] = this.type.profile.framebuffer / 0x10000;
  }

  dmaUnmap(): void {
    // The display never pins guest memory.
  }

  ioctl(request: number, arg: number | Uint8Array | undefined): number {
    if (request === ioctls.VFIO_DEVICE_QUERY_GFX_PLANE) return queryGfxPlane(arg, () => this.mode);
    throw sysError('ENOTTY', 'ioctl', undefined, `device ioctl 0x${request.toString(16)}`);
  }

  // ---- the MMIO BAR ----

  private mmioRead(offset: number, size: 1 | 2 | 4): number {
    if (offset < DisplayMmio.EDID + DisplayMmio.EDID_SIZE) return this.edid.mirrorRead(offset, size);
    const index = this.dispiIndex(offset, size);
    if (index === undefined) return 0;
    const { profile } = this.type;
    if (this.vbe[DispiReg.ENABLE]! & DispiEnable.GETCAPS) {
      if (index === DispiReg.XRES) return profile.maxWidth;
      if (index === DispiReg.YRES) return profile.maxHeight;
      if (index === DispiReg.BPP) return DISPLAY_BPP;
    }
    return this.vbe[index]!;
  }

  private mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const index = this.dispiIndex(offset, size);
    if (index === undefined || index === DispiReg.ID || index === DispiReg.VIDEO_MEMORY_64K) return; // read-only
    const v = value & 0xffff;
    if (index === DispiReg.ENABLE) {
      const wasOn = (this.vbe[DispiReg.ENABLE]! & DispiEnable.ENABLED) !== 0;
      this.vbe[index] = v;
      // As QEMU's VBE: switching on clears the new mode's picture unless told not to.
      if (!wasOn && v & DispiEnable.ENABLED && !(v & DispiEnable.NOCLEARMEM)) this.clearScanout();
      return;
    }
    this.vbe[index] = v;
  }

  /** The dispi register a 16-bit access at `offset` names; anything else is ignored (mbochs). */
  private dispiIndex(offset: number, size: number): number | undefined {
    if (size !== 2 || offset < DisplayMmio.DISPI || offset >= DisplayMmio.DISPI + DISPI_REG_COUNT * 2) return undefined;
    return (offset - DisplayMmio.DISPI) >> 1;
  }

  private clearScanout(): void {
    const m = this.mode;
    if (!m) return;
    const zeros = new Uint8Array(Math.min(CLEAR_CHUNK, m.size));
    for (let at = 0; at < m.size; at += zeros.byteLength) {
      this.framebuffer.write(at, zeros.subarray(0, Math.min(zeros.byteLength, m.size - at)));
    }
  }
}
