// Conformance: the group, /dev/vfio/<N> (drivers/vfio/group.c, vfio_pci_core_match).
import { ioctls, flags as F, vfio_device_info } from '../../src/uapi/index.js';
import { deviceInfo, groupStatus, hexTail, setContainer } from './abi.js';
import { attempt, byFlavour, conformanceCase, fails, FD, ok, type Outcome } from './outcome.js';
import { cString, groupPath, setupFile, withSession, type Session } from './target.js';

const t = setupFile();

const UNKNOWN_IOCTL = (0x3b << 8) | 150;
const VIABLE = F.VFIO_GROUP_FLAGS_VIABLE;
const CONTAINER_SET = F.VFIO_GROUP_FLAGS_CONTAINER_SET;

/** GET_DEVICE_FD as the case under test: a new fd is tracked and reported as 'fd'. */
function tryGetDeviceFd(s: Session, group: number, name: string): Outcome {
  const o = attempt(() => s.sys.ioctl(group, ioctls.VFIO_GROUP_GET_DEVICE_FD, cString(name)));
  if ('ret' in o && typeof o.ret === 'number') {
    s.adoptDevice(o.ret);
    return o.ret >= 0 ? FD : o;
  }
  return o;
}

/** open() of the group as the case under test. */
function tryOpenGroup(s: Session): Outcome {
  const o = attempt(() => s.sys.open(groupPath(t)));
  if ('ret' in o && typeof o.ret === 'number') {
    s.adopt(o.ret);
    return FD;
  }
  return o;
}

conformanceCase(t, 'group: a second open of the group is EBUSY', fails('EBUSY'), () => withSession(t, (s) => {
  s.openGroup();
  return tryOpenGroup(s);
}));

conformanceCase(t, 'group: the group opens again after it was closed', FD, () => withSession(t, (s) => {
  s.close(s.openGroup());
  return tryOpenGroup(s);
}));

conformanceCase(t, 'group: GET_STATUS of a fresh group is VIABLE',
  { outcome: ok(0), argsz: 8, flags: VIABLE }, () => withSession(t, (s) => {
    const { outcome, argsz, flags } = groupStatus(s.sys, s.openGroup());
    return { outcome, argsz, flags };
  }));

conformanceCase(t, 'group: GET_STATUS with argsz 7 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  return groupStatus(s.sys, s.openGroup(), 7).outcome;
}));

conformanceCase(t, 'group: GET_STATUS with argsz 0 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  return groupStatus(s.sys, s.openGroup(), 0).outcome;
}));

// vfio_group_ioctl_get_status copies back only the 8 bytes it knows.
conformanceCase(t, 'group: GET_STATUS with argsz 16 writes 8 bytes',
  { outcome: ok(0), flags: VIABLE, tail: 'a5a5a5a5a5a5a5a5' }, () => withSession(t, (s) => {
    const r = groupStatus(s.sys, s.openGroup(), 16, 16);
    return { outcome: r.outcome, flags: r.flags, tail: hexTail(r.buf, 8) };
  }));

conformanceCase(t, 'group: GET_STATUS after SET_CONTAINER is VIABLE|CONTAINER_SET', VIABLE | CONTAINER_SET, () => withSession(t, (s) => {
  const g = s.openGroup();
  s.setContainer(g, s.openContainer());
  return groupStatus(s.sys, g).flags;
}));

conformanceCase(t, 'group: GET_STATUS after UNSET_CONTAINER is VIABLE again', VIABLE, () => withSession(t, (s) => {
  const g = s.openGroup();
  s.setContainer(g, s.openContainer());
  s.sys.ioctl(g, ioctls.VFIO_GROUP_UNSET_CONTAINER);
  return groupStatus(s.sys, g).flags;
}));

conformanceCase(t, 'group: SET_CONTAINER returns 0', ok(0), () => withSession(t, (s) => {
  return setContainer(s.sys, s.openGroup(), s.openContainer());
}));

conformanceCase(t, 'group: SET_CONTAINER with a closed fd is EBADF', fails('EBADF'), () => withSession(t, (s) => {
  return setContainer(s.sys, s.openGroup(), s.closedFd());
}));

conformanceCase(t, 'group: SET_CONTAINER with fd -1 is EBADF', fails('EBADF'), () => withSession(t, (s) => {
  return setContainer(s.sys, s.openGroup(), -1);
}));

// 6.1 accepts only a container; 6.12 also tries the fd as an iommufd and then says EBADFD.
const notAContainer = byFlavour(t, { '6.1': fails('EINVAL'), '6.12': fails('EBADFD') });
const whyNotAContainer = 'SET_CONTAINER with an open fd that is not a container: EINVAL on 6.1, EBADFD on 6.12 (iommufd fallback)';

conformanceCase(t, 'group: SET_CONTAINER with an eventfd is EINVAL (6.1) or EBADFD (6.12)', notAContainer, () => withSession(t, (s) => {
  return setContainer(s.sys, s.openGroup(), s.eventfd());
}), { versionDependent: whyNotAContainer });

conformanceCase(t, 'group: SET_CONTAINER with the group fd itself is EINVAL (6.1) or EBADFD (6.12)', notAContainer, () => withSession(t, (s) => {
  const g = s.openGroup();
  return setContainer(s.sys, g, g);
}), { versionDependent: whyNotAContainer });

conformanceCase(t, 'group: SET_CONTAINER twice with the same container is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const g = s.openGroup();
  const c = s.openContainer();
  s.setContainer(g, c);
  return setContainer(s.sys, g, c);
}));

conformanceCase(t, 'group: SET_CONTAINER to a second container is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const g = s.openGroup();
  s.setContainer(g, s.openContainer());
  return setContainer(s.sys, g, s.openContainer());
}));

conformanceCase(t, 'group: SET_CONTAINER again after SET_IOMMU is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { container, group } = s.attach();
  return setContainer(s.sys, group, container);
}));

conformanceCase(t, 'group: UNSET_CONTAINER without a container is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const g = s.openGroup();
  return attempt(() => s.sys.ioctl(g, ioctls.VFIO_GROUP_UNSET_CONTAINER));
}));

conformanceCase(t, 'group: UNSET_CONTAINER returns 0', ok(0), () => withSession(t, (s) => {
  const { group } = s.attach();
  return attempt(() => s.sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER));
}));

conformanceCase(t, 'group: UNSET_CONTAINER while a device fd is open is EBUSY', fails('EBUSY'), () => withSession(t, (s) => {
  const { group } = s.open();
  return attempt(() => s.sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER));
}));

conformanceCase(t, 'group: UNSET_CONTAINER after the device fd closed returns 0', ok(0), () => withSession(t, (s) => {
  const { group, device } = s.open();
  s.close(device);
  return attempt(() => s.sys.ioctl(group, ioctls.VFIO_GROUP_UNSET_CONTAINER));
}));

conformanceCase(t, 'group: GET_DEVICE_FD without a container is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.openGroup(), t.device);
}));

conformanceCase(t, 'group: GET_DEVICE_FD with a container but no IOMMU is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const g = s.openGroup();
  s.setContainer(g, s.openContainer());
  return tryGetDeviceFd(s, g, t.device);
}));

conformanceCase(t, 'group: GET_DEVICE_FD returns a new fd', FD, () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.attach().group, t.device);
}));

conformanceCase(t, 'group: a second GET_DEVICE_FD while the first is open returns another fd', FD, () => withSession(t, (s) => {
  const { group } = s.open();
  return tryGetDeviceFd(s, group, t.device);
}));

conformanceCase(t, 'group: GET_DEVICE_FD of an unknown name is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.attach().group, '0000:ff:1f.7');
}));

conformanceCase(t, 'group: GET_DEVICE_FD of the empty name is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.attach().group, '');
}));

// vfio_pci_core_match: the name must be the address, optionally followed by a space and
// options; anything else right after the address does not match.
conformanceCase(t, 'group: GET_DEVICE_FD of the address with a suffix is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.attach().group, `${t.device}x`);
}));

conformanceCase(t, 'group: GET_DEVICE_FD of a prefix of the address is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.attach().group, t.device.slice(0, -2));
}));

// The name is looked up (vfio_device_get_from_name) before the container is checked.
conformanceCase(t, 'group: GET_DEVICE_FD of an unknown name without a container is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  return tryGetDeviceFd(s, s.openGroup(), '0000:ff:1f.7');
}));

conformanceCase(t, 'group: reopening is EBUSY while a device fd outlives the group fd, then works',
  { whileDeviceOpen: fails('EBUSY'), afterDeviceClosed: FD }, () => withSession(t, (s) => {
    const { group, device } = s.open();
    s.close(group);
    const whileDeviceOpen = tryOpenGroup(s);
    s.close(device);
    const afterDeviceClosed = tryOpenGroup(s);
    return { whileDeviceOpen, afterDeviceClosed };
  }));

conformanceCase(t, 'group: a device fd keeps working after its group fd is closed',
  { outcome: ok(0), num_regions: 9, num_irqs: 5 }, () => withSession(t, (s) => {
    const { group, device } = s.open();
    s.close(group);
    const { outcome, info } = deviceInfo(s.sys, device, vfio_device_info.size);
    return { outcome, num_regions: info.num_regions, num_irqs: info.num_irqs };
  }));

conformanceCase(t, 'group: an unknown group ioctl is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const g = s.openGroup();
  return attempt(() => s.sys.ioctl(g, UNKNOWN_IOCTL, 0));
}));

conformanceCase(t, 'group: GET_API_VERSION on a group fd is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const g = s.openGroup();
  return attempt(() => s.sys.ioctl(g, ioctls.VFIO_GET_API_VERSION));
}));

conformanceCase(t, 'group: DEVICE_GET_INFO on a group fd is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const g = s.openGroup();
  return attempt(() => s.sys.ioctl(g, ioctls.VFIO_DEVICE_GET_INFO, vfio_device_info.encode({ argsz: 20 })));
}));
