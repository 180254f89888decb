// What the mdev sysfs parity cases observe: the outcome of a write (0 or the errno), the
// text of a read, where a link leads, all through the Sysfs interface both fd layers
// implement; and the paths of a subject's parent, type and devices.
import { posix } from 'node:path';
import type { SysLayer } from '../../src/sys/types.js';
import { attempt, type Outcome } from '../conformance/outcome.js';
import type { Subject } from './target.js';

export const MDEV_BUS_CLASS = '/sys/class/mdev_bus';
export const MDEV_BUS_DEVICES = '/sys/bus/mdev/devices';
/** The attributes and links the mdev core gives every type (mdev_sysfs.c) and every device. */
export const CORE_TYPE_ENTRIES = ['available_instances', 'create', 'description', 'device_api', 'devices', 'name'];
export const CORE_DEVICE_ENTRIES = ['iommu_group', 'mdev_type', 'remove'];

/** A write of `value` in one write(2): {ret: 0} or {errno}. */
export function write(sys: SysLayer, path: string, value: string): Outcome {
  return attempt(() => {
    sys.sysfs.write(path, value);
    return 0;
  });
}

/** A read: the text (its trailing newline removed), or the errno. */
export function read(sys: SysLayer, path: string): { text: string } | { errno: string } {
  let text = '';
  const out = attempt(() => {
    text = sys.sysfs.read(path);
    return 0;
  });
  return 'errno' in out ? out : { text };
}

/** The absolute path a symlink leads to (one level: sysfs links point at real directories). */
export function linkTarget(sys: SysLayer, path: string): string {
  return posix.resolve(posix.dirname(path), sys.sysfs.readlink(path));
}

export function isLink(sys: SysLayer, path: string): boolean {
  return 'ret' in attempt(() => {
    sys.sysfs.readlink(path);
    return 0;
  });
}

/** The paths a subject's cases use. */
export class SubjectPaths {
  constructor(readonly sys: SysLayer, readonly subject: Subject) {}

  get classLink(): string {
    return `${MDEV_BUS_CLASS}/${this.subject.parent}`;
  }

  /** The parent device's own directory, where the class link leads. */
  get parentDir(): string {
    return linkTarget(this.sys, this.classLink);
  }

  /** The type's directory as users reach it: through the class link. */
  typeDir(type = this.subject.type): string {
    return `${this.classLink}/mdev_supported_types/${type}`;
  }

  /** The type's real directory. */
  realTypeDir(type = this.subject.type): string {
    return `${this.parentDir}/mdev_supported_types/${type}`;
  }

  create(uuid: string, type = this.subject.type): Outcome {
    return write(this.sys, `${this.typeDir(type)}/create`, uuid);
  }

  busLink(uuid: string): string {
    return `${MDEV_BUS_DEVICES}/${uuid}`;
  }

  exists(uuid: string): boolean {
    return this.sys.sysfs.exists(this.busLink(uuid));
  }

  available(type = this.subject.type): number {
    const r = read(this.sys, `${this.typeDir(type)}/available_instances`);
    if (!('text' in r) || !/^\d+$/.test(r.text)) throw new Error(`available_instances of ${type} read ${JSON.stringify(r)}`);
    return Number(r.text);
  }

  devices(type = this.subject.type): string[] {
    return this.sys.sysfs.list(`${this.typeDir(type)}/devices`);
  }

  /** Removes a device the case made, if it is there (for cleanup: errors are the case's to see). */
  removeIfPresent(uuid: string): void {
    if (this.exists(uuid)) this.sys.sysfs.write(`${this.busLink(uuid)}/remove`, '1');
  }
}
