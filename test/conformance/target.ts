// How a conformance run finds its target, and the sessions every case runs in.
//
// The suite knows only the SysLayer interface and a PCI address: the very same compiled
// files run on the mock kernel (`npm test`) and, in a QEMU guest, on real Linux 6.1 and
// 6.12 (VGPU_SYS=native). Environment:
//   VGPU_SYS          mock | native (default: what openSys() picks)
//   VGPU_TEST_DEVICE  the PCI address of the device under test (default 0000:00:04.0)
//   VGPU_MOCK_KERNEL  6.1 | 6.12: the mock kernel's flavour (default 6.1)
import { readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { after } from 'node:test';
import { openSys, type MockSysLayer } from '../../src/sys/index.js';
import { createEduDevice } from '../../src/sys/mock/devices/edu.js';
import type { Mapping, SysKind, SysLayer } from '../../src/sys/types.js';
import { PROT_READ, PROT_WRITE } from '../../src/sys/types.js';
import { extensions, ioctls } from '../../src/uapi/index.js';
import { acquireDeviceLock, releaseDeviceLock } from './device-lock.js';

export type KernelFlavour = '6.1' | '6.12';

export interface Target {
  readonly sys: SysLayer;
  readonly kind: SysKind;
  /** The PCI address GET_DEVICE_FD takes. */
  readonly device: string;
  /** Whose semantics to expect where 6.1 and 6.12 differ. */
  readonly flavour: KernelFlavour;
  /** os.release() of the machine running the suite. */
  readonly release: string;
}

const DEFAULT_DEVICE = '0000:00:04.0';

function envKind(): SysKind | undefined {
  const v = process.env['VGPU_SYS'];
  if (v === undefined || v === '') return undefined;
  if (v !== 'mock' && v !== 'native') throw new Error(`VGPU_SYS must be mock or native, not ${JSON.stringify(v)}`);
  return v;
}

function envMockFlavour(): KernelFlavour {
  const v = process.env['VGPU_MOCK_KERNEL'];
  if (v === undefined || v === '') return '6.1';
  if (v !== '6.1' && v !== '6.12') throw new Error(`VGPU_MOCK_KERNEL must be 6.1 or 6.12, not ${JSON.stringify(v)}`);
  return v;
}

/**
 * The flavour a real kernel release behaves like. The differences the suite knows
 * (EBADFD from SET_CONTAINER, 8-byte aligned capabilities) came between 6.1 and 6.12;
 * only those two releases are targets, so anything from 6.2 on is taken as 6.12.
 */
export function flavourOfRelease(release: string): KernelFlavour {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) throw new Error(`cannot parse kernel release ${JSON.stringify(release)}`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major < 6 || (major === 6 && minor < 2) ? '6.1' : '6.12';
}

function isMock(sys: SysLayer): sys is MockSysLayer {
  return sys.kind === 'mock' && 'kernel' in sys;
}

function openTarget(): Target {
  const device = process.env['VGPU_TEST_DEVICE'] || DEFAULT_DEVICE;
  const release = os.release();
  // The mock's flavour is passed even when openSys picks native (it is then unused).
  const sys = openSys({ kind: envKind(), mock: { kernel: envMockFlavour() } });
  const flavour = sys.kind === 'mock' ? envMockFlavour() : flavourOfRelease(release);
  if (isMock(sys) && !sys.sysfs.exists(`/sys/bus/pci/devices/${device}`)) {
    // A mock kernel without the device under test gets a simulated edu there, as the
    // real harness has a QEMU edu at that address.
    sys.kernel.registerPciDevice(createEduDevice(device));
  }
  return { sys, kind: sys.kind, device, flavour, release };
}

/** Open fds of this process, as /proc/self/fd lists them (readdir's own fd is counted both times). */
export function openFds(): string[] {
  return readdirSync('/proc/self/fd');
}

function describeFds(fds: readonly string[]): string {
  return fds.map((fd) => {
    try { return `${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`; } catch { return fd; }
  }).join(', ');
}

/**
 * Opens the target for one test file. On a real kernel the device's group can be open
 * only once at a time, so files take turns (a lock file); at the end of the file the
 * open fds must be exactly those there were at the start.
 */
export function setupFile(): Target {
  const target = openTarget();
  if (target.kind === 'native') acquireDeviceLock(target.device);
  const before = openFds();
  after(() => {
    try {
      const now = openFds();
      if (now.length !== before.length) {
        const leaked = now.filter((fd) => !before.includes(fd));
        const gone = before.filter((fd) => !now.includes(fd));
        throw new Error(`fd count changed from ${before.length} to ${now.length}; new: [${describeFds(leaked)}]; closed: [${gone.join(', ')}]`);
      }
    } finally {
      if (target.kind === 'native') releaseDeviceLock(target.device);
    }
  });
  return target;
}

/** /dev/vfio/<N> of the device's IOMMU group, found through sysfs. */
export function groupPath(t: Target): string {
  const link = t.sys.sysfs.readlink(`/sys/bus/pci/devices/${t.device}/iommu_group`);
  const n = link.split('/').filter((part) => part !== '').pop();
  if (n === undefined || !/^\d+$/.test(n)) throw new Error(`iommu_group of ${t.device} points at ${link}`);
  return `/dev/vfio/${n}`;
}

type Held = { kind: 'device' | 'group' | 'container' | 'other'; fd: number } | { kind: 'devmap' | 'memory'; mapping: Mapping };

/** Release order: device mappings, device fds, groups, containers, other fds (eventfds), memory. */
const releaseRank: Record<Held['kind'], number> = { devmap: 0, device: 1, group: 2, container: 3, other: 4, memory: 5 };

/** An open container with the device's group attached and the TYPE1v2 IOMMU set. */
export interface Attached { container: number; group: number }
export interface Opened extends Attached { device: number }

/**
 * Everything one case opens, closed in the kernel's order when the case ends — also
 * when it fails — so no case leaks an fd or a mapping into the next.
 */
export class Session {
  private held: Held[] = [];

  constructor(readonly t: Target) {}

  get sys(): SysLayer { return this.t.sys; }

  private track<H extends Held>(h: H): H { this.held.push(h); return h; }

  openContainer(): number {
    return this.track({ kind: 'container', fd: this.sys.open('/dev/vfio/vfio') }).fd;
  }

  openGroup(): number {
    return this.track({ kind: 'group', fd: this.sys.open(groupPath(this.t)) }).fd;
  }

  /** Tracks a device fd the case obtained itself (GET_DEVICE_FD as the case under test). */
  adoptDevice(fd: number): number { return this.track({ kind: 'device', fd }).fd; }

  /** Tracks any other fd (an eventfd, a file) so it is closed at the end. */
  adopt(fd: number): number { return this.track({ kind: 'other', fd }).fd; }

  eventfd(): number { return this.adopt(this.sys.eventfd(0)); }

  /** A number that is no open fd: an eventfd's, closed again. */
  closedFd(): number {
    const fd = this.sys.eventfd(0);
    this.sys.close(fd);
    return fd;
  }

  allocate(length: number): Mapping {
    return this.track({ kind: 'memory', mapping: this.sys.allocate(length) }).mapping;
  }

  mmap(fd: number, offset: bigint, length: number, prot = PROT_READ | PROT_WRITE): Mapping {
    return this.track({ kind: 'devmap', mapping: this.sys.mmap(fd, offset, length, prot) }).mapping;
  }

  /** Closes one tracked fd now (the case wants it closed midway). */
  close(fd: number): void {
    const i = this.held.findIndex((h) => 'fd' in h && h.fd === fd);
    if (i < 0) throw new Error(`fd ${fd} is not held by this session`);
    this.held.splice(i, 1);
    this.sys.close(fd);
  }

  munmap(mapping: Mapping): void {
    this.held = this.held.filter((h) => !('mapping' in h) || h.mapping !== mapping);
    this.sys.munmap(mapping);
  }

  setContainer(group: number, container: number): void {
    const arg = new Uint8Array(4);
    new DataView(arg.buffer).setInt32(0, container, true);
    this.sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, arg);
  }

  setIommu(container: number, type: number = extensions.VFIO_TYPE1v2_IOMMU): void {
    this.sys.ioctl(container, ioctls.VFIO_SET_IOMMU, type);
  }

  getDeviceFd(group: number, name: string = this.t.device): number {
    return this.adoptDevice(this.sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, cString(name)));
  }

  /** Container + group, attached, TYPE1v2 set. */
  attach(): Attached {
    const container = this.openContainer();
    const group = this.openGroup();
    this.setContainer(group, container);
    this.setIommu(container);
    return { container, group };
  }

  /** Container + group + the device's fd. */
  open(): Opened {
    const a = this.attach();
    return { ...a, device: this.getDeviceFd(a.group) };
  }

  /** Closes everything still held, in release order; the first error is rethrown after all are tried. */
  closeAll(): void {
    const order = this.held.map((h, i) => ({ h, i }))
      .sort((a, b) => releaseRank[a.h.kind] - releaseRank[b.h.kind] || b.i - a.i);
    this.held = [];
    let first: unknown;
    for (const { h } of order) {
      try {
        if ('fd' in h) this.sys.close(h.fd); else this.sys.munmap(h.mapping);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}

/** Runs `fn` in a new session and closes what it opened, whatever happens. */
export async function withSession<T>(t: Target, fn: (s: Session) => T | Promise<T>): Promise<T> {
  const s = new Session(t);
  let result: T;
  try {
    result = await fn(s);
  } catch (err) {
    try { s.closeAll(); } catch { /* the case's own error matters more */ }
    throw err;
  }
  s.closeAll();
  return result;
}

/** A NUL-terminated string, as GET_DEVICE_FD reads its char * argument. */
export function cString(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
