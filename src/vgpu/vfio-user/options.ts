// What a vfio-user server offers and tolerates, with the defaults it runs with. The
// capability values are what the server announces in its VERSION reply (never more
// than QEMU 10.1 accepts: max_msg_fds 16, max_data_xfer_size 64 MiB).
import type { DmaAccessLayout } from '../../uapi/vfio-user/index.js';

export interface VfioUserServerOptions {
  /** The most fds a client may send in one message (announced max_msg_fds). Default 16. */
  readonly maxMsgFds?: number;
  /** The largest REGION_READ/WRITE count a client may send (announced max_data_xfer_size). Default 1 MiB. */
  readonly maxDataXferSize?: number;
  /** The most DMA regions at once; the reply says min(client's, this). Default 65535. */
  readonly maxDmaMaps?: number;
  /** How long a DMA_READ/DMA_WRITE to the client may take before the device sees a fault. Default 5 s. */
  readonly dmaTimeoutMs?: number;
  /**
   * The body layout of DMA_READ/DMA_WRITE: the spec's (a u64 count) or QEMU 10.1's (a u32
   * count, data at 12, an empty DMA_WRITE reply). The protocol cannot negotiate it; by
   * default it follows the minor version the client proposes: QEMU 10.1 proposes 0.0,
   * the spec's clients (libvfio-user, ours) 0.1.
   */
  readonly dmaLayout?: DmaAccessLayout;
  /** Unsent reply bytes past which a client that does not read is dropped. Default 16 MiB. */
  readonly maxPendingOutput?: number;
  /** How long a refused second client gets to send its VERSION before it is closed. Default 2 s. */
  readonly refusalTimeoutMs?: number;
  /** Bytes per mapped window of a client's DMA file. Default 1 GiB. */
  readonly dmaWindowSize?: number;
}

export type ServerLimits = Required<Omit<VfioUserServerOptions, 'dmaWindowSize' | 'dmaLayout'>> &
  { readonly dmaWindowSize: number | undefined; readonly dmaLayout: DmaAccessLayout | undefined };

export const DEFAULT_LIMITS: ServerLimits = {
  maxMsgFds: 16,
  maxDataXferSize: 1024 * 1024,
  maxDmaMaps: 65535,
  dmaTimeoutMs: 5000,
  dmaLayout: undefined,
  maxPendingOutput: 16 * 1024 * 1024,
  refusalTimeoutMs: 2000,
  dmaWindowSize: undefined,
};

function positive(name: string, value: number | undefined, max: number): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0 || value > max)) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${value}`);
  }
}

export function serverLimits(options: VfioUserServerOptions = {}): ServerLimits {
  positive('maxMsgFds', options.maxMsgFds, 253);
  positive('maxDataXferSize', options.maxDataXferSize, 64 * 1024 * 1024);
  positive('maxDmaMaps', options.maxDmaMaps, 0xffffffff);
  positive('dmaTimeoutMs', options.dmaTimeoutMs, 2 ** 31 - 1);
  positive('maxPendingOutput', options.maxPendingOutput, Number.MAX_SAFE_INTEGER);
  positive('refusalTimeoutMs', options.refusalTimeoutMs, 2 ** 31 - 1);
  if (options.dmaLayout !== undefined && options.dmaLayout !== 'spec' && options.dmaLayout !== 'qemu') {
    throw new RangeError(`dmaLayout must be 'spec' or 'qemu', got ${String(options.dmaLayout)}`);
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_LIMITS, ...defined } as ServerLimits;
}
