// Fixtures for the vfio-pci and edu tests: a mock kernel with one simulated edu at
// 0000:00:04.0 opened the way a VFIO user opens it (container, group, TYPE1v2, device
// fd), and small encoders for config, BAR and SET_IRQS accesses.
import assert from 'node:assert/strict';
import { createMockSys, type MockSysLayer } from '../../src/sys/mock.js';
import { createEduDevice, EduModel } from '../../src/sys/mock/devices/edu.js';
import type { VfioPciDevice } from '../../src/sys/mock/pci/vfio-pci.js';
import type { ErrnoCode } from '../../src/addon/errors.js';
import { ioctls, vfio_irq_set } from '../../src/uapi/index.js';

export const EDU_ADDRESS = '0000:00:04.0';
export const CONFIG = 7n << 40n;
export const BAR0 = 0n;
export const TYPE1v2 = 3;

export interface EduRig {
  readonly sys: MockSysLayer;
  readonly edu: VfioPciDevice;
  readonly model: EduModel;
  readonly container: number;
  readonly group: number;
  /** The device fd. */
  fd: number;
  /** Closes the device fd and opens a new one (the device is closed and opened again). */
  reopen(): void;
  close(): void;
}

function int32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

export function openEdu(options: { kernel?: '6.1' | '6.12' } = {}): EduRig {
  const edu = createEduDevice(EDU_ADDRESS);
  const sys = createMockSys({ devices: [edu], ...options });
  const groupNo = sys.sysfs.readlink(`/sys/bus/pci/devices/${EDU_ADDRESS}/iommu_group`).split('/').pop()!;
  const container = sys.open('/dev/vfio/vfio');
  const group = sys.open(`/dev/vfio/${groupNo}`);
  sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, int32(container));
  sys.ioctl(container, ioctls.VFIO_SET_IOMMU, TYPE1v2);
  const getFd = (): number => sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${EDU_ADDRESS}\0`));
  const rig: EduRig = {
    sys, edu, model: edu.model as EduModel, container, group, fd: getFd(),
    reopen() {
      sys.close(rig.fd);
      rig.fd = getFd();
    },
    close() {
      sys.close(rig.fd);
      sys.close(group);
      sys.close(container);
    },
  };
  return rig;
}

export function cfgRead(rig: EduRig, offset: number, size: 1 | 2 | 4): number {
  const buf = new Uint8Array(size);
  assert.equal(rig.sys.pread(rig.fd, buf, CONFIG + BigInt(offset)), size);
  const dv = new DataView(buf.buffer);
  return size === 4 ? dv.getUint32(0, true) : size === 2 ? dv.getUint16(0, true) : dv.getUint8(0);
}

export function cfgWrite(rig: EduRig, offset: number, size: 1 | 2 | 4, value: number): void {
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  if (size === 4) dv.setUint32(0, value >>> 0, true);
  else if (size === 2) dv.setUint16(0, value, true);
  else dv.setUint8(0, value);
  assert.equal(rig.sys.pwrite(rig.fd, buf, CONFIG + BigInt(offset)), size);
}

export function bar0Read(rig: EduRig, offset: number): number {
  const buf = new Uint8Array(4);
  assert.equal(rig.sys.pread(rig.fd, buf, BAR0 + BigInt(offset)), 4);
  return new DataView(buf.buffer).getUint32(0, true);
}

export function bar0Write(rig: EduRig, offset: number, value: number): void {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setUint32(0, value >>> 0, true);
  assert.equal(rig.sys.pwrite(rig.fd, buf, BAR0 + BigInt(offset)), 4);
}

/** Sets COMMAND's Bus Master Enable (edu's DMA needs it, as on the real device). */
export function enableBusMaster(rig: EduRig): void {
  cfgWrite(rig, 0x04, 2, cfgRead(rig, 0x04, 2) | 0x4);
}

export const IRQ = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
export const SET = { NONE: 1, BOOL: 2, EVENTFD: 4, MASK: 8, UNMASK: 16, TRIGGER: 32 } as const;

/** struct vfio_irq_set with its data: eventfds (s32) for EVENTFD, bytes for BOOL. */
export function irqSet(flags: number, index: number, start: number, count: number, data: readonly number[] = [],
  argsz?: number): Uint8Array {
  const size = flags & SET.EVENTFD ? 4 : flags & SET.BOOL ? 1 : 0;
  const total = vfio_irq_set.size + data.length * size;
  const buf = vfio_irq_set.encode({ argsz: argsz ?? total, flags, index, start, count }, total);
  const dv = new DataView(buf.buffer);
  data.forEach((v, i) => {
    if (size === 4) dv.setInt32(vfio_irq_set.size + 4 * i, v, true);
    else dv.setUint8(vfio_irq_set.size + i, v);
  });
  return buf;
}

export function assertErrno(fn: () => unknown, code: ErrnoCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `expected ${code}, got ${String((err as Error).message)}`);
    return true;
  });
}

/** The eventfd's counter, read and reset (0 when nothing was signalled). */
export function drain(sys: MockSysLayer, efd: number): bigint {
  try {
    return sys.eventfdRead(efd);
  } catch (err) {
    if ((err as { code?: string }).code === 'EAGAIN') return 0n;
    throw err;
  }
}

/** Polls `cond` on short timers until it holds or `ms` pass. */
export async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting for the device');
    await new Promise((r) => setTimeout(r, 1));
  }
}
