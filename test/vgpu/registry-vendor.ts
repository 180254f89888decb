// A tiny vendor driver for the registry and mdev-bus tests: "tgpu", one parent per
// board with a framebuffer pool of `units` GiB. Its types are the proposal's: "1Q",
// "2Q", "4Q", "8Q" take that many GiB, and, like the M60 of the 2016 example, a board
// runs one type at a time, so creating one type narrows the others to 0. Every vendor
// callback can be made to fail, and the board counts what was asked of it.
import { sysError, type ErrnoCode } from '../../src/addon/errors.js';
import type { DeviceBackend } from '../../src/device/backend.js';
import type { VendorDriver, VgpuModel, VgpuParent, VgpuSession, VgpuType } from '../../src/vgpu/vendor.js';
import type { Vgpu } from '../../src/vgpu/registry.js';

export const DRIVER: VendorDriver = { name: 'tgpu' };

export const TYPES: readonly (VgpuType & { gib: number })[] = [1, 2, 4, 8].map((gib) => ({
  name: `${gib}Q`,
  displayName: `TGPU-${gib}Q`,
  ...(gib === 8 ? {} : { description: `${gib} GiB framebuffer, 2 heads` }),
  attributes: { framebuffer: `${gib}G`, heads: '2', max_resolution: '4096x2160' },
  gib,
}));

/** A failure to inject: an errno (thrown as a SysError) or any other thrown value. */
export type Failure = ErrnoCode | 'throw';

export interface TestModel extends VgpuModel {
  readonly uuid: string;
  readonly typeName: string;
  opens: number;
  releases: number;
  session: VgpuSession | undefined;
  /** BAR0 registers written (by offset). */
  readonly registers: Map<number, number>;
}

export class TestBoard implements VgpuParent {
  readonly types = TYPES;
  readonly live = new Map<string, TestModel>();
  creates = 0;
  removes = 0;
  /** Set to make the next calls fail. */
  failCreate: Failure | undefined;
  failRemove: Failure | undefined;
  failAvailable: Failure | undefined;
  failOpen: Failure | undefined;
  failRegister: Failure | undefined;
  /** Called inside createVgpu (to call back into the registry). */
  duringCreate: ((uuid: string) => void) | undefined;

  constructor(readonly name: string, readonly units = 8) {}

  get usedUnits(): number {
    let used = 0;
    for (const m of this.live.values()) used += gibOf(m.typeName);
    return used;
  }

  availableInstances(type: VgpuType): number {
    maybeFail(this.failAvailable, 'availableInstances');
    const running = this.live.values().next().value?.typeName;
    if (running !== undefined && running !== type.name) return 0;
    return Math.floor((this.units - this.usedUnits) / gibOf(type.name));
  }

  createVgpu(type: VgpuType, uuid: string): VgpuModel {
    this.creates++;
    this.duringCreate?.(uuid);
    maybeFail(this.failCreate, 'createVgpu');
    const board = this;
    const model: TestModel = {
      uuid,
      typeName: type.name,
      opens: 0,
      releases: 0,
      session: undefined,
      pci: {
        identity: { vendor: 0x1de5, device: 0x0001, subsystemVendor: 0x1de5, subsystemDevice: gibOf(type.name), classCode: 0x030000, revision: 1 },
        interruptPin: 1,
        msiVectors: 1,
        express: false,
        powerManagement: false,
      },
      // BAR0: one page of registers; reads give 0xcafe0000 | offset until written.
      bars: [{
        index: 0, size: 0x1000, kind: 'memory32', areas: [{
          kind: 'trapped', offset: 0, size: 0x1000, handler: {
            read(offset, size) {
              maybeFail(board.failRegister, 'register read');
              const value = model.registers.get(offset) ?? (0xcafe0000 | offset) >>> 0;
              return size === 4 ? value : value & (size === 2 ? 0xffff : 0xff);
            },
            write(offset, _size, value) {
              maybeFail(board.failRegister, 'register write');
              model.registers.set(offset, value);
            },
          },
        }],
      }],
      registers: new Map(),
      open(session) {
        maybeFail(board.failOpen, 'open');
        model.opens++;
        model.session = session;
      },
      release() {
        model.releases++;
        model.session = undefined;
      },
      reset() {},
      dmaUnmap() {},
    };
    this.live.set(uuid, model);
    return model;
  }

  removeVgpu(vgpu: VgpuModel): void {
    this.removes++;
    const model = vgpu as TestModel;
    // Frees first: a failing removeVgpu must not leak its capacity in these tests.
    this.live.delete(model.uuid);
    maybeFail(this.failRemove, 'removeVgpu');
  }
}

function gibOf(typeName: string): number {
  return TYPES.find((t) => t.name === typeName)!.gib;
}

function maybeFail(failure: Failure | undefined, what: string): void {
  if (failure === undefined) return;
  if (failure === 'throw') throw new Error(`tgpu: ${what} broke`);
  throw sysError(failure, 'tgpu', undefined, what);
}

export const UUID_A = 'c0b26072-dd1b-4340-84fe-bf338c510818';
export const UUID_B = '7f1a4bf2-3c7e-4a55-9b2d-0e4a1c1f6d01';
export const UUID_C = '0a0b0c0d-1111-4222-8333-444455556666';

/**
 * A stand-in for the core's VgpuDevice where a test needs only open and close: it
 * reports them to the vGPU as the real device does and answers nothing else.
 */
export function fakeVgpuDevice(vgpu: Vgpu): DeviceBackend & { readonly vgpu: Vgpu } {
  return {
    name: vgpu.uuid,
    vgpu,
    open(ctx) {
      vgpu.opened();
      try {
        vgpu.model.open({ dma: ctx.dma, raise: () => {}, busMaster: false });
      } catch (err) {
        vgpu.released();
        throw err;
      }
    },
    close() {
      try {
        vgpu.model.release();
      } finally {
        vgpu.released();
      }
    },
    ioctl() { throw sysError('ENOTTY', 'ioctl'); },
    read() { throw sysError('EINVAL', 'pread'); },
    write() { throw sysError('EINVAL', 'pwrite'); },
    mmap() { throw sysError('EINVAL', 'mmap'); },
  };
}
