// An mmap of a device region (or of one sparse area of it). It is a Mapping, so it can
// be handed to Container.map() for peer-to-peer DMA.
import { inspect } from 'node:util';
import type { Mapping, SysLayer } from '../sys/types.js';
import { formatSize, hex } from './names.js';

export class RegionMapping implements Mapping {
  private bytesView: Uint8Array | undefined;
  private dataView: DataView | undefined;
  private u32View: Uint32Array | undefined;
  private done = false;

  constructor(
    private readonly sys: SysLayer,
    private readonly mapping: Mapping,
    /** Which region, for inspect output. */
    readonly regionName: string,
    /** Where the mapping starts inside the region. */
    readonly regionOffset: number,
    private readonly onUnmap: (m: RegionMapping) => void,
  ) {}

  get buffer(): ArrayBuffer {
    return this.mapping.buffer;
  }

  get address(): bigint {
    return this.mapping.address;
  }

  get length(): number {
    return this.mapping.length;
  }

  get unmapped(): boolean {
    return this.done || this.mapping.buffer.byteLength === 0;
  }

  /** The mapped bytes (empty once unmapped). */
  get bytes(): Uint8Array {
    if (this.unmapped) return new Uint8Array(0);
    return (this.bytesView ??= new Uint8Array(this.mapping.buffer, 0, this.mapping.length));
  }

  /**
   * A DataView over the mapping (empty once unmapped), for memory-like regions such as
   * a framebuffer. Not for registers: DataView may access memory byte by byte, and
   * devices ignore or misread partial register accesses; use read32()/write32().
   */
  get view(): DataView {
    if (this.unmapped) return new DataView(new ArrayBuffer(0));
    return (this.dataView ??= new DataView(this.mapping.buffer, 0, this.mapping.length));
  }

  /** One naturally aligned 32-bit load from a mapped register (x86: little-endian). */
  read32(offset: number): number {
    return this.lanes32()[this.lane32(offset)]!;
  }

  /** One naturally aligned 32-bit store to a mapped register. */
  write32(offset: number, value: number): void {
    this.lanes32()[this.lane32(offset)] = value >>> 0;
  }

  private lanes32(): Uint32Array {
    if (this.unmapped) throw new RangeError(`${this.regionName} mapping is unmapped`);
    return (this.u32View ??= new Uint32Array(this.mapping.buffer, 0, this.mapping.length >>> 2));
  }

  private lane32(offset: number): number {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + 4 > this.mapping.length) {
      throw new RangeError(`32-bit access at ${offset} must be 4-byte aligned inside the ${this.mapping.length}-byte mapping`);
    }
    return offset >>> 2;
  }

  /** munmap; idempotent. */
  unmap(): void {
    if (this.done) return;
    this.done = true;
    this.bytesView = undefined;
    this.dataView = undefined;
    this.u32View = undefined;
    this.sys.munmap(this.mapping);
    this.onUnmap(this);
  }

  [inspect.custom](): string {
    const where = `${this.regionName}+${hex(this.regionOffset)}`;
    if (this.unmapped) return `RegionMapping ${where} (unmapped)`;
    return `RegionMapping ${where} ${formatSize(this.length)} at ${hex(this.address)}`;
  }
}
