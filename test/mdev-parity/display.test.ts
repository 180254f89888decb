// The display vGPU held against the kernel's mbochs: the same VFIO_DEVICE_QUERY_GFX_PLANE
// queries and EDID region accesses, for the same modes and inputs, on our display-xga
// (mock kernel) and on mbochs-medium (real kernel, in the guest): both have 16 MiB of
// video memory. Rules from samples/vfio-mdev/mbochs.c (mbochs_query_gfx_plane,
// mbochs_check_framebuffer, handle_edid_regs/handle_edid_blob, handle_mmio_read) and
// the uapi's comments in include/uapi/linux/vfio.h. Outcomes are recorded for the
// parity; where the two differ by design the case says why.
import { after, describe } from 'node:test';
import { deviceInfo } from '../conformance/abi.js';
import { conformanceCase, fails, ok, type Outcome } from '../conformance/outcome.js';
import { DisplayDevice, REGION_INFO_WITH_TYPE } from './display-device.js';
import { setupMdevFile, uuidFor } from './target.js';

const t = setupMdevFile();
const PROBE = 1;
const DMABUF = 2;
const REGION = 4;
const CURSOR = 2;
const OVERLAY = 0;
const XRGB8888 = 0x34325258;
const MiB = 1024 * 1024;
/** Both subjects' video memory. */
const VIDEO_MEMORY = 16 * MiB;
/** The expected value on our display (the mock) or on mbochs (a real kernel). */
const bySide = <T>(v: { ours: T; mbochs: T }): T => (t.kind === 'mock' ? v.ours : v.mbochs);
const LINK_UP = 1;
const LINK_DOWN = 2;
/** struct vfio_region_gfx_edid. */
const Edid = { OFFSET: 0, MAX_SIZE: 4, SIZE: 8, MAX_XRES: 12, MAX_YRES: 16, LINK_STATE: 20 } as const;

function displaySuite(parent: string, type: string): void {
  const sys = t.sys;
  const uuid = uuidFor({ key: 'mbochs' }, 2, 1);
  let opened: DisplayDevice | Error | undefined;
  /** The device, made and opened on first use; a failure to do so fails every case that needs it. */
  const dev = (): DisplayDevice => {
    if (opened === undefined) {
      try {
        sys.sysfs.write(`/sys/class/mdev_bus/${parent}/mdev_supported_types/${type}/create`, uuid);
        opened = new DisplayDevice(sys, uuid);
      } catch (err) {
        opened = err instanceof Error ? err : new Error(String(err));
      }
    }
    if (opened instanceof Error) throw opened;
    return opened;
  };
  after(() => {
    if (opened instanceof DisplayDevice) opened.close();
    if (sys.sysfs.exists(`/sys/bus/mdev/devices/${uuid}`)) sys.sysfs.write(`/sys/bus/mdev/devices/${uuid}/remove`, '1');
  });
  const name = (what: string): string => `display parity: ${what}`;
  /** The plane kind the device offers: REGION (ours, mdpy) or DMABUF (mbochs). */
  const kind = (): number => ('ret' in dev().query(PROBE | REGION).outcome ? REGION : DMABUF);

  /** What a plane query says, without the union member (a region index or a dma-buf id). */
  const planeOf = (q: ReturnType<DisplayDevice['query']>): Record<string, unknown> => {
    if (!('ret' in q.outcome)) return { outcome: q.outcome };
    const p = q.plane;
    return {
      outcome: q.outcome, drm_format: p.drm_format, drm_format_mod: p.drm_format_mod, width: p.width, height: p.height,
      stride: p.stride, size: p.size, x_pos: p.x_pos, y_pos: p.y_pos, x_hot: p.x_hot, y_hot: p.y_hot,
    };
  };
  const off = { outcome: ok(), drm_format: 0, drm_format_mod: 0n, width: 0, height: 0, stride: 0, size: 0, x_pos: 0, y_pos: 0, x_hot: 0, y_hot: 0 };
  /** A shown plane; its size on our side rounded up to a page (see SIZE_REASON). */
  const shown = (width: number, height: number, stride: number) => {
    const bytes = stride * height;
    const size = bySide({ ours: Math.ceil(bytes / sys.pageSize) * sys.pageSize, mbochs: bytes });
    return { ...off, drm_format: XRGB8888, width, height, stride, size };
  };
  const SIZE_REASON = 'plane size: ours is stride x height rounded up to a page, as the uapi asks ("size of plane in bytes, align on page"; mdpy gives its whole page-aligned memory); mbochs gives stride x height';
  /** A mode's plane once the device has seen it (mbochs allocates a dma-buf on the first query). */
  const settled = (opts: { planeType?: number } = {}) => {
    dev().query(kind(), opts);
    return planeOf(dev().query(kind(), opts));
  };

  // ---- the device ----

  conformanceCase(t, name('GET_INFO: flags, regions, irqs'), { outcome: ok(), flags: bySide({ ours: 3, mbochs: 2 }), num_regions: 10, num_irqs: 5 }, () => {
    const { outcome, info } = deviceInfo(sys, dev().device);
    return { outcome, flags: info.flags, num_regions: info.num_regions, num_irqs: info.num_irqs };
  }, { versionDependent: 'mbochs sample: it answers VFIO_DEVICE_RESET but leaves VFIO_DEVICE_FLAGS_RESET out of GET_INFO; ours sets it, as vfio-pci does for a device that resets' });

  const regionOf = (i: number): unknown[] => {
    const r = dev().regionInfo(i);
    return 'ret' in r.outcome ? [r.info.flags, Number(r.info.size)] : [r.outcome];
  };
  conformanceCase<unknown[]>(t, name('regions: BAR0 to BAR5 and ROM (flags, size)'),
    [[7, VIDEO_MEMORY], [0, 0], [3, 4096], [0, 0], [0, 0], [0, 0], [0, 0]], () => [0, 1, 2, 3, 4, 5, 6].map(regionOf));
  conformanceCase<unknown[]>(t, name('regions: config space (flags, size)'), bySide({ ours: [3, 256], mbochs: [3, 0xff] }), () => regionOf(7),
    { versionDependent: 'mbochs sample: MBOCHS_CONFIG_SPACE_SIZE is 0xff, one byte short of the 256 of a PCI config space; ours is 256, as vfio-pci\'s' });
  conformanceCase<unknown[]>(t, name('regions: VGA on a device without VGA'), bySide({ ours: [fails('EINVAL')], mbochs: [0, 0] }), () => regionOf(8),
    { versionDependent: 'mbochs sample: any index below its count it does not know answers size 0, flags 0; ours answers EINVAL, as vfio-pci does for VGA on a device without it' });

  // ---- QUERY_GFX_PLANE: probes, flags, argsz ----

  conformanceCase(t, name('plane: the kinds a probe finds'), bySide({
    ours: { region: ok(), dmabuf: fails('EINVAL') }, mbochs: { region: fails('EINVAL'), dmabuf: ok() },
  }), () => ({
    region: dev().query(PROBE | REGION).outcome,
    dmabuf: dev().query(PROBE | DMABUF).outcome,
  }), { versionDependent: 'by design: our display offers region planes (as the kernel\'s mdpy), mbochs dma-buf planes; each probe answers 0 for its own kind and EINVAL for the other, as the uapi says' });

  const flagCases: [string, () => number][] = [
    ['PROBE alone', () => PROBE],
    ['PROBE with both kinds', () => PROBE | REGION | DMABUF],
    ['PROBE, the kind and an unknown bit', () => PROBE | kind() | 8],
    ['flags 0', () => 0],
    ['both kinds, no PROBE', () => REGION | DMABUF],
    ['the kind and an unknown bit', () => kind() | 8],
    ['the other kind', () => (kind() === REGION ? DMABUF : REGION)],
  ];
  for (const [what, flags] of flagCases) {
    conformanceCase(t, name(`plane: ${what} (EINVAL)`), fails('EINVAL'), () => dev().query(flags()).outcome);
  }

  conformanceCase(t, name('plane: argsz 59, one byte short of region_index (EINVAL)'), fails('EINVAL'), () => dev().query(kind(), { argsz: 59 }).outcome);
  conformanceCase(t, name('plane: argsz 0 (EINVAL)'), fails('EINVAL'), () => dev().query(kind(), { argsz: 0 }).outcome);
  conformanceCase(t, name('plane: argsz 60 (enough)'), ok(), () => dev().query(kind(), { argsz: 60 }).outcome);
  conformanceCase(t, name('plane: argsz 4096 (more than the struct: fine)'), ok(), () => dev().query(kind(), { argsz: 4096 }).outcome);

  // ---- QUERY_GFX_PLANE: modes ----

  conformanceCase<unknown>(t, name('plane: after VFIO_DEVICE_RESET the display is off'), { reset: ok(), plane: { ...off }, index: 0 }, () => {
    const reset = dev().reset();
    const q = dev().query(kind());
    return { reset, plane: planeOf(q), index: q.plane.region_index };
  });

  conformanceCase(t, name('plane: the first query of a mode not queried before'), bySide({ ours: ok(), mbochs: fails('ENOMEM') }), () => {
    dev().setMode({ xres: 720, yres: 400 });
    return dev().query(kind()).outcome;
  }, { versionDependent: 'mbochs sample bug: mbochs_query_gfx_plane allocates the dma-buf of a new mode but never assigns it (`if (!dmabuf) mbochs_dmabuf_alloc(...)`), so the first query of each mode returns ENOMEM and the next succeeds' });

  const modeCase = (what: string, mode: Parameters<DisplayDevice['setMode']>[0], expected: Record<string, unknown>, reason?: string): void => {
    const unaligned = typeof expected['stride'] === 'number' && ((expected['stride'] as number) * (expected['height'] as number)) % sys.pageSize !== 0;
    const why = reason ?? (unaligned ? SIZE_REASON : undefined);
    conformanceCase<Record<string, unknown>>(t, name(`plane: ${what}`), expected, () => {
      dev().setMode(mode);
      return settled();
    }, why === undefined ? {} : { versionDependent: why });
  };
  modeCase('640x480x32', { xres: 640, yres: 480 }, shown(640, 480, 2560));
  modeCase('1024x768x32', { xres: 1024, yres: 768 }, shown(1024, 768, 4096));
  modeCase('1280x1024x32, beyond display-xga\'s largest mode', { xres: 1280, yres: 1024 }, shown(1280, 1024, 5120));
  modeCase('2048x2048x32, the whole video memory', { xres: 2048, yres: 2048 }, shown(2048, 2048, 8192));
  modeCase('2048x2049x32, one row past the video memory', { xres: 2048, yres: 2049 }, off);
  modeCase('16 bits per pixel (not shown)', { xres: 640, yres: 480, bpp: 16 }, off);
  modeCase('24 bits per pixel (not shown)', { xres: 640, yres: 480, bpp: 24 }, off);
  modeCase('8 bits per pixel (not shown)', { xres: 640, yres: 480, bpp: 8 }, off);
  modeCase('63 pixels wide (below 64: not shown)', { xres: 63, yres: 480 }, off);
  modeCase('64x64, the smallest', { xres: 64, yres: 64 }, shown(64, 64, 256));
  modeCase('the mode set but ENABLE clear (not shown)', { xres: 640, yres: 480, enable: 0 }, off);
  modeCase('801x600, an odd width: stride 3204', { xres: 801, yres: 600 }, shown(801, 600, 3204));
  modeCase('800x600 with a virtual width of 1000: stride 4000', { xres: 800, yres: 600, virtWidth: 1000 }, shown(800, 600, 4000));
  modeCase('800x600 with a virtual width below the width: stride 3200', { xres: 800, yres: 600, virtWidth: 100 }, shown(800, 600, 3200));
  modeCase('800x600 panned by 8 pixels (X_OFFSET)', { xres: 800, yres: 600, xOffset: 8 }, bySide({ ours: off, mbochs: shown(800, 600, 3200) }),
    'by design: a region plane has no offset field, so ours shows nothing while panned; mbochs\' dma-buf starts at the offset');

  conformanceCase<Record<string, unknown>>(t, name('plane: a cursor plane query with a mode shown'), off, () => {
    dev().setMode({ xres: 640, yres: 480 });
    return settled({ planeType: CURSOR });
  });
  conformanceCase<Record<string, unknown>>(t, name('plane: an overlay plane query with a mode shown'), off, () => {
    dev().setMode({ xres: 640, yres: 480 });
    return settled({ planeType: OVERLAY });
  });

  // ---- the EDID region ----

  conformanceCase(t, name('edid: region info (flags, size, type/subtype capability)'), { outcome: ok(), flags: 0xb, size: 4096, argsz: REGION_INFO_WITH_TYPE }, () => {
    const r = dev().regionInfo(dev().edidIndex, REGION_INFO_WITH_TYPE);
    return { outcome: r.outcome, flags: r.info.flags, size: Number(r.info.size), argsz: r.info.argsz };
  });

  conformanceCase(t, name('regions: GET_REGION_INFO with an argsz of 256 (more than the info and its capability)'),
    bySide({ ours: ok(), mbochs: fails('EINVAL') }), () => dev().regionInfo(dev().edidIndex, 256).outcome,
    { versionDependent: 'mbochs sample: its GET_REGION_INFO refuses an argsz above sizeof(struct vfio_region_info_ext) (48) with EINVAL; ours takes a larger buffer, as vfio-pci does' });

  conformanceCase(t, name('edid: the state before any write (edid_size, link_state)'), bySide({ ours: [128, LINK_UP], mbochs: [0, 0] }),
    () => [dev().edidReg(Edid.SIZE), dev().edidReg(Edid.LINK_STATE)],
    { versionDependent: 'by design: our display starts with a monitor plugged in (our EDID for the type\'s largest mode, link up); mbochs\' monitor is blank (size 0, link_state 0) until the VMM writes one' });

  conformanceCase(t, name('edid: edid_offset and edid_max_size'), { offset: 0x800, maxSize: 0x400 }, () => ({
    offset: dev().edidReg(Edid.OFFSET), maxSize: dev().edidReg(Edid.MAX_SIZE),
  }));

  conformanceCase(t, name('edid: max_xres and max_yres'), bySide({ ours: [1024, 768], mbochs: [1920, 1440] }), () => [dev().edidReg(Edid.MAX_XRES), dev().edidReg(Edid.MAX_YRES)],
    { versionDependent: 'type-specific: mbochs-medium allows 1920x1440, our display-xga 1024x768 (the same 16 MiB)' });

  const blob = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  /** The uapi's update protocol: link down, the blob, its size, link up. */
  const loadEdid = (bytes: Uint8Array, size = bytes.length): Outcome[] => [
    dev().setEdidReg(Edid.LINK_STATE, LINK_DOWN),
    dev().writeEdidBlob(0x800, 0, bytes),
    dev().setEdidReg(Edid.SIZE, size),
    dev().setEdidReg(Edid.LINK_STATE, LINK_UP),
  ];

  conformanceCase(t, name('edid: a 128-byte EDID by the update protocol'), {
    writes: [ok(4), ok(128), ok(4), ok(4)], size: 128, link: LINK_UP, blob: hex(blob(128, 1)), mirror: hex(blob(128, 1)), mirrorPast: '00'.repeat(128),
  }, () => {
    const writes = loadEdid(blob(128, 1));
    return {
      writes, size: dev().edidReg(Edid.SIZE), link: dev().edidReg(Edid.LINK_STATE),
      blob: hex(dev().edidBlob(0x800, 0, 128)), mirror: hex(dev().mirror(0, 128)), mirrorPast: hex(dev().mirror(128, 128)),
    };
  });

  conformanceCase(t, name('edid: an EDID shorter than the region (64 bytes): the mirror reads zeros past it'), {
    mirror: hex(blob(64, 2)), mirrorPast: '00'.repeat(64), regionPast: hex(blob(128, 2).subarray(64)),
  }, () => {
    loadEdid(blob(128, 2), 64);
    return { mirror: hex(dev().mirror(0, 64)), mirrorPast: hex(dev().mirror(64, 64)), regionPast: hex(dev().edidBlob(0x800, 64, 64)) };
  });

  conformanceCase(t, name('edid: writes past edid_max_size are taken and dropped; edid_size may exceed it'), {
    inside: ok(4), past: ok(4), size: 0x800, last: '5a5a5a5a', mirrorLast: '5a5a5a5a',
  }, () => {
    loadEdid(blob(128, 3));
    const inside = dev().writeEdidBlob(0x800, 0x3fc, Uint8Array.of(0x5a, 0x5a, 0x5a, 0x5a));
    const past = dev().writeEdidBlob(0x800, 0x400, Uint8Array.of(0xa5, 0xa5, 0xa5, 0xa5));
    dev().setEdidReg(Edid.SIZE, 0x800);
    return { inside, past, size: dev().edidReg(Edid.SIZE), last: hex(dev().edidBlob(0x800, 0x3fc, 4)), mirrorLast: hex(dev().mirror(0x3fc, 4)) };
  });

  conformanceCase(t, name('edid: link down: the mirror reads zeros; any link_state value is kept'), {
    down: '00'.repeat(16), odd: 7, oddMirror: '00'.repeat(16), up: hex(blob(16, 4)),
  }, () => {
    loadEdid(blob(128, 4));
    dev().setEdidReg(Edid.LINK_STATE, LINK_DOWN);
    const down = hex(dev().mirror(0, 16));
    dev().setEdidReg(Edid.LINK_STATE, 7);
    const odd = dev().edidReg(Edid.LINK_STATE);
    const oddMirror = hex(dev().mirror(0, 16));
    dev().setEdidReg(Edid.LINK_STATE, LINK_UP);
    return { down, odd, oddMirror, up: hex(dev().mirror(0, 16)) };
  });

  conformanceCase(t, name('edid: read-only registers ignore writes; a 2-byte write to edid_size is ignored'), {
    writes: [ok(4), ok(4), ok(4), ok(4), ok(2)], offset: 0x800, maxSize: 0x400, size: 128, maxResKept: true,
  }, () => {
    loadEdid(blob(128, 5));
    const maxRes = (): number[] => [dev().edidReg(Edid.MAX_XRES), dev().edidReg(Edid.MAX_YRES)];
    const before = maxRes();
    const writes = [
      dev().setEdidReg(Edid.OFFSET, 0x100), dev().setEdidReg(Edid.MAX_SIZE, 0x100),
      dev().setEdidReg(Edid.MAX_XRES, 123), dev().setEdidReg(Edid.MAX_YRES, 456), dev().setEdidReg(Edid.SIZE, 64, 2),
    ];
    const after = maxRes();
    return {
      writes, offset: dev().edidReg(Edid.OFFSET), maxSize: dev().edidReg(Edid.MAX_SIZE), size: dev().edidReg(Edid.SIZE),
      maxResKept: before[0] === after[0] && before[1] === after[1],
    };
  });
}

if (t.display) {
  const { parent, type } = t.display;
  describe(`display parity: ${parent}/${type}`, () => displaySuite(parent, type));
} else {
  describe('display parity', { skip: 'no mbochs parent on this kernel' }, () => {});
}
