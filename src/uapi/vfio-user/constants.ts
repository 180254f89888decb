// Numbers of the vfio-user protocol (QEMU docs/interop/vfio-user.rst), checked against
// QEMU 10.1's client (hw/vfio-user/protocol.h) and libvfio-user (include/vfio-user.h).
// Where the client we must interoperate with (QEMU 10.1+) departs from the spec, the
// comment says so.

/** Every message starts with this many header bytes; the header's size counts them. */
export const VFIO_USER_HEADER_SIZE = 16;

/**
 * Protocol version. The spec defines no feature by minor version yet. QEMU 10.1 proposes
 * 0.0 and refuses a reply whose minor is above 0; libvfio-user speaks 0.1. A server
 * replies with the proposed major and min(proposed minor, its own): see negotiatedMinor.
 */
export const VFIO_USER_MAJOR = 0;
export const VFIO_USER_MINOR = 1;
export const QEMU_VFIO_USER_MINOR = 0;

/** The minor a server replies with: never above what the client proposed. */
export function negotiatedMinor(proposedMinor: number): number {
  return Math.min(proposedMinor, VFIO_USER_MINOR);
}

/**
 * Command numbers. 14 was VFIO_USER_DIRTY_PAGES in earlier revisions; the spec retired it
 * (QEMU's enum still lists it, never sends it). QEMU 10.1 neither sends nor handles 6 and
 * 16-18 (no region io fds, no migration); 11.1 can forward DEVICE_FEATURE but its
 * vfio-user-pci never sets migration up, so it sends none of 16-18 when migrating a VM.
 */
export const vfioUserCommands = {
  VFIO_USER_VERSION: 1,
  VFIO_USER_DMA_MAP: 2,
  VFIO_USER_DMA_UNMAP: 3,
  VFIO_USER_DEVICE_GET_INFO: 4,
  VFIO_USER_DEVICE_GET_REGION_INFO: 5,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS: 6,
  VFIO_USER_DEVICE_GET_IRQ_INFO: 7,
  VFIO_USER_DEVICE_SET_IRQS: 8,
  VFIO_USER_REGION_READ: 9,
  VFIO_USER_REGION_WRITE: 10,
  VFIO_USER_DMA_READ: 11,
  VFIO_USER_DMA_WRITE: 12,
  VFIO_USER_DEVICE_RESET: 13,
  VFIO_USER_REGION_WRITE_MULTI: 15,
  VFIO_USER_DEVICE_FEATURE: 16,
  VFIO_USER_MIG_DATA_READ: 17,
  VFIO_USER_MIG_DATA_WRITE: 18,
} as const;

export type VfioUserCommandName = keyof typeof vfioUserCommands;

const commandNames = new Map<number, VfioUserCommandName>(
  Object.entries(vfioUserCommands).map(([name, n]) => [n, name as VfioUserCommandName]),
);

/** 'VFIO_USER_DMA_MAP' for 2; 'command 14' for a number the spec does not define. */
export function vfioUserCommandName(command: number): string {
  return commandNames.get(command) ?? `command ${command}`;
}

export function isVfioUserCommand(command: number): boolean {
  return commandNames.has(command);
}

/** Header flags: the message type in bits 0-3, then No_reply and Error. */
export const vfioUserHeaderFlags = {
  VFIO_USER_F_TYPE_MASK: 0xf,
  VFIO_USER_F_TYPE_COMMAND: 0x0,
  VFIO_USER_F_TYPE_REPLY: 0x1,
  VFIO_USER_F_NO_REPLY: 0x10,
  VFIO_USER_F_ERROR: 0x20,
} as const;

/**
 * DMA_MAP and DMA_UNMAP flags. The current spec says DMA_UNMAP's flags are unused;
 * GET_DIRTY_BITMAP (with a bitmap after the body) comes from earlier revisions and
 * libvfio-user, and QEMU 10.1 sends VFIO_DMA_UNMAP_FLAG_ALL (the kernel's value) to
 * drop every mapping, which libvfio-user accepts with address and size 0.
 */
export const vfioUserDmaFlags = {
  VFIO_USER_F_DMA_REGION_READ: 1 << 0,
  VFIO_USER_F_DMA_REGION_WRITE: 1 << 1,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: 1 << 0,
  VFIO_DMA_UNMAP_FLAG_ALL: 1 << 1,
} as const;

/** Sub-region kinds of a DEVICE_GET_REGION_IO_FDS reply. */
export const vfioUserIoFdTypes = {
  VFIO_USER_IO_FD_TYPE_IOEVENTFD: 0,
  VFIO_USER_IO_FD_TYPE_IOREGIONFD: 1,
} as const;

/**
 * Flags of an ioeventfd sub-region: those of KVM_IOEVENTFD (<linux/kvm.h>) the spec
 * names. ioregionfd flags belong to a KVM proposal Linux never merged (values from it).
 */
export const vfioUserIoFdFlags = {
  KVM_IOEVENTFD_FLAG_DATAMATCH: 1 << 0,
  KVM_IOEVENTFD_FLAG_PIO: 1 << 1,
  KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY: 1 << 3,
  KVM_IOREGION_PIO: 1 << 0,
  KVM_IOREGION_POSTED_WRITES: 1 << 1,
} as const;

/**
 * What the spec assumes when a VERSION capability is absent. QEMU 10.1 assumes
 * max_msg_fds 8, not 1, when the server omits it: a server should always send it.
 * The migration values are QEMU's (the current spec no longer lists "migration").
 */
export const vfioUserDefaults = {
  maxMsgFds: 1,
  maxDataXferSize: 1024 * 1024,
  pgsizes: 4096n,
  maxDmaMaps: 65535,
  migrationPgsize: 4096,
  maxBitmapSize: 256 * 1024 * 1024,
} as const;

/**
 * What QEMU 10.1's client accepts from a server. A VERSION reply above these fails
 * the device's realize; a request from the server (DMA_READ/WRITE) longer than the
 * server's max_data_xfer_size plus 32 bytes is refused. The spec itself sets no
 * maximum message size.
 */
export const qemuVfioUserLimits = {
  /** Above this max_msg_fds the reply is "malformed"; QEMU itself announces 16. */
  maxMsgFds: 16,
  /** Above this max_data_xfer_size the reply is "malformed"; QEMU announces 1 MiB. */
  maxDataXferSize: 64 * 1024 * 1024,
  maxDmaMaps: 65535,
  maxBitmapSize: 256 * 1024 * 1024,
  /** Every page size in pgsizes must be a multiple of this. */
  minPgsize: 4096,
  /** DEVICE_GET_INFO replies with more regions or irqs are refused. */
  maxRegions: 100,
  maxIrqs: 50,
  /** Writes in one REGION_WRITE_MULTI, each of at most 8 bytes. */
  writeMultiMax: 200,
} as const;
