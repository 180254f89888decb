// Where the mdev parity suites run: the same compiled files run on the mock kernel's
// mdev bus (`npm test`, and the harness's mock side) and on the real kernel's in a QEMU
// guest with the kernel's samples loaded (VGPU_SYS=native). Each suite works on
// "subjects": on the real kernel the samples mtty, mdpy and mbochs, on the mock one
// parent of ours standing in for each, so that cases carry the same names on both sides
// and the parity compares them row by row. What a driver decides for itself (a type's
// description, the errno of a create on a full type) is part of the subject, and the
// case that observes it declares why it may differ.
import os from 'node:os';
import { after } from 'node:test';
import { openSys, type MockSysLayer } from '../../src/sys/index.js';
import { chooseSysKind } from '../../src/sys/kind.js';
import type { SysLayer } from '../../src/sys/types.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { SimGpuBoard, simgpuDriver } from '../../src/vendors/simgpu/index.js';
import { DisplayParent, displayDriver } from '../../src/vendors/display/index.js';
import { flavourOfRelease, openFds, type KernelFlavour, type Target } from '../conformance/target.js';

export type SubjectKey = 'mtty' | 'mdpy' | 'mbochs';

export interface Subject {
  /** The kernel sample this subject is (or stands in for): the prefix of its case names. */
  readonly key: SubjectKey;
  readonly parent: string;
  /** The type the cases create. */
  readonly type: string;
  /** Another type of the same parent (for a duplicate UUID across types). */
  readonly otherType: string;
  /** Whether the driver gives its types a description (mdev_types_core_is_visible). */
  readonly description: boolean;
  /** create on a full type: the driver's probe errno, or the core's EUSERS when it has no get_available. */
  readonly fullErrno: string;
}

/** The samples as Linux 6.1 and 6.12 build them (samples/vfio-mdev). */
const KERNEL_SUBJECTS: readonly Subject[] = [
  // mtty: get_available; mtty_init_dev refuses ENOSPC when the port pool is short; no show_description.
  { key: 'mtty', parent: 'mtty', type: 'mtty-2', otherType: 'mtty-1', description: false, fullErrno: 'ENOSPC' },
  // mdpy: no get_available, so mdev_device_create counts max_instances itself (EUSERS).
  { key: 'mdpy', parent: 'mdpy', type: 'mdpy-xga', otherType: 'mdpy-vga', description: true, fullErrno: 'EUSERS' },
  // mbochs: get_available; mbochs_init_dev refuses ENOSPC when the memory pool is short.
  { key: 'mbochs', parent: 'mbochs', type: 'mbochs-large', otherType: 'mbochs-small', description: true, fullErrno: 'ENOSPC' },
];

/**
 * Our stand-ins on the mock kernel. Our vendors report available_instances, as a driver
 * with get_available does, so a full type is that kind's ENOSPC (mtty's, mbochs') for
 * each of them; mdpy, which leaves the count to the mdev core, gets the core's EUSERS.
 */
const MOCK_SUBJECTS: readonly Subject[] = [
  { key: 'mtty', parent: 'simgpu0', type: 'simgpu-1Q', otherType: 'simgpu-0Q', description: true, fullErrno: 'ENOSPC' },
  { key: 'mdpy', parent: 'display1', type: 'display-xga', otherType: 'display-vga', description: true, fullErrno: 'ENOSPC' },
  { key: 'mbochs', parent: 'display0', type: 'display-hd', otherType: 'display-vga', description: true, fullErrno: 'ENOSPC' },
];

/**
 * The display parity's subject: mbochs-medium and our display-xga both have 16 MiB of
 * video memory, so a mode fits one exactly when it fits the other.
 */
export interface DisplaySubject {
  readonly parent: string;
  readonly type: string;
}
const KERNEL_DISPLAY: DisplaySubject = { parent: 'mbochs', type: 'mbochs-medium' };
const MOCK_DISPLAY: DisplaySubject = { parent: 'display0', type: 'display-xga' };

export interface MdevTarget extends Target {
  readonly subjects: readonly Subject[];
  /** Undefined on a real kernel without mbochs. */
  readonly display: DisplaySubject | undefined;
}

function envMockFlavour(): KernelFlavour {
  const v = process.env['VGPU_MOCK_KERNEL'];
  if (v === undefined || v === '') return '6.1';
  if (v !== '6.1' && v !== '6.12') throw new Error(`VGPU_MOCK_KERNEL must be 6.1 or 6.12, not ${JSON.stringify(v)}`);
  return v;
}

/** A mock kernel with no PCI device and the three stand-in parents on its mdev bus. */
function mockWorld(flavour: KernelFlavour): { sys: MockSysLayer; close(): void } {
  const sys = openSys({ kind: 'mock', mock: { kernel: flavour, devices: [] } }) as MockSysLayer;
  const registry = new VgpuRegistry();
  registry.registerDriver(simgpuDriver);
  registry.registerDriver(displayDriver);
  attachMockKernel(registry, sys.kernel);
  // 2 GiB: simgpu-1Q has room for two, and a live type leaves none for the others (as mtty's shared ports narrow both types).
  registry.addParent(simgpuDriver.name, new SimGpuBoard({ name: 'simgpu0', framebufferSize: 2 * 1024 * 1024 * 1024 }));
  registry.addParent(displayDriver.name, new DisplayParent({ name: 'display1', videoMemory: 64 * 1024 * 1024 }));
  registry.addParent(displayDriver.name, new DisplayParent({ name: 'display0' }));
  return {
    sys,
    close() {
      for (const v of registry.list()) registry.remove(v.uuid);
    },
  };
}

/**
 * The target of one test file: the fd layer, the flavour and the subjects present (on
 * a real kernel, the samples that are loaded; a machine without them runs no case).
 * At the end of the file no fd may be left open.
 */
export function setupMdevFile(): MdevTarget {
  const release = os.release();
  const kind = chooseSysKind();
  let sys: SysLayer;
  let flavour: KernelFlavour;
  let subjects: readonly Subject[];
  let display: DisplaySubject | undefined;
  let close = (): void => {};
  if (kind === 'mock') {
    flavour = envMockFlavour();
    const world = mockWorld(flavour);
    sys = world.sys;
    close = world.close;
    subjects = MOCK_SUBJECTS;
    display = MOCK_DISPLAY;
  } else {
    sys = openSys({ kind: 'native' });
    flavour = flavourOfRelease(release);
    subjects = KERNEL_SUBJECTS.filter((s) => sys.sysfs.exists(`/sys/class/mdev_bus/${s.parent}`));
    display = sys.sysfs.exists(`/sys/class/mdev_bus/${KERNEL_DISPLAY.parent}`) ? KERNEL_DISPLAY : undefined;
  }
  const before = openFds().length;
  after(() => {
    close();
    const now = openFds().length;
    if (now !== before) throw new Error(`fd count changed from ${before} to ${now}`);
  });
  return { sys, kind: sys.kind, device: 'mdev', flavour, release, subjects, display };
}

/** Test UUIDs: one block per subject and suite, so no two cases ever share one. */
export function uuidFor(subject: Pick<Subject, 'key'>, suite: number, n: number): string {
  const block = { mtty: 1, mdpy: 2, mbochs: 3 }[subject.key];
  return `c0ffee${suite.toString(16).padStart(2, '0')}-0000-4000-8000-${(block * 0x10000 + n).toString(16).padStart(12, '0')}`;
}
