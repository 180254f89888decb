// The KubeVirt configuration that lets VMs use this host's vGPUs through the device
// plugin: permittedHostDevices.mediatedDevices, one entry per type name, selecting the
// mdev type by its exact name (what KubeVirt matches: the type's sysfs `name`), naming
// the resource the plugin advertises, and leaving allocation to the plugin
// (externalResourceProvider: true). No mediatedDevicesConfiguration: KubeVirt must not
// create or remove the vGPUs itself; the vgpu daemon and its definitions own them.
import type { TypeInfo } from '../api.js';
import { resourceNameOf } from './names.js';

export interface PermittedMediatedDevice {
  mdevNameSelector: string;
  resourceName: string;
  externalResourceProvider: true;
}

export function permittedMediatedDevices(types: readonly TypeInfo[], domain: string): PermittedMediatedDevice[] {
  const byName = new Map<string, PermittedMediatedDevice>();
  for (const t of types) {
    if (!byName.has(t.name)) byName.set(t.name, { mdevNameSelector: t.name, resourceName: resourceNameOf(domain, t.name), externalResourceProvider: true });
  }
  return [...byName.values()].sort((a, b) => (a.resourceName < b.resourceName ? -1 : 1));
}

/** The KubeVirt CR's part, as YAML (strings JSON-quoted, which YAML reads as they are). */
export function kubevirtYaml(devices: readonly PermittedMediatedDevice[]): string[] {
  const lines = [
    'apiVersion: kubevirt.io/v1',
    'kind: KubeVirt',
    'metadata:',
    '  name: kubevirt',
    '  namespace: kubevirt',
    'spec:',
    '  configuration:',
    '    permittedHostDevices:',
  ];
  if (devices.length === 0) return [...lines, '      mediatedDevices: []'];
  lines.push('      mediatedDevices:');
  for (const d of devices) {
    lines.push(`      - mdevNameSelector: ${JSON.stringify(d.mdevNameSelector)}`);
    lines.push(`        resourceName: ${JSON.stringify(d.resourceName)}`);
    lines.push('        externalResourceProvider: true');
  }
  return lines;
}
