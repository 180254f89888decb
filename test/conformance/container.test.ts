// Conformance: the container, /dev/vfio/vfio (drivers/vfio/container.c and the TYPE1
// driver's CHECK_EXTENSION).
import { extensions as X, ioctls } from '../../src/uapi/index.js';
import { mapDma, READ_WRITE, setContainer } from './abi.js';
import { attempt, conformanceCase, fails, ok } from './outcome.js';
import { setupFile, withSession, type Session } from './target.js';

const t = setupFile();

/** An ioctl number no VFIO fd knows: _IO(';', 100 + 50). */
const UNKNOWN_IOCTL = (0x3b << 8) | 150;

const checkExtension = (s: Session, container: number, ext: number) =>
  attempt(() => s.sys.ioctl(container, ioctls.VFIO_CHECK_EXTENSION, ext));

conformanceCase(t, 'container: GET_API_VERSION returns 0', ok(0), () => withSession(t, (s) => {
  const c = s.openContainer();
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_GET_API_VERSION));
}));

// Before SET_IOMMU the container asks every registered IOMMU driver
// (vfio_container_ioctl_check_extension); TYPE1 answers via vfio_iommu_type1_check_extension
// with a NULL iommu, so UPDATE_VADDR and DMA_CC are 0 there.
const before: [string, number, number][] = [
  ['TYPE1', X.VFIO_TYPE1_IOMMU, 1],
  ['SPAPR_TCE', X.VFIO_SPAPR_TCE_IOMMU, 0],
  ['TYPE1v2', X.VFIO_TYPE1v2_IOMMU, 1],
  ['DMA_CC', X.VFIO_DMA_CC_IOMMU, 0],
  ['EEH', X.VFIO_EEH, 0],
  ['TYPE1_NESTING', X.VFIO_TYPE1_NESTING_IOMMU, 1],
  ['SPAPR_TCE_v2', X.VFIO_SPAPR_TCE_v2_IOMMU, 0],
  ['NOIOMMU', X.VFIO_NOIOMMU_IOMMU, 0],
  ['UNMAP_ALL', X.VFIO_UNMAP_ALL, 1],
  ['UPDATE_VADDR', X.VFIO_UPDATE_VADDR, 0],
  ['unknown extension 99', 99, 0],
];
for (const [name, ext, answer] of before) {
  conformanceCase(t, `container: CHECK_EXTENSION ${name} before SET_IOMMU is ${answer}`, ok(answer), () => withSession(t, (s) => {
    return checkExtension(s, s.openContainer(), ext);
  }));
}

conformanceCase(t, 'container: CHECK_EXTENSION TYPE1v2 with a group but no IOMMU is 1', ok(1), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  return checkExtension(s, c, X.VFIO_TYPE1v2_IOMMU);
}));

const afterSet: [string, number, number][] = [
  ['UPDATE_VADDR', X.VFIO_UPDATE_VADDR, 1],
  ['TYPE1v2', X.VFIO_TYPE1v2_IOMMU, 1],
  ['UNMAP_ALL', X.VFIO_UNMAP_ALL, 1],
  ['SPAPR_TCE', X.VFIO_SPAPR_TCE_IOMMU, 0],
  ['unknown extension 99', 99, 0],
];
for (const [name, ext, answer] of afterSet) {
  conformanceCase(t, `container: CHECK_EXTENSION ${name} after SET_IOMMU is ${answer}`, ok(answer), () => withSession(t, (s) => {
    return checkExtension(s, s.attach().container, ext);
  }));
}

conformanceCase(t, 'container: SET_IOMMU before any group is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const c = s.openContainer();
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1v2_IOMMU));
}));

conformanceCase(t, 'container: SET_IOMMU TYPE1v2 with a group returns 0', ok(0), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1v2_IOMMU));
}));

conformanceCase(t, 'container: SET_IOMMU TYPE1 (v1) with a group returns 0', ok(0), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1_IOMMU));
}));

conformanceCase(t, 'container: a second SET_IOMMU is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { container } = s.attach();
  return attempt(() => s.sys.ioctl(container, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1v2_IOMMU));
}));

conformanceCase(t, 'container: SET_IOMMU SPAPR_TCE (no driver) is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_SPAPR_TCE_IOMMU));
}));

conformanceCase(t, 'container: SET_IOMMU of an unknown type is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, 99));
}));

conformanceCase(t, 'container: SET_IOMMU TYPE1_NESTING is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1_NESTING_IOMMU));
}));

// vfio_ioctl_set_iommu releases the driver whose attach failed and leaves the group in
// the container, so a later TYPE1v2 works.
conformanceCase(t, 'container: SET_IOMMU TYPE1v2 after a failed TYPE1_NESTING returns 0', ok(0), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1_NESTING_IOMMU));
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1v2_IOMMU));
}));

conformanceCase(t, 'container: IOMMU_GET_INFO before any group is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const c = s.openContainer();
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_IOMMU_GET_INFO, new Uint8Array(64)));
}));

conformanceCase(t, 'container: MAP_DMA with a group but no IOMMU is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const c = s.openContainer();
  s.setContainer(s.openGroup(), c);
  const mem = s.allocate(s.sys.pageSize);
  return mapDma(s.sys, c, { flags: READ_WRITE, vaddr: mem.address, iova: 0x100000n, size: BigInt(s.sys.pageSize) });
}));

conformanceCase(t, 'container: UNMAP_DMA before SET_IOMMU is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const c = s.openContainer();
  return attempt(() => s.sys.ioctl(c, ioctls.VFIO_IOMMU_UNMAP_DMA, new Uint8Array(64)));
}));

conformanceCase(t, 'container: an unknown ioctl before SET_IOMMU is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const c = s.openContainer();
  return attempt(() => s.sys.ioctl(c, UNKNOWN_IOCTL, 0));
}));

conformanceCase(t, 'container: an unknown ioctl after SET_IOMMU is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { container } = s.attach();
  return attempt(() => s.sys.ioctl(container, UNKNOWN_IOCTL, 0));
}));

conformanceCase(t, 'container: GROUP_GET_STATUS on a container after SET_IOMMU is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { container } = s.attach();
  return attempt(() => s.sys.ioctl(container, ioctls.VFIO_GROUP_GET_STATUS, new Uint8Array(8)));
}));

// IOMMU_ENABLE/DISABLE are SPAPR TCE's; vfio_iommu_type1_ioctl does not know them.
conformanceCase(t, 'container: IOMMU_ENABLE on TYPE1 is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { container } = s.attach();
  return attempt(() => s.sys.ioctl(container, ioctls.VFIO_IOMMU_ENABLE));
}));

conformanceCase(t, 'container: IOMMU_DISABLE on TYPE1 is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { container } = s.attach();
  return attempt(() => s.sys.ioctl(container, ioctls.VFIO_IOMMU_DISABLE));
}));

conformanceCase(t, 'container: GET_API_VERSION after SET_IOMMU returns 0', ok(0), () => withSession(t, (s) => {
  const { container } = s.attach();
  return attempt(() => s.sys.ioctl(container, ioctls.VFIO_GET_API_VERSION));
}));

conformanceCase(t, 'container: UNSET_CONTAINER of the last group drops the IOMMU',
  { getInfo: fails('EINVAL'), updateVaddr: ok(0) }, () => withSession(t, (s) => {
    const { container, group } = s.attach();
    s.sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER);
    return {
      getInfo: attempt(() => s.sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, new Uint8Array(64))),
      updateVaddr: checkExtension(s, container, X.VFIO_UPDATE_VADDR),
    };
  }));

conformanceCase(t, 'container: closing the last group fd drops the IOMMU', fails('EINVAL'), () => withSession(t, (s) => {
  const { container, group } = s.attach();
  s.close(group);
  return attempt(() => s.sys.ioctl(container, ioctls.VFIO_IOMMU_GET_INFO, new Uint8Array(64)));
}));

conformanceCase(t, 'container: after the IOMMU is dropped, SET_IOMMU needs a group again',
  { withoutGroup: fails('EINVAL'), withGroup: ok(0) }, () => withSession(t, (s) => {
    const { container, group } = s.attach();
    s.sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER);
    const withoutGroup = attempt(() => s.sys.ioctl(container, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1v2_IOMMU));
    setContainer(s.sys, group, container);
    const withGroup = attempt(() => s.sys.ioctl(container, ioctls.VFIO_SET_IOMMU, X.VFIO_TYPE1v2_IOMMU));
    return { withoutGroup, withGroup };
  }));
