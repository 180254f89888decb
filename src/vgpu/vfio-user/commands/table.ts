// Which handler answers which command. VERSION is the connection's own (it creates the
// session); DMA_READ and DMA_WRITE go the other way (server to client); the rest of the
// spec's commands are offered but REGION_WRITE_MULTI (it needs write_multiple, which we
// do not announce). DEVICE_FEATURE answers every device (ENOTTY for migration on one that
// cannot migrate, as the kernel); MIG_DATA_* need a data session a state change opened.
import { vfioUserCommands as C } from '../../../uapi/vfio-user/index.js';
import { deviceGetInfo, deviceGetIrqInfo, deviceGetRegionInfo, deviceGetRegionIoFds, deviceReset } from './device-info.js';
import { dmaMap, dmaUnmap } from './dma.js';
import { deviceFeature, migDataRead, migDataWrite } from './migration.js';
import { deviceSetIrqs } from './irqs.js';
import { regionRead, regionWrite } from './region-io.js';
import type { CommandSpec } from './types.js';

export const commandTable: ReadonlyMap<number, CommandSpec> = new Map<number, CommandSpec>([
  [C.VFIO_USER_DMA_MAP, dmaMap],
  [C.VFIO_USER_DMA_UNMAP, dmaUnmap],
  [C.VFIO_USER_DEVICE_GET_INFO, deviceGetInfo],
  [C.VFIO_USER_DEVICE_GET_REGION_INFO, deviceGetRegionInfo],
  [C.VFIO_USER_DEVICE_GET_REGION_IO_FDS, deviceGetRegionIoFds],
  [C.VFIO_USER_DEVICE_GET_IRQ_INFO, deviceGetIrqInfo],
  [C.VFIO_USER_DEVICE_SET_IRQS, deviceSetIrqs],
  [C.VFIO_USER_REGION_READ, regionRead],
  [C.VFIO_USER_REGION_WRITE, regionWrite],
  [C.VFIO_USER_DEVICE_RESET, deviceReset],
  [C.VFIO_USER_DEVICE_FEATURE, deviceFeature],
  [C.VFIO_USER_MIG_DATA_READ, migDataRead],
  [C.VFIO_USER_MIG_DATA_WRITE, migDataWrite],
]);

/** Commands the client may never send: the server-to-client ones. */
export const serverToClient: ReadonlySet<number> = new Set([C.VFIO_USER_DMA_READ, C.VFIO_USER_DMA_WRITE]);
