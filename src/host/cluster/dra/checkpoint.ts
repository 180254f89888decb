// The DRA driver's checkpoint: every claim prepared on this node, with the vGPUs it
// got and whether the driver made them, in <plugin dir>/checkpoint.json. Written
// atomically after each change, read at start: a restarted daemon knows what it
// prepared (NodePrepareResources answers the same again, NodeUnprepareResources undoes
// exactly that) and holds those vGPUs again.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../atomic-write.js';
import type { WrittenMetadata } from './device-metadata.js';

export interface PreparedDevice {
  /** The DRA device name, "vgpu-<uuid>". */
  device: string;
  uuid: string;
  requestNames: string[];
  /** The driver created this vGPU for the claim (so unprepare removes it). */
  created: boolean;
  cdiDeviceIds: string[];
}

export interface PreparedClaim {
  uid: string;
  namespace: string;
  name: string;
  devices: PreparedDevice[];
  /** The CDI spec file written for the claim. */
  cdiSpec: string | undefined;
  /** The KEP-5304 metadata files and their CDI spec (absent in checkpoints of older versions). */
  metadata?: WrittenMetadata;
}

interface CheckpointFile {
  version: 1;
  claims: PreparedClaim[];
}

export class Checkpoint {
  private readonly claims = new Map<string, PreparedClaim>();

  constructor(readonly path: string) {
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return;
    let file: Partial<CheckpointFile>;
    try {
      file = JSON.parse(text) as Partial<CheckpointFile>;
    } catch (err) {
      throw new Error(`${path} is not JSON (${err instanceof Error ? err.message : String(err)}): the prepared claims it held are unknown; check it before moving it away`);
    }
    if (file.version !== 1 || !Array.isArray(file.claims)) throw new Error(`${path} is not a DRA checkpoint of version 1`);
    for (const claim of file.claims) {
      if (!isPreparedClaim(claim)) throw new Error(`${path} holds a claim that is not one: ${JSON.stringify(claim).slice(0, 200)}`);
      this.claims.set(claim.uid, claim);
    }
  }

  get(uid: string): PreparedClaim | undefined {
    return this.claims.get(uid);
  }

  all(): PreparedClaim[] {
    return [...this.claims.values()];
  }

  put(claim: PreparedClaim): void {
    this.claims.set(claim.uid, claim);
    this.save();
  }

  delete(uid: string): void {
    if (this.claims.delete(uid)) this.save();
  }

  private save(): void {
    const file: CheckpointFile = { version: 1, claims: this.all() };
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  }
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function isPreparedClaim(v: unknown): v is PreparedClaim {
  const c = v as Partial<PreparedClaim> | null;
  return typeof c === 'object' && c !== null && typeof c.uid === 'string' && typeof c.namespace === 'string' && typeof c.name === 'string'
    && (c.cdiSpec === undefined || typeof c.cdiSpec === 'string') && Array.isArray(c.devices)
    && (c.metadata === undefined || (typeof c.metadata === 'object' && c.metadata !== null && typeof c.metadata.dir === 'string' && typeof c.metadata.cdiSpec === 'string'))
    && c.devices.every((d) => typeof d === 'object' && d !== null && typeof d.device === 'string' && typeof d.uuid === 'string'
      && typeof d.created === 'boolean' && isStrings(d.requestNames) && isStrings(d.cdiDeviceIds));
}
