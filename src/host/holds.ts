// Allocations that hold a vGPU: a node agent (the KubeVirt device plugin, the DRA
// driver) records here each vGPU it has handed to a workload, so the `vgpu` command
// does not stop or undefine a vGPU a VM was given unless told to (--force).
import { hostError } from './define.js';

export class AllocationHolds {
  /** uuid -> holder -> what holds it (one line for an error message). */
  private readonly held = new Map<string, Map<string, string>>();

  /** Records that `holder` (e.g. "dra:<claim uid>") holds `uuid`; `what` says it to a person. */
  hold(uuid: string, holder: string, what: string): void {
    const key = uuid.toLowerCase();
    let holders = this.held.get(key);
    if (!holders) this.held.set(key, (holders = new Map()));
    holders.set(holder, what);
  }

  release(uuid: string, holder: string): void {
    const key = uuid.toLowerCase();
    const holders = this.held.get(key);
    if (!holders) return;
    holders.delete(holder);
    if (holders.size === 0) this.held.delete(key);
  }

  /** Every holder that starts with `prefix` lets go of everything (an agent starting afresh). */
  releaseAll(prefix: string): void {
    for (const [uuid, holders] of this.held) {
      for (const holder of [...holders.keys()]) if (holder.startsWith(prefix)) holders.delete(holder);
      if (holders.size === 0) this.held.delete(uuid);
    }
  }

  /** What holds `uuid`, one description per holder. */
  holders(uuid: string): string[] {
    return [...(this.held.get(uuid.toLowerCase())?.values() ?? [])];
  }

  /** The holder ids of `uuid` ("dra:<claim uid>", "device-plugin:<resource>"). */
  holderIds(uuid: string): string[] {
    return [...(this.held.get(uuid.toLowerCase())?.keys() ?? [])];
  }

  isHeld(uuid: string): boolean {
    return this.held.has(uuid.toLowerCase());
  }

  /** EBUSY unless `force`, when something holds `uuid`: `doing` is the verb refused. */
  check(uuid: string, doing: 'stop' | 'undefine', force: boolean): void {
    const holders = this.holders(uuid);
    if (holders.length === 0 || force) return;
    throw hostError('EBUSY', `vGPU ${uuid.toLowerCase()} is held by ${holders.join(', ')}: ${doing} it with --force to take it away`);
  }
}
