// The memory behind mmaps of an MMIO BAR. JavaScript cannot trap loads and stores to
// a mapping, so the BAR's registers are mirrored into shared memory (a memfd every
// mapping of the BAR shares): after each change the shadow holds the value a 4-byte
// read of each register would return, and a word a user changed through a mapping is
// found by comparing with what was last written there and replayed as a 4-byte
// register write. The one visible difference from hardware: a load through a mapping
// right after a store through a mapping sees the stored value, not the register's
// reaction, until the device next looks (a trapped access or its poll).
import { createSharedMemory, type SharedMemory } from '../../../device/memory.js';
import type { Mapping } from '../../types.js';
import type { PciBarSpec } from '../../../device/pci/types.js';

export interface MappedStore {
  readonly offset: number;
  readonly value: number;
}

export class BarShadow {
  private readonly memory: SharedMemory;
  /** The shadow as 32-bit words (little-endian hosts, as every VFIO host here is). */
  private readonly words: Uint32Array;
  /** What the device last wrote into the register window. */
  private readonly last: Uint32Array;
  readonly window: number;

  constructor(readonly bar: PciBarSpec, name: string, peek: (offset: number) => number) {
    this.window = bar.registerWindow ?? bar.size;
    this.memory = createSharedMemory(name, bar.size);
    try {
      this.words = new Uint32Array(this.memory.bytes.buffer, this.memory.bytes.byteOffset, bar.size / 4);
      this.last = new Uint32Array(this.window / 4);
      for (let i = 0; i < this.words.length; i++) this.words[i] = peek(4 * i) >>> 0;
      this.last.set(this.words.subarray(0, this.last.length));
    } catch (err) {
      this.memory.close();
      throw err;
    }
  }

  /** A new MAP_SHARED mapping of part of the BAR. */
  map(offset: number, length: number, prot: number): Mapping {
    return this.memory.map(offset, length, prot);
  }

  /** Words of the register window a user changed through a mapping, in address order. */
  collectStores(): MappedStore[] {
    const out: MappedStore[] = [];
    for (let i = 0; i < this.last.length; i++) {
      const v = this.words[i]!;
      if (v !== this.last[i]) out.push({ offset: 4 * i, value: v });
    }
    return out;
  }

  /** Writes the registers' current values into the window (dropping unapplied stores). */
  refresh(peek: (offset: number) => number): void {
    for (let i = 0; i < this.last.length; i++) {
      const v = peek(4 * i) >>> 0;
      this.words[i] = v;
      this.last[i] = v;
    }
  }

  /** Closes the memfd; mappings already made stay valid memory, no longer kept in step. */
  close(): void {
    this.memory.close();
  }
}
