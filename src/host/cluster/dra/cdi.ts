// CDI (Container Device Interface) specs: how the container runtime is told what a
// prepared claim brings into a container. One spec file per claim under the CDI folder
// (/var/run/cdi), kind "<vendor>/vgpu", one CDI device per vGPU named
// "<claim uid>-<device>", with the VFIO device nodes, the vGPU's UUID in the
// environment, and for a vGPU served over vfio-user its socket mounted.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LiveDevice } from '../../api.js';
import { makeDirectories, writeFileAtomic } from '../../atomic-write.js';

export const CDI_VERSION = '0.6.0';
export const CDI_CLASS = 'vgpu';

export interface CdiDeviceNode { path: string; type?: string; permissions?: string }
export interface CdiMount { hostPath: string; containerPath: string; options?: string[] }
export interface CdiDevice {
  name: string;
  annotations?: Record<string, string>;
  containerEdits: { env?: string[]; deviceNodes?: CdiDeviceNode[]; mounts?: CdiMount[] };
}
export interface CdiSpec { cdiVersion: string; kind: string; devices: CdiDevice[] }

/** The variable a container reads a vGPU's UUID from: VGPU_MDEV_UUID_<device name, upper case, '-' as '_'>. */
export function uuidEnvName(deviceName: string): string {
  return `VGPU_MDEV_UUID_${deviceName.toUpperCase().replace(/-/g, '_')}`;
}

export function cdiDevice(claimUid: string, deviceName: string, device: LiveDevice): CdiDevice {
  const nodes: CdiDeviceNode[] = [{ path: '/dev/vfio/vfio', type: 'c', permissions: 'rw' }];
  if (device.group >= 0) nodes.push({ path: `/dev/vfio/${device.group}`, type: 'c', permissions: 'rw' });
  const out: CdiDevice = {
    name: `${claimUid}-${deviceName}`,
    annotations: { 'vfio-vgpu.io/mdevUUID': device.uuid },
    containerEdits: { env: [`${uuidEnvName(deviceName)}=${device.uuid}`], deviceNodes: nodes },
  };
  if (device.vfioUser) out.containerEdits.mounts = [{ hostPath: device.vfioUser.socket, containerPath: device.vfioUser.socket, options: ['bind'] }];
  return out;
}

/** The fully qualified CDI device id the kubelet passes on: "<vendor>/vgpu=<name>". */
export function cdiDeviceId(vendor: string, device: CdiDevice): string {
  return `${vendor}/${CDI_CLASS}=${device.name}`;
}

/** The spec file of a claim: <dir>/<vendor>-vgpu_<claim uid>.json. */
export function cdiSpecPath(dir: string, vendor: string, claimUid: string): string {
  return join(dir, `${vendor}-${CDI_CLASS}_${claimUid}.json`);
}

export function writeCdiSpec(path: string, dir: string, vendor: string, devices: CdiDevice[]): void {
  makeDirectories(dir, 0o755);
  const spec: CdiSpec = { cdiVersion: CDI_VERSION, kind: `${vendor}/${CDI_CLASS}`, devices };
  writeFileAtomic(path, `${JSON.stringify(spec, null, 2)}\n`, 0o644);
}

export function removeCdiSpec(path: string): void {
  rmSync(path, { force: true });
}
