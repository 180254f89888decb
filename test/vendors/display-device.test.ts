// The display vGPU through the VFIO client: the dispi mode registers in BAR2,
// VFIO_DEVICE_QUERY_GFX_PLANE (probe, query, disabled and undisplayable modes, argsz),
// and the EDID region (its registers, the blob, the update protocol and the MMIO mirror).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flags as F, ioctls, regionTypes, vfio_device_gfx_plane_info } from '../../src/uapi/index.js';
import { openPciDevice, pciCommand, type PciDeviceHandle } from '../../src/vfio/index.js';
import {
  buildEdid, DISPI_ID5, DispiEnable, DispiReg, dispiOffset, DRM_FORMAT_XRGB8888, EDID_BLOB_OFFSET, EdidReg, preferredMode,
} from '../../src/vendors/display/index.js';
import { DisplayGuest } from '../../src/vendors/display/guest.js';
import { displayWorld, testUuid } from './display-world.js';

const PROBE = F.VFIO_GFX_PLANE_TYPE_PROBE;
const DMABUF = F.VFIO_GFX_PLANE_TYPE_DMABUF;
const REGION = F.VFIO_GFX_PLANE_TYPE_REGION;

function withVga(fn: (h: PciDeviceHandle, world: ReturnType<typeof displayWorld>) => void, type = 'vga'): void {
  const world = displayWorld();
  const uuid = world.create(type, testUuid(1));
  const handle = openPciDevice(world.sys, uuid);
  try {
    handle.device.config.enable(pciCommand.MEMORY);
    fn(handle, world);
  } finally {
    handle.close();
    world.close();
  }
}

function query(h: PciDeviceHandle, flags: number, fields: { argsz?: number; drm_plane_type?: number } = {}, length = 64): Uint8Array {
  const full = vfio_device_gfx_plane_info.encode({ argsz: fields.argsz ?? 64, flags, drm_plane_type: fields.drm_plane_type ?? 1 });
  full.fill(0xee, 60, 64);
  const buf = full.subarray(0, length);
  h.device.sys.ioctl(h.device.fd, ioctls.VFIO_DEVICE_QUERY_GFX_PLANE, buf);
  return buf;
}

function setMode(h: PciDeviceHandle, regs: Partial<Record<keyof typeof DispiReg, number>>): void {
  const bar2 = h.device.bar(2);
  bar2.write16(dispiOffset(DispiReg.ENABLE), 0);
  for (const [name, v] of Object.entries(regs)) if (name !== 'ENABLE') bar2.write16(dispiOffset(DispiReg[name as keyof typeof DispiReg]), v);
  if (regs.ENABLE !== undefined) bar2.write16(dispiOffset(DispiReg.ENABLE), regs.ENABLE);
}

const MODE_640 = { XRES: 640, YRES: 480, BPP: 32, VIRT_WIDTH: 640, ENABLE: DispiEnable.ENABLED | DispiEnable.LFB_ENABLED };

test('dispi registers: ID 0xb0c5 and video memory read-only, 16-bit accesses only, GETCAPS shows the maximum, reset clears', () => {
  withVga((h) => {
    const bar2 = h.device.bar(2);
    const reg = (i: number): number => bar2.read16(dispiOffset(i));
    assert.equal(reg(DispiReg.ID), DISPI_ID5);
    assert.equal(reg(DispiReg.VIDEO_MEMORY_64K), 64, '4 MiB in 64 KiB units');
    bar2.write16(dispiOffset(DispiReg.ID), 0xb0c0);
    bar2.write16(dispiOffset(DispiReg.VIDEO_MEMORY_64K), 1);
    assert.deepEqual([reg(DispiReg.ID), reg(DispiReg.VIDEO_MEMORY_64K)], [DISPI_ID5, 64]);
    bar2.write16(dispiOffset(DispiReg.XRES), 320);
    bar2.write16(dispiOffset(DispiReg.Y_OFFSET), 7);
    assert.deepEqual([reg(DispiReg.XRES), reg(DispiReg.Y_OFFSET)], [320, 7]);
    bar2.write32(dispiOffset(DispiReg.YRES), 0x00c8_00c8);
    assert.equal(reg(DispiReg.YRES), 0, 'a 32-bit write is ignored');
    assert.equal(bar2.read32(dispiOffset(DispiReg.ID)), 0, 'a 32-bit read reads 0');
    assert.equal(bar2.read32(dispiOffset(DispiReg.XRES)), 320, 'unaligned: two 16-bit pieces, XRES and YRES');
    assert.equal(bar2.read8(dispiOffset(DispiReg.XRES)), 0);
    bar2.write16(dispiOffset(DispiReg.ENABLE), DispiEnable.GETCAPS);
    assert.deepEqual([reg(DispiReg.XRES), reg(DispiReg.YRES), reg(DispiReg.BPP)], [640, 480, 32]);
    bar2.write16(dispiOffset(DispiReg.ENABLE), 0);
    assert.equal(reg(DispiReg.XRES), 320);
    assert.equal(bar2.read16(0x600), 0, 'nothing past the dispi registers');
    h.device.reset();
    assert.deepEqual([reg(DispiReg.XRES), reg(DispiReg.Y_OFFSET), reg(DispiReg.ID), reg(DispiReg.VIDEO_MEMORY_64K)], [0, 0, DISPI_ID5, 64]);
  });
});

test('QUERY_GFX_PLANE probe: REGION is offered, DMABUF and anything else EINVAL; GET_GFX_DMABUF is ENOTTY', () => {
  withVga((h) => {
    assert.doesNotThrow(() => query(h, PROBE | REGION));
    assert.throws(() => query(h, PROBE | DMABUF), { code: 'EINVAL' });
    assert.throws(() => query(h, PROBE), { code: 'EINVAL' });
    assert.throws(() => query(h, PROBE | REGION | DMABUF), { code: 'EINVAL' });
    assert.throws(() => query(h, DMABUF), { code: 'EINVAL' });
    assert.throws(() => query(h, REGION | DMABUF), { code: 'EINVAL' });
    assert.throws(() => query(h, 0), { code: 'EINVAL' });
    assert.throws(() => query(h, REGION, { argsz: 59 }), { code: 'EINVAL' });
    assert.throws(() => query(h, REGION, {}, 56), { code: 'EFAULT' });
    assert.equal(vfio_device_gfx_plane_info.decode(new Uint8Array([...query(h, REGION, { argsz: 60 }, 60), 0, 0, 0, 0])).argsz, 60, '60 bytes are enough');
    assert.throws(() => h.device.sys.ioctl(h.device.fd, ioctls.VFIO_DEVICE_GET_GFX_DMABUF, new Uint8Array(4)), { code: 'ENOTTY' });
  });
});

test('QUERY_GFX_PLANE: disabled display is success with zeros; 640x480x32 is XR24 with stride, page-aligned size and BAR0', () => {
  withVga((h) => {
    const off = vfio_device_gfx_plane_info.decode(query(h, REGION));
    assert.deepEqual([off.drm_format, off.width, off.height, off.stride, off.size, off.region_index], [0, 0, 0, 0, 0, 0]);
    setMode(h, MODE_640);
    const buf = query(h, REGION);
    const on = vfio_device_gfx_plane_info.decode(buf);
    assert.deepEqual(
      { ...on, drm_format_mod: Number(on.drm_format_mod) },
      { argsz: 64, flags: REGION, drm_plane_type: 1, drm_format: DRM_FORMAT_XRGB8888, drm_format_mod: 0, width: 640, height: 480,
        stride: 2560, size: 1228800, x_pos: 0, y_pos: 0, x_hot: 0, y_hot: 0, region_index: 0, dmabuf_id: 0 },
    );
    assert.deepEqual([...buf.subarray(60)], [0xee, 0xee, 0xee, 0xee], 'nothing written past region_index');
    setMode(h, { ...MODE_640, XRES: 100, YRES: 75, VIRT_WIDTH: 128 });
    const small = vfio_device_gfx_plane_info.decode(query(h, REGION));
    assert.deepEqual([small.width, small.height, small.stride, small.size], [100, 75, 512, 40960], 'stride from VIRT_WIDTH, size in pages');
    const cursor = vfio_device_gfx_plane_info.decode(query(h, REGION, { drm_plane_type: 2 }));
    assert.deepEqual([cursor.drm_format, cursor.width, cursor.size], [0, 0, 0], 'no cursor plane');
  });
});

test('QUERY_GFX_PLANE: modes the display cannot show read as disabled (depth, size, panning, overflow, off); a mode past the type maximum that fits is shown', () => {
  withVga((h) => {
    const cases: [string, Partial<Record<keyof typeof DispiReg, number>>][] = [
      ['16 bpp', { ...MODE_640, BPP: 16 }],
      ['below 64x64', { ...MODE_640, XRES: 63 }],
      ['panned', { ...MODE_640, X_OFFSET: 8 }],
      ['past the framebuffer', { ...MODE_640, VIRT_WIDTH: 4000 }],
      ['not enabled', { ...MODE_640, ENABLE: DispiEnable.LFB_ENABLED }],
    ];
    for (const [what, regs] of cases) {
      setMode(h, { X_OFFSET: 0, ...regs });
      const p = vfio_device_gfx_plane_info.decode(query(h, REGION));
      assert.deepEqual([p.drm_format, p.width, p.height, p.size], [0, 0, 0, 0], what);
      setMode(h, { ...MODE_640, X_OFFSET: 0 });
      assert.equal(vfio_device_gfx_plane_info.decode(query(h, REGION)).width, 640, `${what}: back to 640x480`);
    }
    // As mbochs_check_framebuffer: the type's largest mode is what the EDID offers; only video memory bounds the plane.
    setMode(h, { ...MODE_640, XRES: 800, YRES: 600, VIRT_WIDTH: 800 });
    const big = vfio_device_gfx_plane_info.decode(query(h, REGION));
    assert.deepEqual([big.drm_format, big.width, big.height, big.stride], [DRM_FORMAT_XRGB8888, 800, 600, 3200], 'past the type maximum');
  });
});

test('enabling a mode clears its pixels unless NOCLEARMEM; mode and pixels survive close and reopen', () => {
  const world = displayWorld();
  const uuid = world.create('vga', testUuid(1));
  try {
    let guest = DisplayGuest.open(world.sys, uuid);
    guest.setMode(640, 480);
    guest.canvas.pixels.fill(0x123456);
    guest.write(DispiReg.ENABLE, 0);
    guest.write(DispiReg.ENABLE, DispiEnable.ENABLED | DispiEnable.NOCLEARMEM);
    assert.equal(guest.canvas.pixels[1000], 0x123456, 'NOCLEARMEM keeps the picture');
    guest.write(DispiReg.ENABLE, 0);
    guest.write(DispiReg.ENABLE, DispiEnable.ENABLED);
    assert.equal(guest.canvas.pixels.some((p) => p !== 0), false, 'enabling cleared it');
    guest.canvas.pixels[5] = 0xabcdef;
    guest.close();
    guest = DisplayGuest.open(world.sys, uuid);
    try {
      assert.equal(guest.read(DispiReg.XRES), 640);
      assert.equal(guest.framebuffer.read32(20), 0xabcdef);
    } finally {
      guest.close();
    }
  } finally {
    world.close();
  }
});

test('EDID region: vfio_region_gfx_edid registers and our EDID for the type\'s largest mode, link up', () => {
  withVga((h) => {
    const r = h.device.region(9);
    const regs = [EdidReg.EDID_OFFSET, EdidReg.EDID_MAX_SIZE, EdidReg.EDID_SIZE, EdidReg.MAX_XRES, EdidReg.MAX_YRES, EdidReg.LINK_STATE].map((o) => r.read32(o));
    assert.deepEqual(regs, [2048, 0x400, 128, 640, 480, 1]);
    const blob = r.read(EDID_BLOB_OFFSET, 128);
    assert.deepEqual(blob, buildEdid({ width: 640, height: 480 }));
    assert.deepEqual([...blob.subarray(0, 8)], [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    assert.equal(blob.reduce((a, b) => a + b, 0) % 256, 0, 'checksum');
    assert.deepEqual(preferredMode(blob), { width: 640, height: 480 });
    assert.equal(new TextDecoder().decode(blob.subarray(95, 104)), 'vfio-vgpu');
    assert.equal(blob[35]! & 0x20, 0x20, '640x480 established');
    assert.equal(blob[35]! & 0x01, 0, '800x600 does not fit');
    assert.deepEqual(h.device.bar(2).read(0, 128), blob, 'MMIO 0x000 mirrors the blob');
    assert.deepEqual([...h.device.bar(2).read(128, 8)], [0, 0, 0, 0, 0, 0, 0, 0], 'zeros past edid_size');
  });
});

test('EDID update protocol: link down, blob, size, link up; read-only fields and odd accesses are ignored', () => {
  withVga((h) => {
    const r = h.device.region(9);
    const mirror = h.device.bar(2);
    r.write32(EdidReg.LINK_STATE, regionTypes.VFIO_DEVICE_GFX_LINK_STATE_DOWN);
    assert.deepEqual([...mirror.read(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0], 'no monitor while the link is down');
    const xga = buildEdid({ width: 1024, height: 768, serial: 42 });
    const twice = new Uint8Array(256);
    twice.set(xga);
    twice.set(xga, 128);
    assert.equal(r.write(EDID_BLOB_OFFSET, twice), 256);
    r.write32(EdidReg.EDID_SIZE, 256);
    r.write32(EdidReg.LINK_STATE, regionTypes.VFIO_DEVICE_GFX_LINK_STATE_UP);
    assert.deepEqual(mirror.read(0, 256), twice);
    assert.deepEqual(r.read(EDID_BLOB_OFFSET, 256), twice);
    for (const ro of [EdidReg.EDID_OFFSET, EdidReg.EDID_MAX_SIZE, EdidReg.MAX_XRES, EdidReg.MAX_YRES]) r.write32(ro, 7);
    r.write16(EdidReg.EDID_SIZE, 3);
    assert.deepEqual([0, 4, 8, 12, 16, 20].map((o) => r.read32(o)), [2048, 0x400, 256, 640, 480, 1]);
    assert.equal(r.read16(EdidReg.EDID_SIZE), 0, '16-bit register reads see 0');
    assert.equal(r.write(EDID_BLOB_OFFSET + 0x3fc, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), 8, 'accepted, past edid_max_size dropped');
    assert.deepEqual([...r.read(EDID_BLOB_OFFSET + 0x3fc, 8)], [1, 2, 3, 4, 0, 0, 0, 0]);
    assert.throws(() => r.read(4096, 4), { code: 'EINVAL' });
    assert.throws(() => h.device.sys.mmap(h.device.fd, 9n << 40n, 4096, 1), { code: 'EINVAL' });
  });
});
