// Conformance: the device fd's info ioctls (vfio_pci_core_ioctl and friends) for
// QEMU's edu behind vfio-pci: 9 regions (BAR0 1 MiB MMIO, no ROM, 256-byte config, no
// VGA), 5 IRQ indexes (INTx, MSI 1, MSI-X 0, no ERR: not PCI Express, REQ), no reset.
import {
  ioctls, flags as F, pciIrq, pciRegion, vfio_device_feature, vfio_device_gfx_plane_info, vfio_device_ioeventfd,
  vfio_pci_hot_reset, vfio_pci_hot_reset_info,
} from '../../src/uapi/index.js';
import { deviceInfo, irqInfo, regionInfo, SENTINEL } from './abi.js';
import { attempt, byFlavour, conformanceCase, fails, ok } from './outcome.js';
import { setupFile, withSession } from './target.js';

const t = setupFile();

const UNKNOWN_IOCTL = (0x3b << 8) | 150;
const MiB = 1n << 20n;
const offsetOf = (index: number) => BigInt(index) << 40n;
const RW = F.VFIO_REGION_INFO_FLAG_READ | F.VFIO_REGION_INFO_FLAG_WRITE;

// --- GET_INFO -----------------------------------------------------------------------

// With argsz >= 20 the kernel writes cap_offset too (0: vfio-pci has no device caps on x86).
conformanceCase(t, 'device: GET_INFO reports PCI, 9 regions, 5 irqs',
  { outcome: ok(0), argsz: 20, flags: F.VFIO_DEVICE_FLAGS_PCI, num_regions: 9, num_irqs: 5, cap_offset: 0 }, () => withSession(t, (s) => {
    const { outcome, info } = deviceInfo(s.sys, s.open().device, 20);
    return { outcome, ...info };
  }));

// minsz is 16 (through num_irqs): with argsz 16 only those bytes are written back.
conformanceCase(t, 'device: GET_INFO with argsz 16 leaves cap_offset alone',
  { outcome: ok(0), argsz: 16, flags: F.VFIO_DEVICE_FLAGS_PCI, num_regions: 9, num_irqs: 5, cap_offset: SENTINEL }, () => withSession(t, (s) => {
    const { outcome, info } = deviceInfo(s.sys, s.open().device, 16);
    return { outcome, ...info };
  }));

conformanceCase(t, 'device: GET_INFO with argsz 15 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  return deviceInfo(s.sys, s.open().device, 15).outcome;
}));

conformanceCase(t, 'device: GET_INFO without the RESET flag on edu (no reset method)', 0, () => withSession(t, (s) => {
  return deviceInfo(s.sys, s.open().device).info.flags & F.VFIO_DEVICE_FLAGS_RESET;
}));

// --- GET_REGION_INFO ----------------------------------------------------------------

const regionCase = (name: string, index: number, expected: unknown) =>
  conformanceCase(t, `device: REGION_INFO ${name}`, expected, () => withSession(t, (s) => {
    const { outcome, info } = regionInfo(s.sys, s.open().device, index);
    if (!('ret' in outcome)) return { outcome };
    return { outcome, flags: info.flags, index: info.index, cap_offset: info.cap_offset, size: info.size, offset: info.offset };
  }));

regionCase('BAR0 is a 1 MiB read/write/mmap region at offset 0', pciRegion.VFIO_PCI_BAR0_REGION_INDEX,
  { outcome: ok(0), flags: RW | F.VFIO_REGION_INFO_FLAG_MMAP, index: 0, cap_offset: 0, size: MiB, offset: 0n });
for (const i of [1, 2, 3, 4, 5]) {
  regionCase(`BAR${i} (unimplemented) has size 0 and flags 0 at index << 40`, i,
    { outcome: ok(0), flags: 0, index: i, cap_offset: 0, size: 0n, offset: offsetOf(i) });
}
regionCase('ROM (none) has size 0 and flags 0', pciRegion.VFIO_PCI_ROM_REGION_INDEX,
  { outcome: ok(0), flags: 0, index: 6, cap_offset: 0, size: 0n, offset: offsetOf(6) });
regionCase('CONFIG is 256 read/write bytes', pciRegion.VFIO_PCI_CONFIG_REGION_INDEX,
  { outcome: ok(0), flags: RW, index: 7, cap_offset: 0, size: 256n, offset: offsetOf(7) });
regionCase('VGA on a device without VGA is EINVAL', pciRegion.VFIO_PCI_VGA_REGION_INDEX, { outcome: fails('EINVAL') });
regionCase('index 9 (no device-specific regions) is EINVAL', 9, { outcome: fails('EINVAL') });

conformanceCase(t, 'device: REGION_INFO with argsz 31 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  return regionInfo(s.sys, s.open().device, 0, 31).outcome;
}));

conformanceCase(t, 'device: REGION_INFO with a larger argsz keeps it', { outcome: ok(0), argsz: 64, size: MiB }, () => withSession(t, (s) => {
  const { outcome, info } = regionInfo(s.sys, s.open().device, 0, 64);
  return { outcome, argsz: info.argsz, size: info.size };
}));

// The whole struct is copied in; without capabilities cap_offset is never assigned,
// so it goes back as the caller gave it.
conformanceCase(t, 'device: REGION_INFO without capabilities leaves cap_offset as given', { outcome: ok(0), cap_offset: SENTINEL }, () => withSession(t, (s) => {
  const { outcome, info } = regionInfo(s.sys, s.open().device, 0, 32, SENTINEL);
  return { outcome, cap_offset: info.cap_offset };
}));

// --- GET_IRQ_INFO -------------------------------------------------------------------

const EVENTFD_NORESIZE = F.VFIO_IRQ_INFO_EVENTFD | F.VFIO_IRQ_INFO_NORESIZE;
const irqCase = (name: string, index: number, expected: unknown) =>
  conformanceCase(t, `device: IRQ_INFO ${name}`, expected, () => withSession(t, (s) => {
    const { outcome, info } = irqInfo(s.sys, s.open().device, index);
    if (!('ret' in outcome)) return { outcome };
    return { outcome, ...info };
  }));

irqCase('INTx is maskable and automasked with 1 vector', pciIrq.VFIO_PCI_INTX_IRQ_INDEX,
  { outcome: ok(0), argsz: 16, flags: F.VFIO_IRQ_INFO_EVENTFD | F.VFIO_IRQ_INFO_MASKABLE | F.VFIO_IRQ_INFO_AUTOMASKED, index: 0, count: 1 });
irqCase('MSI has 1 vector, NORESIZE', pciIrq.VFIO_PCI_MSI_IRQ_INDEX, { outcome: ok(0), argsz: 16, flags: EVENTFD_NORESIZE, index: 1, count: 1 });
irqCase('MSI-X has 0 vectors on edu', pciIrq.VFIO_PCI_MSIX_IRQ_INDEX, { outcome: ok(0), argsz: 16, flags: EVENTFD_NORESIZE, index: 2, count: 0 });
irqCase('ERR on a device that is not PCI Express is EINVAL', pciIrq.VFIO_PCI_ERR_IRQ_INDEX, { outcome: fails('EINVAL') });
irqCase('REQ has 1 vector', pciIrq.VFIO_PCI_REQ_IRQ_INDEX, { outcome: ok(0), argsz: 16, flags: EVENTFD_NORESIZE, index: 4, count: 1 });
irqCase('index 5 is EINVAL', 5, { outcome: fails('EINVAL') });

conformanceCase(t, 'device: IRQ_INFO with argsz 15 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  return irqInfo(s.sys, s.open().device, 0, 15).outcome;
}));

// --- RESET and ioctls vfio-pci does not have -----------------------------------------

conformanceCase(t, 'device: RESET on edu (reset does not work) is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_RESET));
}));

// vfio_pci_ioctl_pci_hot_reset. edu sits on the root bus with no slot: no slot or bus reset
// (pci_probe_reset_slot and pci_probe_reset_bus fail), ENODEV. 6.12 first refuses count 0
// from a group user (a zero-length array is only for cdev users): EINVAL; 6.1 has no such check.
const hotReset = (argsz: number, count: number) => vfio_pci_hot_reset.encode({ argsz, flags: 0, count }, 16);

conformanceCase(t, 'device: GET_PCI_HOT_RESET_INFO on edu (no slot or bus reset) is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, vfio_pci_hot_reset_info.encode({ argsz: 12 }, 12)));
}));

conformanceCase(t, 'device: PCI_HOT_RESET with count 1 on edu is ENODEV', fails('ENODEV'), () => withSession(t, (s) => {
  const { group, device } = s.open();
  const buf = hotReset(16, 1);
  new DataView(buf.buffer).setInt32(12, group, true);
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_PCI_HOT_RESET, buf));
}));

conformanceCase(t, 'device: PCI_HOT_RESET with count 0 is ENODEV (6.1) or EINVAL (6.12)',
  byFlavour(t, { '6.1': fails('ENODEV'), '6.12': fails('EINVAL') }), () => withSession(t, (s) => {
    const { device } = s.open();
    return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_PCI_HOT_RESET, hotReset(12, 0)));
  }), { versionDependent: 'PCI_HOT_RESET with count 0: 6.12 refuses it (EINVAL, zero-length arrays are for cdev users) before probing for a reset (ENODEV on 6.1)' });

conformanceCase(t, 'device: an unknown device ioctl is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, UNKNOWN_IOCTL, 0));
}));

conformanceCase(t, 'device: GET_API_VERSION on a device fd is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_GET_API_VERSION));
}));

conformanceCase(t, 'device: GROUP_GET_STATUS on a device fd is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_GROUP_GET_STATUS, new Uint8Array(8)));
}));

// vfio_pci_core_ioctl has no case for the mdev display ioctls.
conformanceCase(t, 'device: QUERY_GFX_PLANE on vfio-pci is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { device } = s.open();
  const buf = vfio_device_gfx_plane_info.encode({ argsz: vfio_device_gfx_plane_info.size, flags: F.VFIO_GFX_PLANE_TYPE_PROBE });
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_QUERY_GFX_PLANE, buf));
}));

// vfio_pci_ioctl_ioeventfd: argsz below offsetofend(fd) = 28, unknown flags, or not
// exactly one size flag: EINVAL, before any BAR is looked at.
const ioeventfd = (argsz: number, flags: number, fd = -1) =>
  vfio_device_ioeventfd.encode({ argsz, flags, offset: 0n, data: 0n, fd });

conformanceCase(t, 'device: IOEVENTFD with argsz 27 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_IOEVENTFD, ioeventfd(27, F.VFIO_DEVICE_IOEVENTFD_32)));
}));

conformanceCase(t, 'device: IOEVENTFD without a size flag is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_IOEVENTFD, ioeventfd(32, 0)));
}));

conformanceCase(t, 'device: IOEVENTFD with two size flags is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_IOEVENTFD,
    ioeventfd(32, F.VFIO_DEVICE_IOEVENTFD_16 | F.VFIO_DEVICE_IOEVENTFD_32)));
}));

conformanceCase(t, 'device: IOEVENTFD with an unknown flag is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_IOEVENTFD, ioeventfd(32, F.VFIO_DEVICE_IOEVENTFD_32 | 0x10)));
}));

// vfio_ioctl_device_feature (vfio_main.c) checks argsz and flags before any feature.
const feature = (argsz: number, flags: number) => vfio_device_feature.encode({ argsz, flags }, 16);

conformanceCase(t, 'device: DEVICE_FEATURE with argsz 7 is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_FEATURE, feature(7, F.VFIO_DEVICE_FEATURE_PROBE | F.VFIO_DEVICE_FEATURE_GET | 1)));
}));

conformanceCase(t, 'device: DEVICE_FEATURE with an unknown flag is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_FEATURE, feature(8, F.VFIO_DEVICE_FEATURE_GET | (1 << 20) | 1)));
}));

conformanceCase(t, 'device: DEVICE_FEATURE with GET and SET but no PROBE is EINVAL', fails('EINVAL'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_FEATURE,
    feature(8, F.VFIO_DEVICE_FEATURE_GET | F.VFIO_DEVICE_FEATURE_SET | 1)));
}));

// VFIO_DEVICE_FEATURE_MIGRATION (1) on a device without migration ops: ENOTTY.
conformanceCase(t, 'device: DEVICE_FEATURE PROBE of MIGRATION on edu is ENOTTY', fails('ENOTTY'), () => withSession(t, (s) => {
  const { device } = s.open();
  return attempt(() => s.sys.ioctl(device, ioctls.VFIO_DEVICE_FEATURE,
    feature(8, F.VFIO_DEVICE_FEATURE_PROBE | F.VFIO_DEVICE_FEATURE_GET | 1)));
}));
