// VFIO_USER_DMA_MAP and VFIO_USER_DMA_UNMAP: the client's DMA regions (session.dma).
//
// DMA_MAP: flags READ|WRITE only (anything else, or neither, EINVAL); argsz at least 32;
// one fd: the server maps [offset, offset + size) of it MAP_SHARED with the prot asked
// (a region that owns the fd from then on); no fd: a remote region reached through
// DMA_READ/DMA_WRITE; two or more fds EINVAL. Overlap EEXIST (the spec), zero or
// unaligned EINVAL, past max_dma_maps ENOSPC, a file that cannot back it EINVAL.
// DMA_UNMAP: as the kernel's UNMAP_DMA (QEMU's listener is written for it): every
// region inside the range goes, a range covering none succeeds, one that splits a
// region is EINVAL (the spec and libvfio-user want an exact match, ENOENT otherwise:
// QEMU unmaps never-mapped sections and expects success). VFIO_DMA_UNMAP_FLAG_ALL with
// address and size 0 drops everything; GET_DIRTY_BITMAP is ENOTSUP (no migration is
// negotiated); other flags EINVAL. The reply echoes the request.
import { sysError } from '../../../addon/errors.js';
import { IOMMU_READ, IOMMU_WRITE } from '../../../device/dma/dma-regions.js';
import {
  decodeDmaMap, decodeDmaUnmap, encodeDmaUnmapReply, vfio_user_dma_map, vfio_user_dma_unmap, vfioUserDmaFlags as F,
} from '../../../uapi/vfio-user/index.js';
import { EMPTY_REPLY, type CommandSpec } from './types.js';

export const dmaMap: CommandSpec = {
  maxFds: 1,
  handle({ body, fds }, session) {
    const map = decodeDmaMap(body);
    const op = 'VFIO_USER_DMA_MAP';
    if (map.argsz < vfio_user_dma_map.size) throw sysError('EINVAL', 'vfio-user', op, `argsz ${map.argsz}`);
    const known = F.VFIO_USER_F_DMA_REGION_READ | F.VFIO_USER_F_DMA_REGION_WRITE;
    if ((map.flags & ~known) !== 0 || map.flags === 0) throw sysError('EINVAL', 'vfio-user', op, `flags 0x${map.flags.toString(16)}`);
    const prot = (map.flags & F.VFIO_USER_F_DMA_REGION_READ ? IOMMU_READ : 0) | (map.flags & F.VFIO_USER_F_DMA_REGION_WRITE ? IOMMU_WRITE : 0);
    if (fds.count === 0) {
      session.dma.add({ iova: map.address, size: map.size, prot, source: { kind: 'remote' } });
      return EMPTY_REPLY;
    }
    // The region owns the fd only once add() succeeds; until then the bag closes it.
    session.dma.add({ iova: map.address, size: map.size, prot, source: { kind: 'file', fd: fds.peek(0), offset: map.offset } });
    fds.take(0);
    return EMPTY_REPLY;
  },
};

export const dmaUnmap: CommandSpec = {
  maxFds: 0,
  handle({ body }, session) {
    const unmap = decodeDmaUnmap(body);
    const op = 'VFIO_USER_DMA_UNMAP';
    if (unmap.argsz < vfio_user_dma_unmap.size) throw sysError('EINVAL', 'vfio-user', op, `argsz ${unmap.argsz}`);
    if (unmap.flags & F.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
      throw sysError('ENOTSUP', 'vfio-user', op, 'dirty page logging is not supported');
    }
    if (unmap.flags === F.VFIO_DMA_UNMAP_FLAG_ALL) {
      if (unmap.address !== 0n || unmap.size !== 0n) throw sysError('EINVAL', 'vfio-user', op, 'UNMAP_ALL needs address and size 0');
      session.dma.removeAll();
    } else if (unmap.flags === 0) {
      session.dma.remove(unmap.address, unmap.size);
    } else {
      throw sysError('EINVAL', 'vfio-user', op, `flags 0x${unmap.flags.toString(16)}`);
    }
    return { body: encodeDmaUnmapReply(unmap) };
  },
};
