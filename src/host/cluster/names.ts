// The names Kubernetes and KubeVirt give vGPU capacity: an extended resource per type
// (KubeVirt's convention: "<domain>/<type name with spaces as _>"), the environment
// variable virt-launcher reads the allocated UUIDs from, DNS labels for DRA device
// names, and name-based UUIDs for DRA devices that do not exist yet.
import { createHash } from 'node:crypto';

/** The resource domain the device plugin advertises types under unless told. */
export const DEFAULT_RESOURCE_DOMAIN = 'vfio-vgpu.io';

/** KubeVirt's prefix for mediated devices handed over by a device plugin. */
export const MDEV_ENV_PREFIX = 'MDEV_PCI_RESOURCE';

const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function validateResourceDomain(domain: string): string {
  if (!DOMAIN.test(domain)) throw new Error(`resource domain ${JSON.stringify(domain)} is not a DNS subdomain (like vfio-vgpu.io)`);
  return domain;
}

/**
 * The extended resource of a type: spaces become '_' (KubeVirt's convention, so
 * "GRID M60-4Q" is "<domain>/GRID_M60-4Q"); any other character a resource name cannot
 * hold becomes '_' too, and the name is cut to the 63 characters a name part may have.
 */
export function resourceNameOf(domain: string, typeName: string): string {
  let name = typeName.trim().replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63);
  name = name.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  if (name === '') throw new Error(`type name ${JSON.stringify(typeName)} gives no resource name`);
  return `${domain}/${name}`;
}

/** The variable virt-launcher reads: MDEV_PCI_RESOURCE_<name upper-cased, '/' and '.' as '_'>. */
export function mdevEnvName(resourceName: string): string {
  return `${MDEV_ENV_PREFIX}_${resourceName.toUpperCase().replace(/[/.]/g, '_')}`;
}

/** A plugin socket's file name for a resource (in the kubelet's device-plugins folder). */
export function pluginSocketName(resourceName: string): string {
  return `vfio-vgpu-${resourceName.replace(/[^A-Za-z0-9_.-]/g, '_')}.sock`;
}

/** A DNS label (lower case, a-z0-9 and '-', at most 63) made from any text. */
export function dnsLabel(text: string): string {
  const label = text.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return label === '' ? 'x' : label;
}

/** The DRA device name of a vGPU: "vgpu-<uuid>" (41 characters, a DNS label). */
export function draDeviceName(uuid: string): string {
  return `vgpu-${uuid.toLowerCase()}`;
}

/** The UUID in a DRA device name, or undefined when it is not one of ours. */
export function uuidOfDraDevice(name: string): string | undefined {
  const m = /^vgpu-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(name);
  return m?.[1];
}

/** An RFC 4122 version 5 (SHA-1, name-based) UUID: the same name gives the same UUID on every run. */
export function nameBasedUuid(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new Error(`namespace ${namespace} is not a UUID`);
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
