// A guest-side driver for the display vGPU, over the VFIO client API only (what a guest's
// bochs DRM driver does, through what QEMU would pass it): it takes any device handle
// (the vGPU opened by UUID through VFIO, or by its vfio-user socket), turns on memory decoding, checks the dispi ID, sets a mode through the dispi registers
// in the MMIO BAR (16-bit accesses), and draws through an mmap of the framebuffer BAR.
import { sysError } from '../../addon/errors.js';
import type { SysLayer } from '../../sys/types.js';
import { openDevice, pciCommand, type Device, type DeviceHandle, type Region, type RegionMapping } from '../../vfio/index.js';
import type { Canvas } from './canvas.js';
import { DISPI_ID0, DISPLAY_BPP, DispiEnable, DispiReg, dispiOffset, FRAMEBUFFER_BAR, MMIO_BAR } from './dispi.js';
import { drawTestPattern } from './pattern.js';

export interface DisplayMode {
  width: number;
  height: number;
  /** Bytes per row. */
  stride: number;
}

export class DisplayGuest {
  readonly mmio: Region;
  readonly framebuffer: Region;
  /** The dispi interface version (0xb0c0..0xb0c5). */
  readonly id: number;
  private current: { mode: DisplayMode; mapping: RegionMapping; canvas: Canvas } | undefined;
  private closed = false;

  private constructor(readonly handle: DeviceHandle) {
    const { device } = handle;
    device.config.enable(pciCommand.MEMORY);
    this.mmio = device.bar(MMIO_BAR);
    this.framebuffer = device.bar(FRAMEBUFFER_BAR);
    this.id = this.read(DispiReg.ID);
    if ((this.id & 0xfff0) !== DISPI_ID0) throw sysError('ENODEV', 'probe', undefined, `${device.name} is not a bochs dispi display (id 0x${this.id.toString(16)})`);
  }

  /**
   * Opens the vGPU `name` and probes it: a UUID through VFIO on `sys` (its own group and a
   * new container), or the path of its vfio-user socket.
   */
  static open(sys: SysLayer, name: string): DisplayGuest {
    return DisplayGuest.attach(openDevice(sys, name));
  }

  /** Probes the display behind an open handle, which the guest then owns (closed with it, or now if this fails). */
  static attach(handle: DeviceHandle): DisplayGuest {
    try {
      return new DisplayGuest(handle);
    } catch (err) {
      handle.close();
      throw err;
    }
  }

  get device(): Device {
    return this.handle.device;
  }

  /** Video memory in bytes, as VIDEO_MEMORY_64K reports it. */
  get videoMemory(): number {
    return this.read(DispiReg.VIDEO_MEMORY_64K) * 0x10000;
  }

  /** The largest mode, read with ENABLE's GETCAPS bit as bochs' BIOS does. */
  maxResolution(): { width: number; height: number; bpp: number } {
    const saved = this.read(DispiReg.ENABLE);
    this.write(DispiReg.ENABLE, saved | DispiEnable.GETCAPS);
    const caps = { width: this.read(DispiReg.XRES), height: this.read(DispiReg.YRES), bpp: this.read(DispiReg.BPP) };
    this.write(DispiReg.ENABLE, saved);
    return caps;
  }

  /** Programs width x height x 32 (display off while the registers change) and maps its pixels. */
  setMode(width: number, height: number): DisplayMode {
    this.requireOpen();
    this.unmapCurrent();
    this.write(DispiReg.ENABLE, 0);
    this.write(DispiReg.XRES, width);
    this.write(DispiReg.YRES, height);
    this.write(DispiReg.BPP, DISPLAY_BPP);
    this.write(DispiReg.VIRT_WIDTH, width);
    this.write(DispiReg.X_OFFSET, 0);
    this.write(DispiReg.Y_OFFSET, 0);
    this.write(DispiReg.ENABLE, DispiEnable.ENABLED | DispiEnable.LFB_ENABLED);
    const mode = { width, height, stride: width * 4 };
    const page = this.device.sys.pageSize;
    const mapping = this.framebuffer.mmap({ offset: 0, size: Math.ceil((mode.stride * height) / page) * page });
    const canvas: Canvas = { width, height, pitch: width, pixels: new Uint32Array(mapping.buffer, 0, width * height) };
    this.current = { mode, mapping, canvas };
    return mode;
  }

  /** Turns the display off (the plane reads as disabled). */
  disable(): void {
    this.requireOpen();
    this.write(DispiReg.ENABLE, 0);
    this.unmapCurrent();
  }

  /** The current mode's pixels, through the framebuffer mmap. */
  get canvas(): Canvas {
    if (!this.current) throw sysError('EINVAL', 'draw', undefined, 'no mode is set');
    return this.current.canvas;
  }

  get mode(): DisplayMode | undefined {
    return this.current?.mode;
  }

  /** Colour bars, a grey ramp and the caption with the mode under it. */
  drawTestPattern(caption?: string): void {
    drawTestPattern(this.canvas, caption);
  }

  /** A dispi register (16-bit access to the MMIO BAR). */
  read(index: number): number {
    return this.mmio.read16(dispiOffset(index));
  }

  write(index: number, value: number): void {
    this.mmio.write16(dispiOffset(index), value);
  }

  /** Unmaps the framebuffer and closes the handle (device, group and container, or the connection). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.current = undefined;
    this.handle.close();
  }

  private unmapCurrent(): void {
    this.current?.mapping.unmap();
    this.current = undefined;
  }

  private requireOpen(): void {
    if (this.closed) throw sysError('EBADF', 'display', undefined, 'the display guest is closed');
  }
}
