// Every fuzz target, by name.
import { erase, type ErasedTarget } from '../target.js';
import { configTarget } from './config.js';
import { definitionTarget } from './definition.js';
import { ioctlTarget } from './ioctl.js';
import { protocolTarget } from './protocol.js';
import { sysfsTarget } from './sysfs.js';
import { vfioUserTarget } from './vfio-user.js';

export const TARGETS: readonly ErasedTarget[] = [
  erase(ioctlTarget),
  erase(sysfsTarget),
  erase(configTarget),
  erase(definitionTarget),
  erase(protocolTarget),
  erase(vfioUserTarget),
];

export function targetNamed(name: string): ErasedTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target ${JSON.stringify(name)} (there are: ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
