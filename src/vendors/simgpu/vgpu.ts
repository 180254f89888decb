// One simgpu vGPU: the device model the core turns into a VFIO PCI device. The core
// emulates config space, regions and SET_IRQS; this model gives its identity, its
// BARs (BAR0: the trapped register page; BAR1: the framebuffer, mapped straight to the
// vGPU's slice of the board's memory) and the engine behind the registers.
//
// PCI identity: vendor 0x1234 (not a registered vendor: the id QEMU's bochs display and
// edu use, so no real driver claims the device), device 0x5347 ("SG"), class 0x030000
// (VGA compatible controller, as the M60 and GRID vGPUs show; like them it has no legacy
// VGA region), subsystem 0x1234:<type id 11..18>, revision 1. INTA, one MSI vector,
// PCI Express and power-management capabilities.
import type {
  MemoryBacking, RegisterHandler, VgpuBar, VgpuMigration, VgpuModel, VgpuPciSpec, VgpuSession,
} from '../../vgpu/vendor.js';
import { SimGpuEngine } from './engine.js';
import { SIMGPU_ID, SIMGPU_MMIO_SIZE, SimGpuReg } from './registers.js';
import type { SimGpuType } from './types.js';

export const SIMGPU_VENDOR_ID = 0x1234;
export const SIMGPU_DEVICE_ID = 0x5347;
export const SIMGPU_CLASS = 0x030000;

export interface SimGpuVgpuOptions {
  readonly uuid: string;
  readonly type: SimGpuType;
  /** The vGPU's slice of the board's framebuffer memory... */
  readonly framebuffer: MemoryBacking;
  /** ...and where that slice lies in the board's framebuffer. */
  readonly boardOffset: number;
  readonly pageSize: number;
  readonly bytesPerStep: number;
}

export class SimGpuVgpu implements VgpuModel {
  readonly uuid: string;
  readonly type: SimGpuType;
  readonly pci: VgpuPciSpec;
  readonly bars: readonly VgpuBar[];
  readonly framebuffer: MemoryBacking;
  readonly boardOffset: number;
  private session: VgpuSession | undefined;
  /** Exposed for diagnostics (pins held); the guest reaches it only through BAR0. */
  readonly engine: SimGpuEngine;

  constructor(options: SimGpuVgpuOptions) {
    const { type, framebuffer } = options;
    this.uuid = options.uuid;
    this.type = type;
    this.framebuffer = framebuffer;
    this.boardOffset = options.boardOffset;
    this.pci = {
      identity: {
        vendor: SIMGPU_VENDOR_ID,
        device: SIMGPU_DEVICE_ID,
        subsystemVendor: SIMGPU_VENDOR_ID,
        subsystemDevice: type.profile.id,
        classCode: SIMGPU_CLASS,
        revision: 0x01,
      },
      interruptPin: 1,
      msiVectors: 1,
      express: true,
      powerManagement: true,
    };
    const registers: RegisterHandler = {
      read: (offset, size) => this.readRegister(offset, size),
      write: (offset, size, value) => this.writeRegister(offset, size, value),
    };
    this.bars = [
      { index: 0, size: SIMGPU_MMIO_SIZE, kind: 'memory32', areas: [{ kind: 'trapped', offset: 0, size: SIMGPU_MMIO_SIZE, handler: registers }] },
      {
        index: 1, size: type.profile.framebuffer, kind: 'memory64', prefetchable: true,
        areas: [{ kind: 'mapped', offset: 0, size: type.profile.framebuffer, memory: framebuffer }],
      },
    ];
    this.engine = new SimGpuEngine({
      dma: () => this.session?.dma,
      raise: () => this.session?.raise(0),
      busMaster: () => this.session?.busMaster ?? false,
      framebuffer,
      pageSize: options.pageSize,
      bytesPerStep: options.bytesPerStep,
    });
  }

  /**
   * Live migration: the engine's registers, ring (with the command in flight, whose pins
   * are taken again on the destination) and interrupt status as sections; the core
   * streams the framebuffer, only what was written.
   */
  get migration(): VgpuMigration {
    const engine = this.engine;
    return {
      version: 1,
      memory: [this.framebuffer],
      quiesce: () => engine.pause(),
      resume: () => engine.unpause(),
      save: () => {
        const { registers, ring, interrupts } = engine.save();
        return [{ name: 'registers', data: registers }, { name: 'ring', data: ring }, { name: 'interrupts', data: interrupts }];
      },
      load: (sections) => {
        for (const name of sections.keys()) if (!['registers', 'ring', 'interrupts'].includes(name)) throw new Error(`unknown section ${name}`);
        engine.prepareLoad({ registers: sections.get('registers'), ring: sections.get('ring'), interrupts: sections.get('interrupts') })();
      },
    };
  }

  get isOpen(): boolean {
    return this.session !== undefined;
  }

  open(session: VgpuSession): void {
    this.engine.reset();
    this.session = session;
  }

  release(): void {
    this.engine.stop();
    this.session = undefined;
  }

  reset(): void {
    this.engine.reset();
  }

  dmaUnmap(iova: bigint, length: bigint): void {
    this.engine.dmaUnmap(iova, length);
  }

  private readRegister(offset: number, size: 1 | 2 | 4): number {
    const value = this.register(offset & ~3);
    if (size === 4) return value;
    return (value >>> ((offset & 3) * 8)) & (size === 1 ? 0xff : 0xffff);
  }

  private writeRegister(offset: number, size: 1 | 2 | 4, value: number): void {
    const aligned = offset & ~3;
    if (!SimGpuEngine.owns(aligned)) return; // identity registers are read-only
    const shift = (offset & 3) * 8;
    const mask = size === 4 ? 0xffff_ffff : (((size === 1 ? 0xff : 0xffff) << shift) >>> 0);
    this.engine.write(aligned, ((value << shift) >>> 0) & mask, mask);
  }

  private register(offset: number): number {
    const p = this.type.profile;
    switch (offset) {
      case SimGpuReg.ID: return SIMGPU_ID;
      case SimGpuReg.TYPE_ID: return p.id;
      case SimGpuReg.FB_SIZE_LO: return p.framebuffer % 2 ** 32;
      case SimGpuReg.FB_SIZE_HI: return Math.floor(p.framebuffer / 2 ** 32);
      case SimGpuReg.HEADS: return p.heads;
      case SimGpuReg.MAX_RES: return ((p.maxWidth << 16) | p.maxHeight) >>> 0;
      default: return SimGpuEngine.owns(offset) ? this.engine.read(offset) : 0;
    }
  }
}
