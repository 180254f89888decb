// Raw VFIO ioctls with the struct codecs of src/uapi, returning what the kernel did
// and wrote. Buffers are always at least as large as the kernel copies in (argsz is a
// separate field), so an argsz test never depends on memory past a short buffer.
import type { SysLayer } from '../../src/sys/types.js';
import {
  ioctls, vfio_device_info, vfio_group_status, vfio_iommu_type1_dirty_bitmap, vfio_iommu_type1_dirty_bitmap_get,
  vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info, vfio_irq_info, vfio_irq_set,
  vfio_region_info, flags as F, pciRegion,
} from '../../src/uapi/index.js';
import type { StructValue } from '../../src/uapi/index.js';
import { attempt, type Outcome } from './outcome.js';

/** A value that no kernel writes by chance, to see which bytes a call left alone. */
export const SENTINEL = 0xdeadbeef;

/** Hex of the bytes from `from` to the end: what a call left beyond what it wrote. */
export function hexTail(buf: Uint8Array, from: number): string {
  return Buffer.from(buf.subarray(from)).toString('hex');
}

export function int32Arg(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  return b;
}

export function setContainer(sys: SysLayer, group: number, containerFd: number): Outcome {
  return attempt(() => sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, int32Arg(containerFd)));
}

export function groupStatus(sys: SysLayer, group: number, argsz = vfio_group_status.size, bufSize = vfio_group_status.size) {
  const buf = new Uint8Array(Math.max(bufSize, vfio_group_status.size)).fill(0xa5);
  vfio_group_status.write(buf, { argsz, flags: 0 });
  const outcome = attempt(() => sys.ioctl(group, ioctls.VFIO_GROUP_GET_STATUS, buf));
  return { outcome, ...vfio_group_status.decode(buf), buf };
}

export function deviceInfo(sys: SysLayer, device: number, argsz = vfio_device_info.size) {
  const buf = vfio_device_info.encode({ argsz, cap_offset: SENTINEL }, 32);
  const outcome = attempt(() => sys.ioctl(device, ioctls.VFIO_DEVICE_GET_INFO, buf));
  return { outcome, info: vfio_device_info.decode(buf) };
}

export function regionInfo(sys: SysLayer, device: number, index: number, argsz = vfio_region_info.size, capOffset = 0) {
  const buf = vfio_region_info.encode({ argsz, index, cap_offset: capOffset }, Math.max(argsz, vfio_region_info.size));
  const outcome = attempt(() => sys.ioctl(device, ioctls.VFIO_DEVICE_GET_REGION_INFO, buf));
  return { outcome, info: vfio_region_info.decode(buf) };
}

/** The file offset of a region, from GET_REGION_INFO (never assumed). */
export function regionOffset(sys: SysLayer, device: number, index: number): bigint {
  const buf = vfio_region_info.encode({ argsz: vfio_region_info.size, index });
  sys.ioctl(device, ioctls.VFIO_DEVICE_GET_REGION_INFO, buf);
  return vfio_region_info.decode(buf).offset;
}

export function regionSize(sys: SysLayer, device: number, index: number): bigint {
  const buf = vfio_region_info.encode({ argsz: vfio_region_info.size, index });
  sys.ioctl(device, ioctls.VFIO_DEVICE_GET_REGION_INFO, buf);
  return vfio_region_info.decode(buf).size;
}

export function irqInfo(sys: SysLayer, device: number, index: number, argsz = vfio_irq_info.size) {
  const buf = vfio_irq_info.encode({ argsz, index });
  const outcome = attempt(() => sys.ioctl(device, ioctls.VFIO_DEVICE_GET_IRQ_INFO, buf));
  return { outcome, info: vfio_irq_info.decode(buf) };
}

export interface IrqSet {
  flags: number;
  index: number;
  start: number;
  count: number;
  /** Items after the header: u8 each for DATA_BOOL, s32 each for DATA_EVENTFD. */
  data?: readonly number[];
  /** Defaults to the header plus the data. */
  argsz?: number;
}

export function setIrqs(sys: SysLayer, device: number, req: IrqSet): Outcome {
  const data = req.data ?? [];
  const dataType = req.flags & F.VFIO_IRQ_SET_DATA_TYPE_MASK;
  const width = dataType === F.VFIO_IRQ_SET_DATA_EVENTFD ? 4 : dataType === F.VFIO_IRQ_SET_DATA_BOOL ? 1 : 0;
  const total = vfio_irq_set.size + data.length * width;
  const buf = vfio_irq_set.encode({ argsz: req.argsz ?? total, flags: req.flags, index: req.index, start: req.start, count: req.count }, total);
  const dv = new DataView(buf.buffer);
  data.forEach((v, i) => {
    if (width === 4) dv.setInt32(vfio_irq_set.size + 4 * i, v, true);
    else if (width === 1) dv.setUint8(vfio_irq_set.size + i, v);
  });
  return attempt(() => sys.ioctl(device, ioctls.VFIO_DEVICE_SET_IRQS, buf));
}

export const TRIGGER_EVENTFD = F.VFIO_IRQ_SET_ACTION_TRIGGER | F.VFIO_IRQ_SET_DATA_EVENTFD;
export const TRIGGER_NONE = F.VFIO_IRQ_SET_ACTION_TRIGGER | F.VFIO_IRQ_SET_DATA_NONE;
export const TRIGGER_BOOL = F.VFIO_IRQ_SET_ACTION_TRIGGER | F.VFIO_IRQ_SET_DATA_BOOL;
export const MASK_NONE = F.VFIO_IRQ_SET_ACTION_MASK | F.VFIO_IRQ_SET_DATA_NONE;
export const UNMASK_NONE = F.VFIO_IRQ_SET_ACTION_UNMASK | F.VFIO_IRQ_SET_DATA_NONE;

/** Reads an eventfd's counter: the count as a number, or the errno (EAGAIN when nothing arrived). */
export function eventCount(sys: SysLayer, fd: number): number | string {
  try {
    return Number(sys.eventfdRead(fd));
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw err;
  }
}

// --- config space and BARs, through pread/pwrite at a region's offset -------------

export function readAt(sys: SysLayer, fd: number, offset: bigint, length: number) {
  const bytes = new Uint8Array(length);
  const outcome = attempt(() => sys.pread(fd, bytes, offset));
  return { outcome, bytes };
}

export function writeAt(sys: SysLayer, fd: number, offset: bigint, bytes: Uint8Array): Outcome {
  return attempt(() => sys.pwrite(fd, bytes, offset));
}

export function le(value: number, width: 1 | 2 | 4): Uint8Array {
  const b = new Uint8Array(width);
  const dv = new DataView(b.buffer);
  if (width === 1) dv.setUint8(0, value);
  else if (width === 2) dv.setUint16(0, value, true);
  else dv.setUint32(0, value >>> 0, true);
  return b;
}

export function fromLe(bytes: Uint8Array): number {
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
  return v;
}

/** Reads `width` bytes of config space: the value, or throws what pread threw. */
export function cfgRead(sys: SysLayer, device: number, offset: number, width: 1 | 2 | 4): number {
  const base = regionOffset(sys, device, pciRegion.VFIO_PCI_CONFIG_REGION_INDEX);
  const bytes = new Uint8Array(width);
  const n = sys.pread(device, bytes, base + BigInt(offset));
  if (n !== width) throw new Error(`config read of ${width} bytes at 0x${offset.toString(16)} returned ${n}`);
  return fromLe(bytes);
}

export function cfgWrite(sys: SysLayer, device: number, offset: number, width: 1 | 2 | 4, value: number): Outcome {
  const base = regionOffset(sys, device, pciRegion.VFIO_PCI_CONFIG_REGION_INDEX);
  return writeAt(sys, device, base + BigInt(offset), le(value, width));
}

// --- TYPE1 -------------------------------------------------------------------------

export interface DmaMap { flags: number; vaddr: bigint; iova: bigint; size: bigint; argsz?: number }

export const READ_WRITE = F.VFIO_DMA_MAP_FLAG_READ | F.VFIO_DMA_MAP_FLAG_WRITE;

export function mapDma(sys: SysLayer, container: number, m: DmaMap): Outcome {
  const buf = vfio_iommu_type1_dma_map.encode({ argsz: m.argsz ?? vfio_iommu_type1_dma_map.size, flags: m.flags, vaddr: m.vaddr, iova: m.iova, size: m.size });
  return attempt(() => sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, buf));
}

export interface DmaUnmap { flags?: number; iova: bigint; size: bigint; argsz?: number; bufSize?: number }

/** UNMAP_DMA; `size` is what the buffer holds afterwards (the kernel writes it back on success). */
export function unmapDma(sys: SysLayer, container: number, u: DmaUnmap): { outcome: Outcome; size: bigint } {
  const bufSize = Math.max(u.bufSize ?? 0, vfio_iommu_type1_dma_unmap.size);
  const buf = vfio_iommu_type1_dma_unmap.encode({ argsz: u.argsz ?? vfio_iommu_type1_dma_unmap.size, flags: u.flags ?? 0, iova: u.iova, size: u.size }, bufSize);
  const outcome = attempt(() => sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, buf));
  return { outcome, size: vfio_iommu_type1_dma_unmap.decode(buf).size };
}

export function iommuInfo(sys: SysLayer, container: number, argsz: number, bufSize = Math.max(argsz, vfio_iommu_type1_info.size)) {
  const buf = vfio_iommu_type1_info.encode({ argsz, cap_offset: SENTINEL }, Math.max(bufSize, vfio_iommu_type1_info.size));
  const outcome = attempt(() => sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, buf));
  return { outcome, info: vfio_iommu_type1_info.decode(buf), buf };
}

/** GET_INFO with the argsz protocol: ask, then retry with the size the kernel asked for. */
export function fullIommuInfo(sys: SysLayer, container: number): { info: StructValue<typeof vfio_iommu_type1_info.fields>; buf: Uint8Array } {
  const first = iommuInfo(sys, container, vfio_iommu_type1_info.size);
  if (!('ret' in first.outcome)) throw new Error(`VFIO_IOMMU_GET_INFO failed: ${JSON.stringify(first.outcome)}`);
  const second = iommuInfo(sys, container, first.info.argsz);
  if (!('ret' in second.outcome)) throw new Error(`VFIO_IOMMU_GET_INFO failed: ${JSON.stringify(second.outcome)}`);
  return { info: second.info, buf: second.buf };
}

export function dirtyPages(sys: SysLayer, container: number, flags: number, argsz = vfio_iommu_type1_dirty_bitmap.size): Outcome {
  const buf = vfio_iommu_type1_dirty_bitmap.encode({ argsz, flags }, vfio_iommu_type1_dirty_bitmap.size + vfio_iommu_type1_dirty_bitmap_get.size);
  return attempt(() => sys.ioctl(container, ioctls.VFIO_IOMMU_DIRTY_PAGES, buf));
}

export interface BitmapGet { iova: bigint; size: bigint; pgsize: bigint; bitmapSize: bigint; bitmapAddress: bigint; argsz?: number }

export function dirtyBitmap(sys: SysLayer, container: number, g: BitmapGet): Outcome {
  const head = vfio_iommu_type1_dirty_bitmap;
  const total = head.size + vfio_iommu_type1_dirty_bitmap_get.size;
  const buf = head.encode({ argsz: g.argsz ?? total, flags: F.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP }, total);
  vfio_iommu_type1_dirty_bitmap_get.write(buf, {
    iova: g.iova, size: g.size, bitmap_pgsize: g.pgsize, bitmap_size: g.bitmapSize, bitmap_data: g.bitmapAddress,
  }, head.size);
  return attempt(() => sys.ioctl(container, ioctls.VFIO_IOMMU_DIRTY_PAGES, buf));
}
