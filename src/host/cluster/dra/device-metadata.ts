// DRA device metadata (KEP-5304, the DRA Device Attributes Downward API), which KubeVirt
// 1.9's virt-launcher reads to learn the mdevUUID of a vGPU it got through DRA. Per
// claim and request, a DeviceMetadata JSON stream (one object per API version, newest
// first, as the kubelet plugin helper of k8s.io/dynamic-resource-allocation writes it) is
// kept in the plugin folder, <plugin dir>/dra-device-metadata/<ns>_<claim>/<request>/
// metadata.json, and a CDI spec of kind "<driver>/metadata" bind-mounts it read-only at
//   /var/run/kubernetes.io/dra-device-attributes/resourceclaims/<claim>/<request>/<driver>-metadata.json
// or, for a claim made from a template (it carries the pod-claim-name annotation),
//   .../resourceclaimtemplates/<pod claim name>/<request>/<driver>-metadata.json
// so the pod finds it without knowing the generated claim name.
import { rmSync } from 'node:fs';
import { join, posix } from 'node:path';
import { makeDirectories, writeFileAtomic } from '../../atomic-write.js';
import { CDI_VERSION, type CdiDevice, type CdiSpec } from './cdi.js';
import type { Attribute } from './slices.js';

export const METADATA_CONTAINER_DIR = '/var/run/kubernetes.io/dra-device-attributes';
export const METADATA_HOST_SUBDIR = 'dra-device-metadata';
export const METADATA_CDI_CLASS = 'metadata';
/** Set by the ResourceClaim controller on claims it makes from a template: the pod's name for the claim. */
export const POD_CLAIM_NAME_ANNOTATION = 'resource.kubernetes.io/pod-claim-name';
/** Written in this order; a reader takes the first it knows (KubeVirt 1.9.0 knows only v1alpha1). */
export const METADATA_API_VERSIONS = ['metadata.resource.k8s.io/v1beta1', 'metadata.resource.k8s.io/v1alpha1'] as const;

export interface MetadataDevice { driver: string; pool: string; name: string; attributes: Record<string, Attribute> }

export interface MetadataClaim { namespace: string; name: string; uid: string; podClaimName: string | undefined }

/** The DeviceMetadata object of one request, in one API version. */
export interface DeviceMetadataObject {
  kind: 'DeviceMetadata';
  apiVersion: string;
  metadata: { name: string; namespace: string; uid: string; generation: number; creationTimestamp: null };
  podClaimName?: string;
  requests: { name: string; devices: MetadataDevice[] }[];
}

/** What prepare wrote for a claim (kept in the checkpoint so unprepare removes exactly that). */
export interface WrittenMetadata {
  /** <plugin dir>/dra-device-metadata/<ns>_<claim>. */
  dir: string;
  cdiSpec: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** "gpu/large" (a subrequest of firstAvailable) is filed under "gpu". */
export function baseRequestName(request: string): string {
  return request.split('/')[0]!;
}

function checkName(what: string, value: string, pattern: RegExp): void {
  if (!pattern.test(value) || value.includes('..')) throw new Error(`the ${what} ${JSON.stringify(value)} is not a valid Kubernetes name; no metadata file is made from it`);
}

export function hostMetadataDir(pluginDir: string, namespace: string, claimName: string): string {
  return join(pluginDir, METADATA_HOST_SUBDIR, `${namespace}_${claimName}`);
}

export function containerMetadataPath(driver: string, claim: MetadataClaim, request: string): string {
  const base = claim.podClaimName ? posix.join('resourceclaimtemplates', claim.podClaimName) : posix.join('resourceclaims', claim.name);
  return posix.join(METADATA_CONTAINER_DIR, base, request, `${driver}-metadata.json`);
}

export function metadataCdiSpecPath(cdiDir: string, driver: string, claimUid: string): string {
  return join(cdiDir, `${driver}-${METADATA_CDI_CLASS}_${claimUid}.json`);
}

export function metadataCdiDeviceId(driver: string, claimUid: string, request: string): string {
  return `${driver}/${METADATA_CDI_CLASS}=${claimUid}_${request}`;
}

export function deviceMetadataObject(apiVersion: string, claim: MetadataClaim, request: string, devices: MetadataDevice[]): DeviceMetadataObject {
  // creationTimestamp: null is what the Go encoder writes for an unset metav1.Time.
  // Fields in the Go types' order: kind, apiVersion, metadata, podClaimName, requests.
  return {
    kind: 'DeviceMetadata', apiVersion,
    metadata: { name: claim.name, namespace: claim.namespace, uid: claim.uid, generation: 1, creationTimestamp: null },
    ...(claim.podClaimName ? { podClaimName: claim.podClaimName } : {}),
    requests: [{ name: request, devices }],
  };
}

export function encodeMetadataStream(claim: MetadataClaim, request: string, devices: MetadataDevice[]): string {
  return METADATA_API_VERSIONS.map((v) => `${JSON.stringify(deviceMetadataObject(v, claim, request, devices), null, 2)}\n`).join('');
}

export interface MetadataWriterOptions { driver: string; pluginDir: string; cdiDir: string }

/**
 * Writes the metadata files of a claim (request → its devices; names may carry a
 * subrequest) and the CDI spec mounting them. Returns what was written and, by request
 * name as given, the CDI device id to hand the kubelet. Nothing is left on failure.
 */
export function writeClaimMetadata(options: MetadataWriterOptions, claim: MetadataClaim, requests: Map<string, MetadataDevice[]>): { written: WrittenMetadata; cdiIds: Map<string, string> } {
  checkName('namespace', claim.namespace, DNS_LABEL);
  checkName('claim name', claim.name, DNS_SUBDOMAIN);
  if (claim.podClaimName !== undefined) checkName('pod claim name', claim.podClaimName, DNS_LABEL);
  const written: WrittenMetadata = { dir: hostMetadataDir(options.pluginDir, claim.namespace, claim.name), cdiSpec: metadataCdiSpecPath(options.cdiDir, options.driver, claim.uid) };
  const cdiIds = new Map<string, string>();
  const cdiDevices = new Map<string, CdiDevice>();
  try {
    for (const [request, devices] of requests) {
      const base = baseRequestName(request);
      checkName('request name', base, DNS_LABEL);
      if (cdiDevices.has(base)) throw new Error(`request ${base} appears twice in the claim's allocation (as ${request})`);
      const requestDir = join(written.dir, base);
      makeDirectories(requestDir, 0o755);
      const hostPath = join(requestDir, 'metadata.json');
      // World-readable: virt-launcher reads it as the unprivileged qemu user.
      writeFileAtomic(hostPath, encodeMetadataStream(claim, request, devices), 0o644);
      cdiDevices.set(base, {
        name: `${claim.uid}_${base}`,
        containerEdits: { mounts: [{ hostPath, containerPath: containerMetadataPath(options.driver, claim, base), options: ['ro', 'bind'] }] },
      });
      cdiIds.set(request, metadataCdiDeviceId(options.driver, claim.uid, base));
    }
    makeDirectories(options.cdiDir, 0o755);
    const spec: CdiSpec = { cdiVersion: CDI_VERSION, kind: `${options.driver}/${METADATA_CDI_CLASS}`, devices: [...cdiDevices.values()] };
    writeFileAtomic(written.cdiSpec, `${JSON.stringify(spec, null, 2)}\n`, 0o644);
  } catch (err) {
    removeClaimMetadata(written);
    throw err;
  }
  return { written, cdiIds };
}

export function removeClaimMetadata(written: WrittenMetadata): void {
  rmSync(written.cdiSpec, { force: true });
  rmSync(written.dir, { recursive: true, force: true });
}
