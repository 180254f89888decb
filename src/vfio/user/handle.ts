// openVfioUserDevice: a device served over vfio-user, reached by its socket's path and
// presented as the same Device (regions, irqs, config) as a kernel VFIO device, with a
// DMA target in place of a container. One connection per device, as the spec has it.
import { inspect, type InspectOptions } from 'node:util';
import { sysError } from '../../addon/errors.js';
import { createNativeSys } from '../../sys/native.js';
import type { SysLayer } from '../../sys/types.js';
import { Device } from '../device.js';
import type { DeviceHandle } from '../device-handle.js';
import { VfioUserConnection, type VfioUserConnectOptions } from './connection.js';
import { VfioUserDma } from './dma.js';
import { VfioUserSys } from './sys.js';

export interface OpenVfioUserOptions extends VfioUserConnectOptions {
  /**
   * The fd layer for eventfds, watching and mmap; default the native one. It must be
   * native: eventfds and memory cross the socket as real fds.
   */
  sys?: SysLayer;
}

export class VfioUserDeviceHandle implements DeviceHandle {
  constructor(
    readonly device: Device,
    readonly dma: VfioUserDma,
    readonly sys: VfioUserSys,
    readonly connection: VfioUserConnection,
  ) {}

  /** The socket the device is served at. */
  get path(): string {
    return this.connection.path;
  }

  /**
   * Closes the device (its interrupts are disabled, its regions unmapped), which ends the
   * connection; the server then drops the DMA mappings. Memory from sys.allocate() stays
   * mapped until munmapped, but its memfds close now. Idempotent.
   */
  close(): void {
    try {
      this.device.close();
    } finally {
      this.dma.forget();
      this.sys.releaseMemfds();
    }
  }

  [inspect.custom](depth: number, options: InspectOptions): string {
    const { major, minor, xferSize } = this.connection.negotiated;
    const state = this.connection.closed ? 'closed' : this.connection.broken ? `unusable (${this.connection.broken.code})` : `protocol ${major}.${minor}, ${xferSize}-byte transfers`;
    return `${inspect(this.device, { ...options, depth })}\n  vfio-user ${this.path}: ${state}, ${this.dma.mappings.length} DMA mappings`;
  }
}

/**
 * Connects to the vfio-user server at `socketPath`, negotiates, and describes the device
 * (GET_INFO, every region and irq index). The server must run in another process or
 * thread: requests block this one (see connection.ts). Errors: the connect errno
 * (ENOENT, ECONNREFUSED), EPROTONOSUPPORT or EPROTO for a server this client refuses,
 * ETIMEDOUT, or the server's error replies. Nothing stays open when it fails.
 */
export function openVfioUserDevice(socketPath: string, options: OpenVfioUserOptions = {}): VfioUserDeviceHandle {
  const base = options.sys ?? createNativeSys();
  if (base.kind !== 'native') throw sysError('EINVAL', 'connect', undefined, 'a vfio-user device needs the native fd layer: its eventfds cross the socket');
  const connection = VfioUserConnection.connect(socketPath, base, options);
  const sys = new VfioUserSys(connection, base);
  const dma = new VfioUserDma(connection, sys);
  // Device.fromFd closes the fd if the device cannot be described, and so the connection.
  const device = Device.fromFd(sys, sys.deviceFd, socketPath);
  return new VfioUserDeviceHandle(device, dma, sys, connection);
}
