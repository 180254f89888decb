// The smallest complete vendor driver: a "counter" vGPU. Its parent offers one type
// with room for four; each vGPU has one BAR of registers, trapped, and one MSI:
//   0x00 COUNT  read: the count; write: adds the value written
//   0x04 ALARM  read/write: when an add makes COUNT reach ALARM (non-zero), MSI 0 fires
// README.md ("Writing a vendor driver") shows this file; test/vendors/example.test.ts runs it.
import type { VendorDriver, VgpuMigration, VgpuModel, VgpuParent, VgpuSession, VgpuType } from '../../vgpu/vendor.js';

export const counterDriver: VendorDriver = { name: 'counter' };

const COUNTER_TYPE: VgpuType = {
  name: 'basic', // the type id is "counter-basic"
  displayName: 'Counter',
  description: 'a 32-bit counter with an alarm interrupt',
  attributes: { registers: '2' },
};

export class CounterParent implements VgpuParent {
  readonly types = [COUNTER_TYPE];
  private live = 0;

  constructor(readonly name = 'counter0', private readonly capacity = 4) {}

  availableInstances(): number {
    return this.capacity - this.live;
  }

  createVgpu(): VgpuModel {
    this.live++;
    return new CounterVgpu();
  }

  removeVgpu(): void {
    this.live--;
  }
}

class CounterVgpu implements VgpuModel {
  readonly pci = {
    identity: { vendor: 0x1234, device: 0x0c01, subsystemVendor: 0x1234, subsystemDevice: 0x0001, classCode: 0xff0000, revision: 1 },
    interruptPin: 0,
    msiVectors: 1,
    express: false,
    powerManagement: false,
  };
  readonly bars = [{
    index: 0, size: 4096, kind: 'memory32' as const,
    areas: [{
      kind: 'trapped' as const, offset: 0, size: 4096,
      handler: {
        // 32-bit registers: narrower accesses read 0 and are ignored when written.
        read: (offset: number, size: 1 | 2 | 4) => (size !== 4 ? 0 : offset === 0 ? this.count : offset === 4 ? this.alarm : 0),
        write: (offset: number, size: 1 | 2 | 4, value: number) => {
          if (size !== 4) return;
          if (offset === 0) this.add(value);
          if (offset === 4) this.alarm = value >>> 0;
        },
      },
    }],
  }];
  private count = 0;
  private alarm = 0;
  private session: VgpuSession | undefined;

  // Live migration: the core runs the state machine and the stream; the counter has no
  // work of its own to stop and saves its two registers.
  readonly migration: VgpuMigration = {
    version: 1,
    memory: [],
    quiesce: () => {},
    resume: () => {},
    save: () => [{ name: 'registers', data: new Uint8Array(new Uint32Array([this.count, this.alarm]).buffer) }],
    load: (sections) => {
      const regs = sections.get('registers');
      if (regs?.byteLength !== 8) throw new Error('the registers section must be 8 bytes');
      [this.count, this.alarm] = new Uint32Array(regs.slice().buffer);
    },
  };

  open(session: VgpuSession): void {
    this.session = session;
    this.reset();
  }

  release(): void {
    this.session = undefined;
  }

  reset(): void {
    this.count = 0;
    this.alarm = 0;
  }

  dmaUnmap(): void {
    // This device never pins guest memory.
  }

  private add(value: number): void {
    const before = this.count;
    this.count = (this.count + value) >>> 0;
    if (this.alarm !== 0 && before < this.alarm && this.count >= this.alarm) this.session?.raise(0);
  }
}
