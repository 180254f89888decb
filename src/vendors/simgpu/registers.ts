// simgpu's programming interface, shared by the device model and the guest driver:
// the BAR0 register page, the command ring's entry format, opcodes and error codes.
//
// BAR0 (4 KiB, 32-bit registers, little-endian; 1- and 2-byte accesses reach the bytes
// of a register; offsets no register uses read 0 and ignore writes):
//   0x00 ID          ro  SIMGPU_ID
//   0x04 TYPE_ID     ro  the type's id (11..18, the proposal's VGPU_ID)
//   0x08 FB_SIZE_LO  ro  framebuffer bytes (BAR1's size), low and high halves
//   0x0c FB_SIZE_HI  ro
//   0x10 HEADS       ro  display heads
//   0x14 MAX_RES     ro  maximum resolution: width << 16 | height
//   0x20 STATUS      ro  BUSY: the engine has commands to run; HALTED: stopped on an error
//   0x24 ERROR_CODE  ro  why the engine halted (SimGpuError), 0 when it did not
//   0x28 ERROR_INDEX ro  the ring index of the command that failed
//   0x2c ERROR_ERRNO ro  for DMA_FAULT: the errno of the failed pin (EINVAL 22, EPERM 1...)
//   0x30 INT_STATUS  rw1c DONE: the ring drained; ERROR: the engine halted
//   0x34 INT_ENABLE  rw  which INT_STATUS bits raise the interrupt (INTx or MSI vector 0)
//   0x40 RING_BASE_LO rw the ring's IOVA (32-byte aligned), low and high halves
//   0x44 RING_BASE_HI rw
//   0x48 RING_SIZE   rw  ring entries: a power of two, 2..4096
//   0x4c RING_HEAD   ro  the next entry the engine runs
//   0x50 RING_TAIL   rw  the entry the driver fills next; head == tail: empty
//   0x54 DOORBELL    wo  any write: run the ring up to TAIL
//   0x58 FENCE       ro  the low 32 bits of the last FENCE value written
//   0x5c COMPLETED   ro  commands completed since reset (wraps)
//   0x60 PROGRESS    ro  bytes done of the command running now
// Ring registers written while the engine is BUSY are ignored. An error halts the
// engine with the failing command consumed (HEAD is past it); acknowledging
// INT_STATUS.ERROR clears HALTED and the next doorbell runs the following commands.

export const SIMGPU_ID = 0x5347_0100;

export const SimGpuReg = {
  ID: 0x00,
  TYPE_ID: 0x04,
  FB_SIZE_LO: 0x08,
  FB_SIZE_HI: 0x0c,
  HEADS: 0x10,
  MAX_RES: 0x14,
  STATUS: 0x20,
  ERROR_CODE: 0x24,
  ERROR_INDEX: 0x28,
  ERROR_ERRNO: 0x2c,
  INT_STATUS: 0x30,
  INT_ENABLE: 0x34,
  RING_BASE_LO: 0x40,
  RING_BASE_HI: 0x44,
  RING_SIZE: 0x48,
  RING_HEAD: 0x4c,
  RING_TAIL: 0x50,
  DOORBELL: 0x54,
  FENCE: 0x58,
  COMPLETED: 0x5c,
  PROGRESS: 0x60,
} as const;

export const SimGpuStatus = { BUSY: 0x1, HALTED: 0x2 } as const;
export const SimGpuInt = { DONE: 0x1, ERROR: 0x2 } as const;

/** The register page: BAR0's size. */
export const SIMGPU_MMIO_SIZE = 0x1000;

/**
 * A ring entry, 32 bytes little-endian:
 *   +0 u32 opcode  +4 u32 length (bytes)  +8 u64 dst  +16 u64 src  +24 u64 reserved
 */
export const SIMGPU_COMMAND_SIZE = 32;
export const SIMGPU_RING_MIN = 2;
export const SIMGPU_RING_MAX = 4096;
/** The longest transfer one command may ask for. */
export const SIMGPU_MAX_TRANSFER = 64 * 1024 * 1024;

export const SimGpuOp = {
  NOP: 0,
  /** Fills [dst, dst+length) of guest memory with the 32-bit pattern in src's low half, repeated from dst. */
  FILL: 1,
  /** Copies guest memory [src, src+length) to [dst, dst+length); the ranges may not overlap. */
  COPY: 2,
  /** Copies guest memory [src, src+length) into the framebuffer at offset dst. */
  BLIT_TO_FB: 3,
  /** Writes the 64-bit src to guest memory at dst and shows its low half in FENCE. */
  FENCE: 4,
} as const;

export type SimGpuOpcode = (typeof SimGpuOp)[keyof typeof SimGpuOp];

export const SimGpuError = {
  NONE: 0,
  BAD_OPCODE: 1,
  /** Length above SIMGPU_MAX_TRANSFER, or a FENCE whose length is not 0 or 8. */
  BAD_LENGTH: 2,
  /** Pinning guest memory failed (not mapped, not writable...): ERROR_ERRNO says why. */
  DMA_FAULT: 3,
  /** BLIT_TO_FB past the end of the framebuffer. */
  FB_RANGE: 4,
  /** Ring misprogrammed: size not a power of two in range, base unaligned, tail >= size. */
  BAD_RING: 5,
  /** The user unmapped memory a running command (or the ring) had pinned. */
  DMA_UNMAPPED: 6,
  /** COPY between overlapping ranges. */
  OVERLAP: 7,
  /** A defect of the simulation itself (reported as a process warning). */
  INTERNAL: 8,
  /**
   * Bus Master Enable is clear in COMMAND: the engine does no DMA, so the command at
   * HEAD (or the one running, which stops there) fails before touching guest memory.
   */
  NO_BUS_MASTER: 9,
} as const;

export interface SimGpuCommand {
  op: number;
  length: number;
  dst: bigint;
  src: bigint;
}

export function encodeCommand(cmd: SimGpuCommand, into: Uint8Array = new Uint8Array(SIMGPU_COMMAND_SIZE)): Uint8Array {
  const dv = new DataView(into.buffer, into.byteOffset, SIMGPU_COMMAND_SIZE);
  dv.setUint32(0, cmd.op >>> 0, true);
  dv.setUint32(4, cmd.length >>> 0, true);
  dv.setBigUint64(8, BigInt.asUintN(64, cmd.dst), true);
  dv.setBigUint64(16, BigInt.asUintN(64, cmd.src), true);
  dv.setBigUint64(24, 0n, true);
  return into;
}

export function decodeCommand(bytes: Uint8Array): SimGpuCommand {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, SIMGPU_COMMAND_SIZE);
  return { op: dv.getUint32(0, true), length: dv.getUint32(4, true), dst: dv.getBigUint64(8, true), src: dv.getBigUint64(16, true) };
}
