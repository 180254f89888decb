// The vendor driver interface: what a GPU vendor's driver implements so the vGPU core
// can offer its virtual GPUs as VFIO PCI devices. It descends from the 2016 proposal's
// gpu_device_ops as the review reshaped it into the kernel's mdev framework:
//   - a vendor driver claims parents (physical GPUs) and describes their types;
//   - a vGPU is named by a UUID alone (no VM UUID, no per-VM index) and is independent;
//   - create/remove are separate from open/release (the proposal's start/shutdown);
//   - the core emulates the VFIO device (regions, config space, SET_IRQS): the vendor
//     only answers register accesses, provides memory, raises interrupts and uses DMA;
//   - DMA goes through pinning with an unmap notice (dmaUnmap), never a one-time
//     translation, and BAR memory is mapped on demand from what the vendor provides.
import type { DmaSpace } from '../device/backend.js';
import type { Mapping } from '../sys/types.js';
import type { PciIdentity } from '../device/pci/types.js';

/** One kind of vGPU a parent can create (an mdev type: mdev_supported_types/<id>). */
export interface VgpuType {
  /** Unique within the driver; the type id is `${driver.name}-${name}`, e.g. "simgpu-8Q". */
  readonly name: string;
  /** The sysfs `name` attribute: a human name, e.g. "GRID M60-8Q". */
  readonly displayName: string;
  /** The optional sysfs `description` attribute. */
  readonly description?: string;
  /** Driver attributes shown with the type (framebuffer size, heads, resolution...). */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** A parent: the physical (or simulated) device a vendor driver has claimed. */
export interface VgpuParent {
  /** Unique name: a PCI address for a real device, or e.g. "simgpu0" for a simulated one. */
  readonly name: string;
  readonly types: readonly VgpuType[];
  /**
   * How many more vGPUs of `type` can be created now. Asked after every create and
   * remove, so it may depend on what lives (creating one type may narrow others).
   */
  availableInstances(type: VgpuType): number;
  /**
   * Creates the vGPU's device model. Throw a SysError (e.g. ENOSPC) to refuse; anything
   * else thrown becomes EIO. Nothing of the vGPU exists for users before this returns.
   */
  createVgpu(type: VgpuType, uuid: string): VgpuModel;
  /** Frees what createVgpu took. Called once per vGPU, never while it is open. */
  removeVgpu(vgpu: VgpuModel): void;
}

export interface VendorDriver {
  /** The driver's name, the prefix of its type ids: "simgpu". */
  readonly name: string;
}

/** A BAR of a vGPU: its size and kind, and what answers each part of it. */
export interface VgpuBar {
  /** 0..5 (a 64-bit BAR also takes index + 1). */
  readonly index: number;
  /** Bytes: a power of two, at least one page for a BAR with mapped areas. */
  readonly size: number;
  readonly kind: 'memory32' | 'memory64' | 'io';
  readonly prefetchable?: boolean;
  /**
   * What answers each part, non-overlapping, sorted by offset. Bytes no area covers
   * read as all ones and ignore writes. Mapped areas must be page-aligned; they are
   * listed in the region's sparse mmap capability and answer pread/pwrite too.
   */
  readonly areas: readonly VgpuBarArea[];
}

export type VgpuBarArea = TrappedArea | MappedArea;

/** Registers: every access is dispatched to the vendor. */
export interface TrappedArea {
  readonly kind: 'trapped';
  readonly offset: number;
  readonly size: number;
  readonly handler: RegisterHandler;
}

/** Memory: the user may mmap it and reach it with no call into the vendor. */
export interface MappedArea {
  readonly kind: 'mapped';
  readonly offset: number;
  readonly size: number;
  readonly memory: MemoryBacking;
}

/**
 * Register accesses of a trapped area. Offsets are relative to the area. Accesses are
 * naturally aligned, 1, 2 or 4 bytes; an 8-byte or larger access arrives as aligned
 * pieces, lowest address first (as vfio-pci does on x86 in 6.1 and 6.12).
 */
export interface RegisterHandler {
  read(offset: number, size: 1 | 2 | 4): number;
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

/**
 * Memory behind a mapped area: shared memory (a SharedMemory from src/device/memory.ts
 * is one as it stands) or a slice of a parent's mapped BAR. It may be larger than one
 * ArrayBuffer can be (an 8 GiB framebuffer), so nobody asks for a view of all of it:
 * the core copies through read/write for the user's pread/pwrite, and maps windows for
 * the user's mmap; the vendor reaches it the same ways. Offsets are relative to the
 * backing; read/write take any offset and length inside `size`.
 */
export interface MemoryBacking {
  /** Bytes: at least the size of the area it backs. */
  readonly size: number;
  /** Copies [offset, offset + dst.byteLength) into dst. */
  read(offset: number, dst: Uint8Array): void;
  /** Copies src into [offset, offset + src.byteLength). */
  write(offset: number, src: Uint8Array): void;
  /**
   * A new MAP_SHARED mapping of [offset, offset + length), offset page-aligned: for a
   * user's mmap (the user unmaps it with munmap), or a window the vendor works through.
   */
  map(offset: number, length: number, prot: number): Mapping;
  /** Unmaps a window map() made for the vendor's own use. Idempotent. */
  unmap(mapping: Mapping): void;
  /**
   * The file behind the memory, when there is one: byte `o` of the backing is byte
   * `offset + o` of `fd` (page aligned). A transport that passes fds (vfio-user) hands
   * it to its user to map the area; without it the area is reached through the
   * device's read/write only. A SharedMemory reports its memfd here (undefined once closed).
   */
  readonly file?: { readonly fd: number; readonly offset: number } | undefined;
}

/**
 * A device-specific region (index 9 and up): trapped, never mappable. Accesses arrive
 * as naturally aligned 4/2/1-byte pieces, as for a trapped BAR area, clipped at the
 * region's end.
 */
export interface VgpuRegion {
  /** VFIO_REGION_INFO_CAP_TYPE: e.g. VFIO_REGION_TYPE_GFX / VFIO_REGION_SUBTYPE_GFX_EDID. */
  readonly type: number;
  readonly subtype: number;
  /** Bytes, at least 4. */
  readonly size: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly handler: RegisterHandler;
}

/** What a vGPU's PCI function looks like: identity and capabilities. */
export interface VgpuPciSpec {
  readonly identity: PciIdentity;
  /** The interrupt pin (1 = INTA) or 0 for none. */
  readonly interruptPin: number;
  /** MSI vectors (1, 2, 4, 8, 16, 32) or 0 for no MSI capability. */
  readonly msiVectors: number;
  /** MSI-X: vectors and where its table and PBA live (a trapped area the core emulates). */
  readonly msix?: { vectors: number; bar: number; tableOffset: number; pbaOffset: number };
  /** A PCI Express endpoint capability and 4 KiB extended config space. */
  readonly express: boolean;
  /** A power-management capability. */
  readonly powerManagement: boolean;
}

/** The vGPU's device model, made by VgpuParent.createVgpu. */
export interface VgpuModel {
  readonly pci: VgpuPciSpec;
  readonly bars: readonly VgpuBar[];
  /** Open of the first device fd (the proposal's vgpu_start). */
  open(session: VgpuSession): void;
  /** Close of the last device fd (the proposal's vgpu_shutdown): drop pins, stop work. */
  release(): void;
  /** VFIO_DEVICE_RESET and a function-level reset through config space. */
  reset(): void;
  /**
   * The user is unmapping [iova, iova + length) and the vendor holds pins in it: unpin
   * them now (vfio_device_ops.dma_unmap). Pins left behind are dropped by the core.
   */
  dmaUnmap(iova: bigint, length: bigint): void;
  /**
   * Device-specific regions after vfio-pci's nine: regions[i] is region index 9 + i,
   * described by a VFIO_REGION_INFO_CAP_TYPE (e.g. a display's EDID region).
   */
  readonly regions?: readonly VgpuRegion[];
  /** Device ioctls the core does not handle itself (e.g. QUERY_GFX_PLANE): ENOTTY if absent. */
  ioctl?(request: number, arg: number | Uint8Array | undefined): number;
  /**
   * Live migration (VFIO migration v2). Absent: the vGPU cannot migrate, and the
   * migration features answer ENOTTY, as the kernel does for a driver without mig_ops.
   */
  readonly migration?: VgpuMigration;
}

/**
 * What a vendor does for live migration. The core runs the state machine, the data
 * stream (a versioned header naming vendor, type and `version`; lengths; checksums),
 * pre-copy, the memory transfer and DMA dirty logging (every write and writable pin the
 * vendor makes through its session's DmaSpace is logged): the vendor only quiesces,
 * resumes, saves and loads. All calls come while the device is open.
 */
export interface VgpuMigration {
  /** The version of this model's sections: a stream loads only into the same vendor, type and version. */
  readonly version: number;
  /**
   * Memory the core streams itself (a framebuffer): only what was ever written travels,
   * found through the backing's file (sparse memfd) or by reading it; pages that change
   * during pre-copy travel again. The destination's memory is made byte-equal.
   */
  readonly memory: readonly MemoryBacking[];
  /** Stop: no DMA, no interrupts and no change of state until resume(). Pins may stay. */
  quiesce(): void;
  /** Carry on after quiesce() (also after load()). */
  resume(): void;
  /** The state in named sections (registers, rings, interrupt state...), taken quiesced. Must not change the device. */
  save(): VgpuStateSection[];
  /**
   * The destination's load, quiesced: check every section first and throw (a SysError,
   * or an Error whose message says what is wrong) to refuse the stream with nothing
   * changed; then apply them, re-establishing pins through the session's DmaSpace.
   */
  load(sections: ReadonlyMap<string, Uint8Array>): void;
}

export interface VgpuStateSection {
  /** Unique within a save; the core keeps names beginning "core." for itself. */
  readonly name: string;
  readonly data: Uint8Array;
}

/** What a vGPU model can reach while its device is open. */
export interface VgpuSession {
  /** DMA into the user's (guest's) memory: pin, translate, read and write, unpin. */
  readonly dma: DmaSpace;
  /** Raises an interrupt: INTx (vector 0), MSI or MSI-X vector; honours masking. */
  raise(vector: number): void;
  /**
   * COMMAND's Bus Master Enable in the vGPU's config space, read live (false once the
   * session has ended). A device must not start DMA while it is clear, as real devices
   * do not; the user sets it after open (a new open starts with it clear).
   */
  readonly busMaster: boolean;
}
