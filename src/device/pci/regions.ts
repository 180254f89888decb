// vfio-pci's regions: the fixed index-to-offset layout (index << 40), region info, and
// trapped BAR access (vfio_pci_bar_rw / do_io_rw): a read or write is clipped at the
// BAR's end, split into naturally aligned 4/2/1-byte pieces (no 8-byte pieces in 6.1
// or 6.12), refused with EIO while Memory Space Enable is off, and the MSI-X table
// is skipped (reads 0xff, writes dropped).
import { sysError } from '../../addon/errors.js';
import { flags as F, pciRegion } from '../../uapi/constants.js';
import { chainCaps, msixMappableCap, type Cap } from '../../uapi/caps.js';
import { vfio_region_info } from '../../uapi/structs.js';
import type { MmioSize, PciBarSpec } from './types.js';

export const VFIO_PCI_OFFSET_SHIFT = 40n;
export const VFIO_PCI_OFFSET_MASK = (1n << VFIO_PCI_OFFSET_SHIFT) - 1n;

export function indexToOffset(index: number): bigint {
  return BigInt(index) << VFIO_PCI_OFFSET_SHIFT;
}

/** Region index and offset inside it of a device-fd file offset. */
export function splitOffset(offset: bigint): { index: number; pos: number } {
  const index = offset >> VFIO_PCI_OFFSET_SHIFT;
  return { index: index > 0xffffn ? 0xffff : Number(index), pos: Number(offset & VFIO_PCI_OFFSET_MASK) };
}

/** The MSI-X table's place, when the function has MSI-X (msix_bar, msix_offset, msix_size). */
export interface MsixTableInfo {
  readonly bar: number;
  readonly offset: number;
  readonly size: number;
}

export interface RegionLayout {
  readonly bars: readonly PciBarSpec[];
  readonly configSize: number;
  readonly mmapSupported: (index: number) => boolean;
  readonly msix: MsixTableInfo | undefined;
  /**
   * The capabilities of a mappable BAR's info, when the device decides them itself
   * (the vGPU core: a sparse mmap list); default vfio-pci's MSIX_MAPPABLE on the MSI-X BAR.
   */
  readonly barCaps?: (index: number) => Cap[];
}

/** VFIO_DEVICE_GET_REGION_INFO on a buffer holding struct vfio_region_info. */
export function getRegionInfo(buf: Uint8Array, layout: RegionLayout): number {
  const op = 'VFIO_DEVICE_GET_REGION_INFO';
  const minsz = vfio_region_info.size;
  if (buf.byteLength < minsz) throw sysError('EFAULT', 'ioctl', op, 'buffer shorter than vfio_region_info');
  const info = vfio_region_info.decode(buf);
  if (info.argsz < minsz) throw sysError('EINVAL', 'ioctl', op, `argsz ${info.argsz}`);
  const caps: Cap[] = [];
  let flags = 0;
  let size = 0n;
  const index = info.index;
  switch (index) {
    case pciRegion.VFIO_PCI_CONFIG_REGION_INDEX:
      size = BigInt(layout.configSize);
      flags = F.VFIO_REGION_INFO_FLAG_READ | F.VFIO_REGION_INFO_FLAG_WRITE;
      break;
    case 0: case 1: case 2: case 3: case 4: case 5: {
      const bar = layout.bars.find((b) => b.index === index);
      if (!bar) break; // unimplemented (or the upper half of a 64-bit BAR): size 0, flags 0
      size = BigInt(bar.size);
      flags = F.VFIO_REGION_INFO_FLAG_READ | F.VFIO_REGION_INFO_FLAG_WRITE;
      if (layout.mmapSupported(index)) {
        flags |= F.VFIO_REGION_INFO_FLAG_MMAP;
        if (layout.barCaps) caps.push(...layout.barCaps(index));
        else if (layout.msix?.bar === index) caps.push(msixMappableCap());
      }
      break;
    }
    case pciRegion.VFIO_PCI_ROM_REGION_INDEX:
      break; // no option ROM is modelled: size 0, flags 0
    case pciRegion.VFIO_PCI_VGA_REGION_INDEX:
      throw sysError('EINVAL', 'ioctl', op, 'not a VGA device');
    default:
      throw sysError('EINVAL', 'ioctl', op, `no region ${index}`);
  }
  let argsz = info.argsz;
  // The kernel copies the user's whole struct in: without capabilities cap_offset goes
  // back as the user gave it.
  let capOffset = info.cap_offset;
  if (caps.length) {
    flags |= F.VFIO_REGION_INFO_FLAG_CAPS;
    const chain = chainCaps(caps, minsz);
    if (info.argsz < minsz + chain.byteLength) {
      argsz = minsz + chain.byteLength;
      capOffset = 0;
    } else {
      if (buf.byteLength < minsz + chain.byteLength) throw sysError('EFAULT', 'ioctl', op, 'argsz is larger than the buffer');
      buf.set(chain, minsz);
      capOffset = minsz;
    }
  }
  vfio_region_info.write(buf, { argsz, flags, index, cap_offset: capOffset, size, offset: indexToOffset(index) });
  return 0;
}

/** A BAR's register access, as the region code needs it. */
export interface BarPort {
  read(offset: number, size: MmioSize): number;
  write(offset: number, size: MmioSize, value: number): void;
}

/**
 * vfio_pci_bar_rw for an implemented BAR: returns bytes done. `memoryEnabled` is
 * asked before each piece of a memory BAR (I/O BARs are not gated by COMMAND).
 */
export function barRw(bar: PciBarSpec, port: BarPort, buf: Uint8Array, pos: number, iswrite: boolean,
  memoryEnabled: () => boolean, msix?: MsixTableInfo): number {
  const syscall = iswrite ? 'pwrite' : 'pread';
  const end = bar.size;
  if (pos >= end) throw sysError('EINVAL', syscall, undefined, `offset 0x${pos.toString(16)} is past BAR${bar.index}'s ${end} bytes`);
  const count = Math.min(buf.byteLength, end - pos);
  const testMem = bar.kind !== 'io';
  const xStart = msix?.bar === bar.index ? msix.offset : 0;
  const xEnd = msix?.bar === bar.index ? msix.offset + msix.size : 0;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let done = 0;
  let off = pos;
  while (done < count) {
    const left = count - done;
    const fillable = off < xStart ? Math.min(left, xStart - off) : off >= xEnd ? left : 0;
    let size: MmioSize | 0;
    if (fillable >= 4 && off % 4 === 0) size = 4;
    else if (fillable >= 2 && off % 2 === 0) size = 2;
    else if (fillable) size = 1;
    else size = 0;
    if (size === 0) {
      // Inside the MSI-X table: reads see 0xff, writes are dropped.
      const filled = Math.min(left, xEnd - off);
      if (!iswrite) buf.fill(0xff, done, done + filled);
      done += filled;
      off += filled;
      continue;
    }
    if (testMem && !memoryEnabled()) throw sysError('EIO', syscall, undefined, 'memory space is disabled in COMMAND');
    if (iswrite) {
      const v = size === 4 ? view.getUint32(done, true) : size === 2 ? view.getUint16(done, true) : view.getUint8(done);
      port.write(off, size, v);
    } else {
      const v = port.read(off, size);
      if (size === 4) view.setUint32(done, v >>> 0, true);
      else if (size === 2) view.setUint16(done, v & 0xffff, true);
      else view.setUint8(done, v & 0xff);
    }
    done += size;
    off += size;
  }
  return done;
}
