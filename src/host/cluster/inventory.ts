// What this node offers a cluster, as the node agents see it: the live vGPUs (our own
// and the kernel's mdevs), the types with their free instances, and the parents. A
// watch polls the host (sysfs changes of kernel mdevs come with no event to wait on)
// and tells its listeners when anything they show changed; an agent that changed the
// host itself pokes it to be told at once.
import type { LiveDevice, TypeInfo } from '../api.js';

export interface InventorySource {
  liveDevices(): LiveDevice[];
  types(): Promise<TypeInfo[]>;
  parentNames(): string[];
}

export interface Inventory {
  devices: LiveDevice[];
  types: TypeInfo[];
  parents: string[];
}

export type InventoryListener = (inventory: Inventory) => void;

/** How often the host is looked at unless told: changes reach the kubelet within a second. */
export const DEFAULT_POLL_MS = 400;

export async function readInventory(source: InventorySource): Promise<Inventory> {
  const types = await source.types();
  return { devices: source.liveDevices(), types, parents: source.parentNames() };
}

function fingerprint(inventory: Inventory): string {
  return JSON.stringify(inventory);
}

export class InventoryWatch {
  private readonly listeners = new Set<InventoryListener>();
  private last: Inventory | undefined;
  private lastPrint = '';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly source: InventorySource, private readonly intervalMs = DEFAULT_POLL_MS,
    private readonly onError: (err: unknown) => void = () => undefined) {}

  /** Reads the host once (so current() answers) and starts polling. */
  async start(): Promise<Inventory> {
    await this.poke();
    this.schedule();
    return this.current();
  }

  current(): Inventory {
    if (!this.last) throw new Error('the inventory watch has not started');
    return this.last;
  }

  /** Calls `listener` on every change from now on; returns how to stop. */
  subscribe(listener: InventoryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Looks at the host now; settles once listeners have been told of a change. */
  poke(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          const next = await readInventory(this.source);
          const print = fingerprint(next);
          if (print !== this.lastPrint) {
            this.last = next;
            this.lastPrint = print;
            for (const listener of [...this.listeners]) listener(next);
          }
        } catch (err) {
          this.onError(err);
        }
      } while (this.again && !this.stopped);
    })().finally(() => { this.running = undefined; });
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { void this.poke().then(() => this.schedule()); }, this.intervalMs);
    this.timer.unref();
  }
}
