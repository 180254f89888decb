// Guest phase `mdev-vfio`: the project's VFIO client on the kernel's own mdevs (the
// samples mtty, mdpy and mbochs). Each is opened through /dev/vfio as QEMU's
// -device vfio-pci,sysfsdev= does: an mdev-only container (TYPE1v2, no IOMMU hardware
// behind it), its group, its device; regions, IRQ info and config space are read; mtty's
// UART registers are driven with an MSI through an eventfd; a mode is set on mbochs
// through its dispi registers, drawn through the framebuffer mmap and read back as a
// dma-buf plane (QUERY_GFX_PLANE, GET_GFX_DMABUF) and captured; `vgpu screenshot` takes
// mdpy's and mbochs's pictures. Every mdev is removed again.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { PNG } from 'pngjs';
import { isSysError } from '../../../src/addon/errors.js';
import { openSys } from '../../../src/sys/index.js';
import { PROT_READ } from '../../../src/sys/types.js';
import { extensions, flags as F } from '../../../src/uapi/constants.js';
import { openPciDevice, type Device, type PciDeviceHandle, type Region } from '../../../src/vfio/index.js';
import { vfioIoctl } from '../../../src/vfio/ioctl.js';
import { createCanvas, drawTestPattern } from '../../../src/vendors/display/index.js';
import { DispiEnable, DispiReg, DISPI_ID5, dispiOffset, DRM_FORMAT_XRGB8888, MMIO_BAR } from '../../../src/vendors/display/dispi.js';
import {
  exportDmabuf, offersDmabufPlanes, offersRegionPlanes, queryPrimaryDmabuf, queryPrimaryPlane, screenshotPng,
} from '../../../src/vendors/display/screenshot.js';
import { comparePattern, comparePatternPng } from '../vm/compare.js';
import { runVgpu, vgpuEnv } from '../../cli/cli-process.js';

const sys = openSys();
const devices = '/sys/bus/mdev/devices';
const made: string[] = [];

function create(parent: string, type: string): string {
  const uuid = randomUUID();
  writeFileSync(`/sys/class/mdev_bus/${parent}/mdev_supported_types/${type}/create`, uuid);
  made.push(uuid);
  return uuid;
}

function remove(uuid: string): void {
  if (existsSync(`${devices}/${uuid}`)) writeFileSync(`${devices}/${uuid}/remove`, '1');
}

after(() => {
  for (const uuid of made) remove(uuid);
  assert.deepEqual(existsSync(devices) ? readdirSync(devices) : [], [], 'every mdev made here is gone');
});

/** Opens an mdev through VFIO, runs fn, closes it (device, group, container) whatever happens. */
async function withDevice<T>(uuid: string, fn: (handle: PciDeviceHandle) => T | Promise<T>): Promise<T> {
  const handle = openPciDevice(sys, uuid);
  try {
    return await fn(handle);
  } finally {
    handle.close();
  }
}

const byte = (region: Region, offset: number): number => region.read(offset, 1)[0]!;
const put = (region: Region, offset: number, value: number): void => { region.write(offset, Uint8Array.of(value)); };

/** UART registers (serial_reg.h) and the bits used here. */
const UART = { RX: 0, TX: 0, IER: 1, FCR: 2, LSR: 5 } as const;
const IER_RDI = 0x01;
const FCR_ENABLE_FIFO = 0x01;
const FCR_CLEAR = 0x06;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const IRQ_INTX = 0;
const IRQ_MSI = 1;

describe('our VFIO client on mtty-2', { timeout: 60_000 }, () => {
  it('an mdev-only container, two I/O BARs, INTx and MSI, mtty\'s config space', async () => {
    const uuid = create('mtty', 'mtty-2');
    await withDevice(uuid, ({ container, group, device }) => {
      assert.equal(container.iommuType, extensions.VFIO_TYPE1v2_IOMMU, 'TYPE1v2 over no IOMMU hardware');
      assert.equal(group.number, Number(basename(readlinkSync(`${devices}/${uuid}/iommu_group`))));
      assert.equal(device.info.pci, true);
      const bars = [0, 1].map((n) => device.bar(n));
      for (const bar of bars) {
        assert.equal(bar.size, 8);
        assert.equal(bar.readable && bar.writable, true);
        assert.equal(bar.mmappable, false);
      }
      assert.equal(device.regions.get(2)?.size ?? 0, 0, 'no BAR2');
      const intx = device.irqs.info(IRQ_INTX);
      const msi = device.irqs.info(IRQ_MSI);
      assert.equal(intx?.count, 1);
      assert.equal(msi?.count, 1);
      const cfg = device.config;
      assert.equal(cfg.vendorId, 0x4348);
      assert.equal(cfg.deviceId, 0x3253);
      assert.equal(cfg.classCode, 0x070002, '16550-compatible serial controller');
      assert.equal(cfg.revisionId, 0x10);
      assert.equal(cfg.interruptPin, 1);
      assert.equal(cfg.bar(0) & 1, 1, 'BAR0 is I/O space');
      assert.equal(cfg.bar(1) & 1, 1, 'BAR1 is I/O space');
      assert.equal(Buffer.from(device.config.region.read(0x60, 15)).toString('latin1'), 'PCI Serial/UART');
    });
    remove(uuid);
  });

  it('a byte written to a port\'s THR comes back on that port\'s RBR, with its MSI through an eventfd; the other port stays empty', async () => {
    const uuid = create('mtty', 'mtty-2');
    await withDevice(uuid, async ({ device }) => {
      const [port0, port1] = [device.bar(0), device.bar(1)];
      device.irqs.enable(IRQ_MSI);
      for (const port of [port0, port1]) {
        put(port, UART.FCR, FCR_ENABLE_FIFO | FCR_CLEAR);
        put(port, UART.IER, IER_RDI);
        assert.equal(byte(port, UART.LSR) & (LSR_DR | LSR_THRE), LSR_THRE, 'empty: nothing to read, room to send');
      }
      const interrupt = device.irqs.once(IRQ_MSI, 0, 10_000);
      put(port0, UART.TX, 0x5a);
      assert.ok((await interrupt) >= 1n, 'the MSI eventfd counted the received-data interrupt');
      assert.equal(byte(port0, UART.LSR) & LSR_DR, LSR_DR, 'port 0 has data');
      assert.equal(byte(port1, UART.LSR) & LSR_DR, 0, 'port 1 has none: each port loops back to itself');
      assert.equal(byte(port0, UART.RX), 0x5a);
      assert.equal(byte(port0, UART.LSR) & LSR_DR, 0, 'read once');
      const second = device.irqs.once(IRQ_MSI, 0, 10_000);
      put(port1, UART.TX, 0xa5);
      assert.ok((await second) >= 1n);
      assert.equal(byte(port1, UART.RX), 0xa5);
      device.irqs.disable(IRQ_MSI);
    });
    remove(uuid);
  });
});

/** Runs one step; a failure says which. */
function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error) err.message = `${what}: ${err.message}`;
    throw err;
  }
}

/** Draws the test pattern into a framebuffer mapping, rows `stride` bytes apart (XRGB8888). */
function drawInto(bytes: Uint8Array, width: number, height: number, stride: number): void {
  const canvas = createCanvas(width, height);
  drawTestPattern(canvas);
  const rows = new Uint8Array(canvas.pixels.buffer, canvas.pixels.byteOffset, canvas.pixels.byteLength);
  for (let y = 0; y < height; y++) bytes.set(rows.subarray(y * width * 4, (y + 1) * width * 4), y * stride);
}

async function vgpuScreenshot(uuid: string, file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  rmSync(file, { force: true });
  return runVgpu(['--root', '/tmp/vgpu-mdev-vfio-defs', '--socket', '/tmp/vgpu-mdev-vfio.sock', 'screenshot', uuid, file],
    { env: vgpuEnv({ VGPU_SYS: 'native' }), timeoutMs: 60_000 });
}

describe('our VFIO client on mdpy-vga', { timeout: 90_000 }, () => {
  it('the framebuffer BAR, a region plane in region 16, drawn through the mmap; vgpu screenshot is pixel-exact', async () => {
    // The smallest type: every pixel is drawn and compared in JS, under TCG.
    const uuid = create('mdpy', 'mdpy-vga');
    const [width, height, stride] = [640, 480, 2560];
    await withDevice(uuid, ({ device }) => {
      assert.deepEqual([device.config.vendorId, device.config.deviceId], [0x1b36, 0x000f], 'mdpy-defs.h: Red Hat, 0x000f');
      const fb = device.bar(0);
      assert.equal(fb.mmappable, true);
      assert.ok(fb.size >= stride * height);
      assert.equal(device.irqs.infos.every((i) => i.count === 0), true, 'mdpy has no interrupts');
      assert.equal(offersRegionPlanes(device), true);
      assert.equal(offersDmabufPlanes(device), false);
      const plane = queryPrimaryPlane(device);
      assert.deepEqual(plane && { ...plane, size: 0 }, { drmFormat: DRM_FORMAT_XRGB8888, width, height, stride, size: 0, regionIndex: 16 });
      // Region 16 lies past num_regions: the client asks for it by index.
      const display = device.region(16);
      assert.equal(display.mmappable, true);
      const mapping = step('mmap of BAR0', () => fb.mmap());
      try {
        drawInto(mapping.bytes, width, height, stride);
      } finally {
        mapping.unmap();
      }
      const shot = PNG.sync.read(screenshotPng(sys, device));
      assert.deepEqual(comparePattern(shot, width, height).ok, true);
    });
    // The device closed, mdpy keeps its memory: another process's screenshot sees the same.
    const file = '/tmp/mdpy-vga.png';
    const r = await vgpuScreenshot(uuid, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${file}: ${width}x${height} PNG of ${uuid}\n`);
    const comparison = comparePatternPng(file, width, height);
    assert.ok(comparison.ok, comparison.detail);
    remove(uuid);
  });
});

const readDispi = (mmio: Region, reg: number): number => mmio.read16(dispiOffset(reg));
const writeDispi = (mmio: Region, reg: number, value: number): void => mmio.write16(dispiOffset(reg), value);

/** What bochs-drm does to set a mode: disable, set the geometry, enable with the linear framebuffer. */
function setMode(device: Device, width: number, height: number): void {
  const mmio = device.region(MMIO_BAR);
  writeDispi(mmio, DispiReg.ENABLE, 0);
  writeDispi(mmio, DispiReg.BPP, 32);
  writeDispi(mmio, DispiReg.XRES, width);
  writeDispi(mmio, DispiReg.YRES, height);
  writeDispi(mmio, DispiReg.BANK, 0);
  writeDispi(mmio, DispiReg.VIRT_WIDTH, width);
  writeDispi(mmio, DispiReg.VIRT_HEIGHT, height);
  writeDispi(mmio, DispiReg.X_OFFSET, 0);
  writeDispi(mmio, DispiReg.Y_OFFSET, 0);
  writeDispi(mmio, DispiReg.ENABLE, DispiEnable.ENABLED | DispiEnable.LFB_ENABLED);
}

describe('our VFIO client on mbochs-small', { timeout: 90_000 }, () => {
  it('a mode set through the dispi registers, drawn through the mmap, read back as a dma-buf plane; vgpu screenshot', async () => {
    const uuid = create('mbochs', 'mbochs-small');
    const [width, height, stride] = [640, 480, 2560];
    const file = '/tmp/mbochs-small.png';
    await withDevice(uuid, async ({ device }) => {
      assert.deepEqual([device.config.vendorId, device.config.deviceId], [0x1234, 0x1111]);
      const mmio = device.region(MMIO_BAR);
      assert.equal(readDispi(mmio, DispiReg.ID), DISPI_ID5);
      assert.equal(readDispi(mmio, DispiReg.VIDEO_MEMORY_64K), (4 << 20) / 0x10000, '4 MiB of video memory');
      assert.equal(device.bar(0).size, 4 << 20);
      assert.equal(offersRegionPlanes(device), false);
      assert.equal(offersDmabufPlanes(device), true);
      assert.equal(queryPrimaryDmabuf(device), undefined, 'display off before a mode is set');
      setMode(device, width, height);
      assert.deepEqual([readDispi(mmio, DispiReg.XRES), readDispi(mmio, DispiReg.YRES), readDispi(mmio, DispiReg.BPP)], [width, height, 32]);
      const fb = step('mmap of BAR0', () => device.bar(0).mmap({ offset: 0, size: stride * height }));
      try {
        drawInto(fb.bytes, width, height, stride);
      } finally {
        fb.unmap();
      }
      // The first query of a new mode: mbochs makes the dma-buf but answers ENOMEM.
      const probe = new Uint8Array(64);
      new DataView(probe.buffer).setUint32(0, 64, true);
      new DataView(probe.buffer).setUint32(4, F.VFIO_GFX_PLANE_TYPE_DMABUF, true);
      new DataView(probe.buffer).setUint32(8, 1, true);
      let first = 'ok';
      try {
        vfioIoctl(sys, device.fd, 'VFIO_DEVICE_QUERY_GFX_PLANE', probe);
      } catch (err) {
        first = isSysError(err) ? err.code : String(err);
      }
      process.stdout.write(`# mbochs: the first QUERY_GFX_PLANE of a new mode: ${first}\n`);
      const plane = queryPrimaryDmabuf(device);
      assert.ok(plane, 'the plane once the mode is set');
      assert.deepEqual({ ...plane, dmabufId: 0 }, { drmFormat: DRM_FORMAT_XRGB8888, width, height, stride, size: stride * height, dmabufId: 0 });
      assert.ok(plane.dmabufId > 0);
      // GET_GFX_DMABUF exports it as a read-only fd, which mbochs will not let be mapped:
      // mmap of a read-only file drops VM_SHARED, and mbochs_mmap_dmabuf requires it.
      const fd = exportDmabuf(device, plane.dmabufId);
      try {
        assert.match(readlinkSync(`/proc/self/fd/${fd}`), /dmabuf/);
        assert.throws(() => sys.mmap(fd, 0n, plane.size, PROT_READ), { code: 'EINVAL' });
      } finally {
        sys.close(fd);
      }
      // The picture is read as a VMM's bochs model would: the dispi registers, BAR0's mmap.
      assert.ok(comparePattern(PNG.sync.read(step('screenshotPng', () => screenshotPng(sys, device))), width, height).ok, 'the capture of the open device');
      // Held by this process, the device cannot be opened by another.
      const busy = await vgpuScreenshot(uuid, file);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`^vgpu: vGPU ${uuid} is open by its user; a screenshot needs it free$`, 'm'));
    });
    // mbochs frees its pages when its user closes it (mbochs_close_device) and keeps the
    // mode: another opener sees the mode, all black.
    const r = await vgpuScreenshot(uuid, file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${file}: ${width}x${height} PNG of ${uuid}\n`);
    const black = PNG.sync.read(readFileSync(file));
    let lit = 0;
    for (let i = 0; i < black.data.length; i += 4) if (black.data[i] || black.data[i + 1] || black.data[i + 2]) lit++;
    assert.equal(lit, 0, 'every pixel black');
    remove(uuid);
  });
});
