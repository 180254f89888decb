// What a simulated PCI function provides to the vfio-pci emulation (vfio-pci.ts), and
// what the emulation gives it back. The function is the "hardware": its own config
// space (config-space.ts), its BARs' registers, its INTx pin and MSI, its DMA engine.
// vfio-pci sits in front of it exactly as the kernel driver sits in front of a real
// device: it virtualizes config space, traps BAR accesses, maps BARs, routes interrupts.
import type { DeviceBackend } from '../../../device/backend.js';
import type { KernelFlavour } from '../options.js';
import type { PciConfigSpace } from '../../../device/pci/config-space.js';
import type { MmioSize, PciBarSpec, PciIdentity } from '../../../device/pci/types.js';

/** Bus-master DMA as the function sees it: through the IOMMU, page by page. */
export interface PciDma {
  /**
   * Reads memory into dst. Pages the IOMMU blocks (or all of it, while Bus Master is
   * off) read as zeros, like QEMU's unassigned memory; false when any page was blocked.
   */
  read(iova: bigint, dst: Uint8Array): boolean;
  /** Writes src to memory; blocked pages are dropped; false when any page was blocked. */
  write(iova: bigint, src: Uint8Array): boolean;
}

/** The bus side of a function: what the vfio-pci emulation gives a model. */
export interface PciFunctionHost {
  readonly dma: PciDma;
  /** Drives the INTx pin (level-triggered): true asserts, false deasserts. */
  setIntx(level: boolean): void;
  /** Sends MSI (or MSI-X) message `vector`; call only while that is enabled in config space. */
  msiNotify(vector: number): void;
  /** The model changed register values on its own (a timer, a thread): refresh mappings. */
  registersChanged(bar: number): void;
}

export interface PciFunctionModel {
  readonly identity: PciIdentity;
  /** The function's own config space, laid out with config-builder.ts. */
  readonly config: PciConfigSpace;
  readonly bars: readonly PciBarSpec[];
  /** PCI Express (has the ERR interrupt and 4 KiB config space). */
  readonly express: boolean;
  /** Whether a function-level reset exists (pci_probe_reset_function would succeed). */
  readonly resettable: boolean;
  /** Called once, before any other call, with the bus the function sits on. */
  attach(host: PciFunctionHost): void;
  /** A trapped read of `size` bytes at `offset` of a BAR (naturally aligned). */
  mmioRead(bar: number, offset: number, size: MmioSize): number;
  mmioWrite(bar: number, offset: number, size: MmioSize, value: number): void;
  /** The value a 4-byte read at `offset` would return now, without side effects. */
  mmioPeek(bar: number, offset: number): number;
  /**
   * Function-level reset of the function's internal state; called only when
   * `resettable`. The bus saves and restores the config header around it, as the
   * PCI core does.
   */
  reset(): void;
}

/** A simulated PCI function behind vfio-pci: registered with the mock kernel by address. */
export interface MockPciDevice extends DeviceBackend {
  readonly pci: PciIdentity;
  /** Told the mock kernel's flavour when registered, for the ioctls whose answer differs. */
  useFlavour?(flavour: KernelFlavour): void;
}
