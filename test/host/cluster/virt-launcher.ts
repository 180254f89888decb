// How KubeVirt's virt-launcher reads what a device plugin's Allocate gave the pod: for
// each permitted mediated device resource, the variable MDEV_PCI_RESOURCE_<name
// upper-cased, '/' and '.' as '_'> holds the mdev UUIDs comma-joined; empty entries
// are skipped, and each hostDevice of that resource takes the next UUID in order.
// Written independently of the plugin's own code, so a mistake in one shows in the other.
import { readFileSync, readdirSync } from 'node:fs';
import { join as joinPath, posix } from 'node:path';
export function envVarOf(resourceName: string): string {
  return `MDEV_PCI_RESOURCE_${resourceName.toUpperCase().split('/').join('_').split('.').join('_')}`;
}

export function mdevUuidsFor(env: Record<string, string>, resourceName: string): string[] {
  const value = env[envVarOf(resourceName)];
  if (value === undefined) return [];
  return value.split(',').filter((uuid) => uuid !== '');
}

/** The UUID each of a VMI's hostDevices of `resourceName` gets, in order (an error when they run out). */
export function assignHostDevices(env: Record<string, string>, resourceName: string, count: number): string[] {
  const pool = mdevUuidsFor(env, resourceName);
  if (pool.length < count) throw new Error(`virt-launcher: ${count} devices of ${resourceName} wanted, ${pool.length} in ${envVarOf(resourceName)}`);
  return pool.slice(0, count);
}

// DRA (KubeVirt 1.9, VEP 10 over KEP-5304): the container sees what the CDI devices the
// kubelet was given mount; virt-launcher finds the claim's entry in the VMI's
// spec.resourceClaims, looks in resourceclaims/<resourceClaimName>/<request>/ or, for a
// template, resourceclaimtemplates/<pod claim name>/<request>/, globs *-metadata.json
// (exactly one), decodes the JSON stream taking the first object of a version it knows,
// finds the request, expects exactly one device and reads attributes.mdevUUID.string.

export const DRA_METADATA_DIR = '/var/run/kubernetes.io/dra-device-attributes';
/** What KubeVirt v1.9.0's own copy of the metadata types decodes. */
export const KUBEVIRT_METADATA_VERSIONS = ['metadata.resource.k8s.io/v1alpha1'];

export interface VmiResourceClaim { name: string; resourceClaimName?: string; resourceClaimTemplateName?: string }

/** The container's view, as a CDI runtime builds it: container path → host path, for the ids given. */
export function cdiMounts(cdiDir: string, cdiDeviceIds: string[]): Map<string, string> {
  const specs = readdirSync(cdiDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(joinPath(cdiDir, f), 'utf8')) as {
    kind: string; devices: { name: string; containerEdits: { mounts?: { hostPath: string; containerPath: string; options?: string[] }[] } }[];
  });
  const out = new Map<string, string>();
  for (const id of cdiDeviceIds) {
    const m = /^([^=]+)=(.+)$/.exec(id);
    const device = m ? specs.filter((s) => s.kind === m[1]).flatMap((s) => s.devices).find((d) => d.name === m[2]) : undefined;
    if (!device) throw new Error(`CDI: unresolvable device ${id}`);
    for (const mount of device.containerEdits.mounts ?? []) {
      if (mount.containerPath.startsWith(`${DRA_METADATA_DIR}/`) && !mount.options?.includes('ro')) throw new Error(`CDI: metadata mount ${mount.containerPath} is not read-only`);
      out.set(mount.containerPath, mount.hostPath);
    }
  }
  return out;
}

/** Splits a stream of concatenated JSON values. */
export function decodeJsonStream(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0, start = -1, inString = false, escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') { if (depth++ === 0) start = i; }
    else if (c === '}' || c === ']') { if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1))); }
    else if (depth === 0 && !/\s/.test(c)) throw new Error(`JSON stream: stray ${c} at ${i}`);
  }
  if (depth !== 0 || inString) throw new Error('JSON stream: truncated');
  return out;
}

interface MetadataObject { apiVersion: string; requests?: { name: string; devices?: { attributes?: Record<string, { string?: string }> }[] }[] }

export function draMdevUuid(mounts: Map<string, string>, claims: VmiResourceClaim[], claimName: string, requestName: string, versions = KUBEVIRT_METADATA_VERSIONS): string {
  const rc = claims.find((c) => c.name === claimName);
  if (!rc) throw new Error(`virt-launcher: no resourceClaim ${claimName} in the VMI`);
  const sub = rc.resourceClaimName !== undefined ? posix.join('resourceclaims', rc.resourceClaimName) : posix.join('resourceclaimtemplates', rc.name);
  const dir = posix.join(DRA_METADATA_DIR, sub, requestName);
  const files = [...mounts.keys()].filter((p) => posix.dirname(p) === dir && posix.basename(p).endsWith('-metadata.json'));
  if (files.length !== 1) throw new Error(`virt-launcher: ${files.length} metadata files in ${dir}, want exactly one`);
  const objects = decodeJsonStream(readFileSync(mounts.get(files[0]!)!, 'utf8')) as MetadataObject[];
  const object = objects.find((o) => versions.includes(o.apiVersion));
  if (!object) throw new Error(`virt-launcher: no supported apiVersion in ${files[0]}`);
  const requests = (object.requests ?? []).filter((r) => r.name === requestName);
  if (requests.length !== 1) throw new Error(`virt-launcher: request ${requestName} found ${requests.length} times`);
  const devices = requests[0]!.devices ?? [];
  if (devices.length !== 1) throw new Error(`virt-launcher: ${devices.length} devices in request ${requestName}, want one`);
  const uuid = devices[0]!.attributes?.['mdevUUID']?.string;
  if (!uuid) throw new Error('virt-launcher: no mdevUUID attribute');
  return uuid;
}
