// What a PCI function is, as both a simulated function and a vGPU describe it: its
// identity and its BARs.

/** The identity a PCI function shows in config space and in sysfs. */
export interface PciIdentity {
  vendor: number;
  device: number;
  subsystemVendor: number;
  subsystemDevice: number;
  /** 24-bit class code: base class << 16 | subclass << 8 | prog-if. */
  classCode: number;
  revision: number;
}

export type PciBarKind = 'memory32' | 'memory64' | 'io';

export interface PciBarSpec {
  /** 0..5; a 64-bit BAR also occupies index + 1. */
  readonly index: number;
  /** Bytes, a power of two (at least 16 for memory, 4 for I/O). */
  readonly size: number;
  readonly kind: PciBarKind;
  readonly prefetchable?: boolean;
  /** The address firmware assigned (what the function's BAR register holds). */
  readonly address: bigint;
  /**
   * Bytes at the start of the BAR whose read values can change (its registers). An
   * mmap of the BAR is kept in step with the registers only over this window; the
   * rest keeps the values read when the mapping's memory was made. Default: all.
   */
  readonly registerWindow?: number;
}

/** The width of one register access. */
export type MmioSize = 1 | 2 | 4;
