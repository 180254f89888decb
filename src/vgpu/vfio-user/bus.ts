// The vfio-user bus of the vGPU core: every live vGPU is served on its own socket,
// <runDir>/<uuid>.sock, so a VMM (QEMU's vfio-user-pci) or our own client can attach it.
// The device served is the vGPU's one VgpuDevice (Vgpu.device), shared with the mdev
// bus: whoever opens it first holds it, the other gets EBUSY.
//
// vgpuAdded starts listening (a failure refuses the vGPU: the create is rolled back);
// vgpuRemoved stops, refused with EBUSY while a client holds the device (the registry
// already refuses to remove an open vGPU; a client that connected but never opened
// the device is disconnected). close() disconnects everyone and removes the sockets;
// after it the bus ignores the registry.
import { sysError } from '../../addon/errors.js';
import type { Vgpu, VgpuBus, VgpuRegistry } from '../registry.js';
import { DeviceSocket, type VfioUserClientInfo } from './device-socket.js';
import { serverLimits, type ServerLimits, type VfioUserServerOptions } from './options.js';
import { prepareRunDir } from './socket-file.js';

export interface AttachVfioUserOptions extends VfioUserServerOptions {
  /** Where the sockets go; made (0700) if missing. */
  readonly runDir: string;
  /** The sockets' file mode. Default 0600. */
  readonly mode?: number;
}

/** Totals over every served vGPU, for tests and diagnostics. */
export interface VfioUserBusStats {
  readonly sockets: number;
  readonly clients: number;
  readonly dmaRegions: number;
  readonly mappedDmaRegions: number;
  readonly pinnedPages: number;
  readonly eventfdReferences: number;
}

export class VfioUserBus implements VgpuBus {
  readonly runDir: string;
  private readonly mode: number;
  private readonly limits: ServerLimits;
  private readonly sockets = new Map<string, DeviceSocket>();
  private closed = false;

  constructor(options: AttachVfioUserOptions) {
    if (typeof options.runDir !== 'string' || options.runDir === '') throw new TypeError('runDir must be a directory path');
    this.runDir = options.runDir;
    this.mode = options.mode ?? 0o600;
    if (!Number.isInteger(this.mode) || this.mode < 0 || this.mode > 0o777) throw new RangeError(`mode ${this.mode} is not a file mode`);
    this.limits = serverLimits(options);
    prepareRunDir(this.runDir);
  }

  /** Where the vGPU `uuid` is (or would be) served. */
  socketPath(uuid: string): string {
    return `${this.runDir}/${uuid.toLowerCase()}.sock`;
  }

  /** The client attached to the vGPU, if any. */
  clientOf(uuid: string): VfioUserClientInfo | undefined {
    return this.sockets.get(uuid.toLowerCase())?.client;
  }

  /** Whether the vGPU is served here. */
  serves(uuid: string): boolean {
    return this.sockets.has(uuid.toLowerCase());
  }

  /** Ends the client of one vGPU now, releasing the device. */
  disconnect(uuid: string): void {
    this.sockets.get(uuid.toLowerCase())?.disconnect();
  }

  stats(): VfioUserBusStats {
    let clients = 0;
    let dmaRegions = 0;
    let mappedDmaRegions = 0;
    let pinnedPages = 0;
    let eventfdReferences = 0;
    for (const socket of this.sockets.values()) {
      const c = socket.client;
      if (!c) continue;
      clients++;
      dmaRegions += c.stats.dmaRegions;
      mappedDmaRegions += c.stats.mappedDmaRegions;
      pinnedPages += c.stats.pinnedPages;
      eventfdReferences += c.stats.eventfdReferences;
    }
    return { sockets: this.sockets.size, clients, dmaRegions, mappedDmaRegions, pinnedPages, eventfdReferences };
  }

  vgpuAdded(vgpu: Vgpu): void {
    if (this.closed) return;
    const key = vgpu.uuid.toLowerCase();
    if (this.sockets.has(key)) throw sysError('EEXIST', 'bind', undefined, `vGPU ${vgpu.uuid} is already served`);
    this.sockets.set(key, new DeviceSocket(this.socketPath(key), vgpu.device, this.limits, this.mode));
  }

  vgpuRemoved(vgpu: Vgpu): void {
    const key = vgpu.uuid.toLowerCase();
    const socket = this.sockets.get(key);
    if (!socket) return;
    if (socket.busy) throw sysError('EBUSY', 'write', undefined, `a vfio-user client holds vGPU ${vgpu.uuid}`);
    socket.close();
    this.sockets.delete(key);
  }

  /** Disconnects every client, closes every socket and removes its file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const socket of this.sockets.values()) socket.close();
    this.sockets.clear();
  }
}

/** Serves every live vGPU of `registry` (and each one created later) over vfio-user. */
export function attachVfioUser(registry: VgpuRegistry, options: AttachVfioUserOptions): VfioUserBus {
  const bus = new VfioUserBus(options);
  try {
    registry.attach(bus);
  } catch (err) {
    bus.close();
    throw err;
  }
  return bus;
}
