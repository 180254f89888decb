// VFIO_USER_VERSION: what the server replies to the client's proposal. The major must be
// ours (0) or the connection is closed, as the spec says; the minor is the lower of the
// two; capabilities are what we honour: max_msg_fds and max_data_xfer_size our own
// limits, pgsizes the host page size alone (the only one DMA_MAP takes), max_dma_maps
// the lower of the client's and ours, no write_multiple, no twin socket; "migration"
// (pgsize, max_bitmap_size) only for a device that can migrate, as libvfio-user does.
import { addon } from '../../../addon/addon.js';
import {
  VFIO_USER_MAJOR, decodeVersion, encodeVersion, formatVersionCapabilities, negotiatedMinor, parseVersionCapabilities,
} from '../../../uapi/vfio-user/index.js';
import type { ServerLimits } from '../options.js';
import type { Negotiated } from '../session.js';

export type VersionOutcome =
  | { readonly kind: 'agreed'; readonly negotiated: Negotiated; readonly reply: Uint8Array }
  /** A major version we do not speak: the spec has the server close the connection. */
  | { readonly kind: 'incompatible'; readonly reason: string };

/** Decodes the proposal and settles the session; malformed bodies or JSON throw EINVAL. */
export function negotiateVersion(body: Uint8Array, limits: ServerLimits, migratable = false): VersionOutcome {
  const proposal = decodeVersion(body);
  if (proposal.major !== VFIO_USER_MAJOR) {
    return { kind: 'incompatible', reason: `the client proposes major version ${proposal.major}, this server speaks ${VFIO_USER_MAJOR}` };
  }
  const client = parseVersionCapabilities(proposal.capabilities);
  const pgsize = addon().pageSize;
  const negotiated: Negotiated = {
    major: VFIO_USER_MAJOR,
    minor: negotiatedMinor(proposal.minor),
    maxMsgFds: limits.maxMsgFds,
    clientMaxMsgFds: client.maxMsgFds,
    maxDataXferSize: limits.maxDataXferSize,
    clientMaxDataXferSize: client.maxDataXferSize,
    maxDmaMaps: Math.min(client.maxDmaMaps, limits.maxDmaMaps),
    pgsize,
    dmaLayout: limits.dmaLayout ?? (proposal.minor === 0 ? 'qemu' : 'spec'),
  };
  const json = formatVersionCapabilities({
    maxMsgFds: negotiated.maxMsgFds,
    maxDataXferSize: negotiated.maxDataXferSize,
    pgsizes: BigInt(pgsize),
    maxDmaMaps: negotiated.maxDmaMaps,
    writeMultiple: false,
    // The dirty bitmap of one DMA_LOGGING_REPORT must fit a reply the client takes.
    ...(migratable ? { migration: { pgsize, maxBitmapSize: negotiated.clientMaxDataXferSize } } : {}),
  });
  return { kind: 'agreed', negotiated, reply: encodeVersion(negotiated.major, negotiated.minor, json) };
}
