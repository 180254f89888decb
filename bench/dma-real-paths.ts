// The real DMA map/unmap paths for bench/dma-tracker.ts, each over 65,536 live
// single-page mappings at the same gaps the raw-structure figure uses:
//   MAP_DMA + UNMAP_DMA ioctls on a TYPE1v2 container of the mock kernel (an mdev-style
//     group, so nothing is pinned: the store, the struct decoding and the checks), the
//     argument structs written per call as a client writes them;
//   vfio-user DMA_MAP + DMA_UNMAP messages (remote regions: no fd) through the server's
//     command table: header decode, the handlers, DmaRegions, the unmap reply.
import { nsPerCall } from './report.js';
import type { DeviceBackend } from '../src/device/backend.js';
import { createMockSys } from '../src/sys/mock.js';
import { ioctls, vfio_iommu_type1_dma_map, vfio_iommu_type1_dma_unmap } from '../src/uapi/index.js';
import {
  decodeHeader, encodeCommand, encodeDmaMap, encodeDmaUnmap, vfioUserCommands as C, vfioUserDmaFlags as F, VFIO_USER_HEADER_SIZE,
} from '../src/uapi/vfio-user/index.js';
import { commandTable } from '../src/vgpu/vfio-user/commands/table.js';
import { ReceivedFds, type CommandSpec } from '../src/vgpu/vfio-user/commands/types.js';
import { Session } from '../src/vgpu/vfio-user/session.js';

const PAGE = 4096n;
const STRIDE = 2n * PAGE;
const PAIRS = 50_000;

/** A device that does nothing: the container and the session need one to exist. */
function idleDevice(): DeviceBackend {
  return {
    name: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
    open() {}, close() {},
    ioctl(): number { return 0; }, read(): number { return 0; }, write(): number { return 0; },
    mmap(): never { throw new Error('no mmap'); },
  };
}

export interface RealPaths {
  /** ns per MAP_DMA + UNMAP_DMA ioctl pair. */
  ioctlPair(): number;
  /** ns per vfio-user DMA_MAP + DMA_UNMAP message pair. */
  vfioUserPair(): number;
  close(): void;
}

export function dmaRealPaths(live: number, gaps: readonly bigint[]): RealPaths {
  const mask = gaps.length - 1;
  const sys = createMockSys({ devices: [], dmaEntryLimit: live + 16 });
  const groupNo = sys.kernel.registerDevice(idleDevice(), { iommuBacked: false });
  const container = sys.open('/dev/vfio/vfio');
  const group = sys.open(`/dev/vfio/${groupNo}`);
  const fdArg = new Uint8Array(4);
  new DataView(fdArg.buffer).setInt32(0, container, true);
  sys.ioctl(group, ioctls.VFIO_GROUP_SET_CONTAINER, fdArg);
  sys.ioctl(container, ioctls.VFIO_SET_IOMMU, 3 /* TYPE1v2 */);
  const map = vfio_iommu_type1_dma_map.encode({ argsz: 32, flags: 3, vaddr: 0x7000_0000_0000n, iova: 0n, size: PAGE });
  const unmap = vfio_iommu_type1_dma_unmap.encode({ argsz: 24, flags: 0, iova: 0n, size: PAGE });
  for (let i = 0; i < live; i++) {
    vfio_iommu_type1_dma_map.write(map, { iova: BigInt(i) * STRIDE });
    sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, map);
  }

  const session = new Session(idleDevice(), {
    major: 0, minor: 2, maxMsgFds: 8, clientMaxMsgFds: 8, maxDataXferSize: 1 << 20, clientMaxDataXferSize: 1 << 20,
    maxDmaMaps: live + 16, pgsize: Number(PAGE), dmaLayout: 'spec',
  }, { read() { throw new Error('no DMA'); }, write() { throw new Error('no DMA'); } }, undefined);
  const handler = (command: number): CommandSpec => commandTable.get(command)!;
  const RW = F.VFIO_USER_F_DMA_REGION_READ | F.VFIO_USER_F_DMA_REGION_WRITE;
  // Messages as they arrive, header and body in one buffer; the handlers get the body.
  const message = (command: number, body: Uint8Array): Uint8Array => encodeCommand(1, command, body);
  const send = (bytes: Uint8Array): void => {
    const header = decodeHeader(bytes);
    const fds = new ReceivedFds([]);
    handler(header.command).handle({ header, body: bytes.subarray(VFIO_USER_HEADER_SIZE, header.size), fds }, session);
    fds.closeRest();
  };
  for (let i = 0; i < live; i++) send(message(C.VFIO_USER_DMA_MAP, encodeDmaMap({ flags: RW, offset: 0n, address: BigInt(i) * STRIDE, size: PAGE })));
  const mapMessages = gaps.map((iova) => message(C.VFIO_USER_DMA_MAP, encodeDmaMap({ flags: RW, offset: 0n, address: iova, size: PAGE })));
  const unmapMessages = gaps.map((iova) => message(C.VFIO_USER_DMA_UNMAP, encodeDmaUnmap({ flags: 0, address: iova, size: PAGE })));

  const ioctlLoop = (pairs: number): number => nsPerCall(pairs, (n) => {
    for (let i = 0; i < n; i++) {
      const iova = gaps[i & mask]!;
      vfio_iommu_type1_dma_map.write(map, { iova });
      sys.ioctl(container, ioctls.VFIO_IOMMU_MAP_DMA, map);
      vfio_iommu_type1_dma_unmap.write(unmap, { iova, size: PAGE });
      sys.ioctl(container, ioctls.VFIO_IOMMU_UNMAP_DMA, unmap);
    }
  });
  // The messages are built beforehand (a client's work, not the server's).
  const vfioUserLoop = (pairs: number): number => nsPerCall(pairs, (n) => {
    for (let i = 0; i < n; i++) {
      send(mapMessages[i & mask]!);
      send(unmapMessages[i & mask]!);
    }
  });
  return {
    ioctlPair: () => ioctlLoop(PAIRS),
    vfioUserPair: () => vfioUserLoop(PAIRS),
    close() {
      if (session.dma.count !== live) throw new Error(`the vfio-user session holds ${session.dma.count} regions, not ${live}`);
      session.close();
      sys.close(group);
      sys.close(container);
    },
  };
}
