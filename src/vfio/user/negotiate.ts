// VFIO_USER_VERSION from the client's side: what we propose, and whether the server's
// answer is one we can work with. The spec's rules: the reply has our major, a minor no
// higher than ours, and capabilities the server supports; each side's values say what
// it can *receive*, so we send within the server's and accept within ours.
import { sysError, type SysError } from '../../addon/errors.js';
import {
  VFIO_USER_MAJOR, VFIO_USER_MINOR, encodeVersion, formatVersionCapabilities, parseVersionCapabilities,
  type VfioUserCapabilities, type VfioUserVersion,
} from '../../uapi/vfio-user/index.js';
import { MAX_FDS_PER_MESSAGE } from '../../addon/unix-socket.js';

/** What our side proposes: the limits of what we accept from the server. */
export interface ClientLimits {
  /** Data bytes per REGION_READ reply or DMA_READ/DMA_WRITE request we accept. */
  maxDataXferSize: number;
  /** Fds per message we accept (a region's fd comes alone; 16 leaves room). */
  maxMsgFds: number;
  /** DMA page sizes we can map (our page size). */
  pgsizes: bigint;
  /** DMA mappings we may make at once. */
  maxDmaMaps: number;
}

/** What the session allows, once the server has answered. */
export interface Negotiated {
  major: number;
  minor: number;
  /** The server's capabilities as it stated them (the spec's defaults for absent ones). */
  server: VfioUserCapabilities;
  /** Data bytes per REGION_READ/REGION_WRITE we send: within both sides' limits. */
  xferSize: number;
  /** Fds per message we may send (SET_IRQS eventfds are split to this). */
  sendFds: number;
  /** The smallest DMA page size the server supports: DMA_MAP's alignment. */
  dmaPageSize: bigint;
  /** DMA mappings the server accepts at once. */
  maxDmaMaps: number;
}

/** A REGION access of a 64-bit register must fit one message: below this, refused. */
const MIN_XFER_SIZE = 8;

export function versionProposal(limits: ClientLimits): Uint8Array {
  const json = formatVersionCapabilities({
    maxMsgFds: limits.maxMsgFds,
    maxDataXferSize: limits.maxDataXferSize,
    pgsizes: limits.pgsizes,
    maxDmaMaps: limits.maxDmaMaps,
    writeMultiple: false,
  });
  return encodeVersion(VFIO_USER_MAJOR, VFIO_USER_MINOR, json);
}

function refuse(code: 'EPROTO' | 'EPROTONOSUPPORT', detail: string): SysError {
  return sysError(code, 'connect', 'VFIO_USER_VERSION', `the server's answer is refused: ${detail}`);
}

/** Checks the server's VERSION reply; a refusal is EPROTONOSUPPORT (version) or EPROTO (capabilities). */
export function acceptVersion(reply: VfioUserVersion, replyFds: number, limits: ClientLimits): Negotiated {
  if (reply.major !== VFIO_USER_MAJOR) {
    throw refuse('EPROTONOSUPPORT', `protocol ${reply.major}.${reply.minor}, this client speaks major ${VFIO_USER_MAJOR}`);
  }
  if (reply.minor > VFIO_USER_MINOR) {
    throw refuse('EPROTONOSUPPORT', `minor version ${reply.minor} is above the ${VFIO_USER_MINOR} proposed`);
  }
  let server: VfioUserCapabilities;
  try {
    server = parseVersionCapabilities(reply.capabilities);
  } catch (err) {
    throw refuse('EPROTO', (err as Error).message);
  }
  if (server.twinSocket?.supported === true || replyFds > 0) {
    // We did not offer twin-socket mode, so the server may not choose it (spec, Version).
    throw refuse('EPROTO', 'twin-socket mode or fds in the reply, which this client did not propose');
  }
  if (server.maxDataXferSize < MIN_XFER_SIZE) {
    throw refuse('EPROTO', `max_data_xfer_size ${server.maxDataXferSize} cannot carry one 64-bit register access`);
  }
  const pageSizes = server.pgsizes;
  return {
    major: reply.major,
    minor: reply.minor,
    server,
    xferSize: Math.min(server.maxDataXferSize, limits.maxDataXferSize),
    sendFds: Math.min(server.maxMsgFds, MAX_FDS_PER_MESSAGE),
    dmaPageSize: pageSizes & -pageSizes,
    maxDmaMaps: Math.min(server.maxDmaMaps, limits.maxDmaMaps),
  };
}
