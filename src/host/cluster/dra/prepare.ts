// NodePrepareResources and NodeUnprepareResources for one claim at a time: the claim is
// read from the API server (its UID must be the one the kubelet names), its devices of
// this driver and this node's pool are taken (a live vGPU reserved, a published one not
// yet made created with the very UUID that was published), a CDI spec is written, and
// the KEP-5304 device metadata (with mdevUUID, for KubeVirt) is written and mounted by a
// second CDI spec, and the checkpoint records it all; unprepare undoes exactly that. Both are idempotent:
// a claim prepared before gets the same answer, one not prepared is already undone.
import type { LiveDevice, StartRequest } from '../../api.js';
import type { AllocationHolds } from '../../holds.js';
import type { DraClaim, DraDevice, NodePrepareResourceResponse } from '../proto/messages.js';
import { uuidOfDraDevice } from '../names.js';
import { cdiDevice, cdiDeviceId, cdiSpecPath, removeCdiSpec, writeCdiSpec, type CdiDevice } from './cdi.js';
import type { Checkpoint, PreparedClaim, PreparedDevice } from './checkpoint.js';
import { httpStatusOf, type ClusterApi } from './cluster-api.js';
import type { OfferedDevice } from './devices.js';
import { POD_CLAIM_NAME_ANNOTATION, removeClaimMetadata, writeClaimMetadata, type MetadataDevice, type WrittenMetadata } from './device-metadata.js';
import { deviceAttributes } from './slices.js';

export interface DraHost {
  liveDevice(uuid: string): LiveDevice | undefined;
  start(request: StartRequest): Promise<string>;
  stop(uuid: string, options?: { force?: boolean }): Promise<void>;
  holds: AllocationHolds;
}

export interface PreparerOptions {
  driver: string;
  node: string;
  cdiDir: string;
  /** The driver's plugin folder, where the metadata files live. */
  pluginDir: string;
  host: DraHost;
  api: ClusterApi;
  checkpoint: Checkpoint;
  /** The devices published now, by name. */
  offered: () => Map<string, OfferedDevice>;
}

export const DRA_HOLDER = 'dra:';

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ClaimPreparer {
  constructor(private readonly options: PreparerOptions) {}

  /** Holds every vGPU of the checkpoint's claims (at start). */
  restoreHolds(): void {
    for (const claim of this.options.checkpoint.all()) this.holdClaim(claim);
  }

  async prepare(claim: DraClaim): Promise<NodePrepareResourceResponse> {
    const known = this.options.checkpoint.get(claim.uid);
    if (known) return { devices: this.answer(known), error: '' };
    try {
      return { devices: this.answer(await this.prepareNew(claim)), error: '' };
    } catch (err) {
      return { devices: [], error: `claim ${claim.namespace}/${claim.name} (${claim.uid}): ${describe(err)}` };
    }
  }

  async unprepare(claim: DraClaim): Promise<string> {
    const known = this.options.checkpoint.get(claim.uid);
    if (!known) return '';
    const { host } = this.options;
    const holder = DRA_HOLDER + known.uid;
    for (const device of known.devices) host.holds.release(device.uuid, holder);
    try {
      for (const device of known.devices) {
        if (device.created && host.liveDevice(device.uuid)) await host.stop(device.uuid);
      }
    } catch (err) {
      this.holdClaim(known); // still prepared: the kubelet will ask again
      return `claim ${known.namespace}/${known.name} (${known.uid}): ${describe(err)}`;
    }
    if (known.cdiSpec !== undefined) removeCdiSpec(known.cdiSpec);
    if (known.metadata !== undefined) removeClaimMetadata(known.metadata);
    this.options.checkpoint.delete(known.uid);
    return '';
  }

  private answer(claim: PreparedClaim): DraDevice[] {
    return claim.devices.map((d) => ({ request_names: d.requestNames, pool_name: this.options.node, device_name: d.device, cdi_device_ids: d.cdiDeviceIds }));
  }

  private holdClaim(claim: PreparedClaim): void {
    for (const device of claim.devices) this.options.host.holds.hold(device.uuid, DRA_HOLDER + claim.uid, `ResourceClaim ${claim.namespace}/${claim.name}`);
  }

  private async prepareNew(claim: DraClaim): Promise<PreparedClaim> {
    const { driver, node, host, api } = this.options;
    if (!claim.uid || !claim.namespace || !claim.name) throw new Error('the claim needs its namespace, name and uid');
    let object;
    try {
      object = await api.readClaim(claim.namespace, claim.name);
    } catch (err) {
      throw new Error(httpStatusOf(err) === 404 ? 'no such ResourceClaim on the API server' : `reading the ResourceClaim failed: ${describe(err)}`);
    }
    if (object.metadata.uid !== claim.uid) throw new Error(`the ResourceClaim's UID is ${object.metadata.uid}, not ${claim.uid} (deleted and made again?)`);
    const results = object.status?.allocation?.devices?.results;
    if (!results) throw new Error('the ResourceClaim is not allocated');
    const wanted = new Map<string, string[]>();
    for (const r of results) {
      if (r.driver !== driver) continue;
      if (r.pool !== node) throw new Error(`device ${r.device} is allocated from pool ${r.pool}, not this node's (${node})`);
      wanted.set(r.device, [...(wanted.get(r.device) ?? []), r.request]);
    }
    const holder = DRA_HOLDER + claim.uid;
    const prepared: PreparedDevice[] = [];
    const lives: LiveDevice[] = [];
    const attributes: MetadataDevice['attributes'][] = [];
    let metadata: WrittenMetadata | undefined;
    let cdiSpec: string | undefined;
    const undo = async (): Promise<void> => {
      if (metadata) removeClaimMetadata(metadata);
      if (cdiSpec !== undefined) removeCdiSpec(cdiSpec);
      for (const d of prepared) {
        host.holds.release(d.uuid, holder);
        if (d.created) await host.stop(d.uuid).catch(() => undefined);
      }
    };
    try {
      const offered = this.options.offered();
      for (const [name, requestNames] of wanted) {
        const uuid = uuidOfDraDevice(name);
        if (uuid === undefined) throw new Error(`device ${name} is not one of this driver's (vgpu-<uuid>)`);
        let live = host.liveDevice(uuid);
        let created = false;
        const slot = offered.get(name);
        if (live) {
          const others = host.holds.holderIds(uuid).filter((h) => h !== holder);
          if (others.length > 0) throw new Error(`vGPU ${uuid} is held already (${host.holds.holders(uuid).join(', ')})`);
        } else {
          if (!slot) throw new Error(`device ${name} is not offered by this node now`);
          await host.start({ uuid, parent: slot.parent, type: slot.type.id });
          created = true;
          live = host.liveDevice(uuid);
          if (!live) throw new Error(`vGPU ${uuid} vanished right after it was made`);
        }
        host.holds.hold(uuid, holder, `ResourceClaim ${claim.namespace}/${claim.name}`);
        prepared.push({ device: name, uuid, requestNames, created, cdiDeviceIds: [] });
        lives.push(live);
        // As published; a live vGPU made since the last inventory is in no slice yet: what the host knows.
        attributes.push(slot ? deviceAttributes(slot) : { typeId: { string: live.type }, parent: { string: live.parent }, mdevUUID: { string: uuid } });
      }
      const cdiDevices: CdiDevice[] = prepared.map((d, i) => cdiDevice(claim.uid, d.device, lives[i]!));
      prepared.forEach((d, i) => { d.cdiDeviceIds = [cdiDeviceId(driver, cdiDevices[i]!)]; });
      if (cdiDevices.length > 0) {
        cdiSpec = cdiSpecPath(this.options.cdiDir, driver, claim.uid);
        writeCdiSpec(cdiSpec, this.options.cdiDir, driver, cdiDevices);
        const byRequest = new Map<string, MetadataDevice[]>();
        prepared.forEach((d, i) => {
          for (const r of d.requestNames) byRequest.set(r, [...(byRequest.get(r) ?? []), { driver, pool: node, name: d.device, attributes: attributes[i]! }]);
        });
        const podClaimName = object.metadata.annotations?.[POD_CLAIM_NAME_ANNOTATION];
        const out = writeClaimMetadata({ driver, pluginDir: this.options.pluginDir, cdiDir: this.options.cdiDir },
          { namespace: claim.namespace, name: claim.name, uid: claim.uid, podClaimName: podClaimName || undefined }, byRequest);
        metadata = out.written;
        for (const d of prepared) d.cdiDeviceIds.push(...new Set(d.requestNames.map((r) => out.cdiIds.get(r)!)));
      }
      const record: PreparedClaim = { uid: claim.uid, namespace: claim.namespace, name: claim.name, devices: prepared, cdiSpec, ...(metadata ? { metadata } : {}) };
      this.options.checkpoint.put(record);
      return record;
    } catch (err) {
      await undo();
      throw err;
    }
  }
}
