// Runs inside the vm guest (vm-display phase): Linux's own bochs DRM driver on the
// display vGPU that QEMU attached over vfio-user. The driver bound it, read our EDID and
// set its preferred mode; fbcon drew the console on it (the host saves a picture of
// that); then the test pattern written to /dev/fb0 must be, pixel for pixel, what the
// host's `vgpu screenshot` of the vGPU shows. Not a *.test.ts: it runs only in the guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildEdid, createCanvas, drawTestPattern, EDID_BLOCK_SIZE } from '../../../src/vendors/display/index.js';
import { askHost } from './ask-host.js';

const device = process.env['VGPU_DISPLAY_DEVICE'] ?? '0000:00:05.0';
const pci = `/sys/bus/pci/devices/${device}`;
/** The vGPU's type is display-xga: its EDID's preferred mode. */
const width = 1024;
const height = 768;
const fb = '/sys/class/graphics/fb0';

const read = (path: string): string => readFileSync(path, 'utf8').trim();

function connector(): string {
  const card = readdirSync(join(pci, 'drm')).find((n) => /^card\d+$/.test(n));
  assert.ok(card, `no DRM card under ${pci}`);
  const name = readdirSync('/sys/class/drm').find((n) => n.startsWith(`${card}-`));
  assert.ok(name, `no connector of ${card}`);
  return join('/sys/class/drm', name);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test(`Linux's bochs DRM driver binds the display vGPU at ${device} (1234:1111)`, () => {
  assert.equal(read(`${pci}/vendor`), '0x1234');
  assert.equal(read(`${pci}/device`), '0x1111');
  assert.match(basename(readlinkSync(`${pci}/driver`)), /bochs/);
});

test('the driver read the vGPU\'s EDID: the bytes the vGPU serves, checksum and all', () => {
  const edid = readFileSync(join(connector(), 'edid'));
  assert.ok(edid.byteLength >= EDID_BLOCK_SIZE, `EDID of ${edid.byteLength} bytes`);
  assert.deepEqual(new Uint8Array(edid.subarray(0, EDID_BLOCK_SIZE)), buildEdid({ width, height }));
});

test(`the driver lists the EDID's preferred mode first and set it: fb0 is ${width}x${height}x32`, () => {
  const c = connector();
  assert.equal(read(join(c, 'status')), 'connected');
  assert.equal(read(join(c, 'enabled')), 'enabled');
  assert.equal(read(join(c, 'modes')).split('\n')[0], `${width}x${height}`);
  assert.match(read(`${fb}/name`), /bochs/);
  assert.equal(read(`${fb}/virtual_size`), `${width},${height}`);
  assert.equal(read(`${fb}/bits_per_pixel`), '32');
});

test('fbcon runs on the vGPU: the console\'s text, saved by the host as a picture', async () => {
  const vt = readdirSync('/sys/class/vtconsole').map((n) => `/sys/class/vtconsole/${n}`)
    .find((p) => /frame buffer/.test(read(`${p}/name`)));
  assert.ok(vt, 'no framebuffer console');
  assert.equal(read(`${vt}/bind`), '1');
  const lines = [
    '', `vfio-vgpu: Linux ${read('/proc/sys/kernel/osrelease')} on a display vGPU served over vfio-user`,
    `${device} ${read(`${pci}/vendor`)}:${read(`${pci}/device`)} driver ${basename(readlinkSync(`${pci}/driver`))}, ${read(`${fb}/name`)} ${read(`${fb}/virtual_size`)}`,
    `EDID mode ${read(join(connector(), 'modes')).split('\n')[0]}; cmdline: ${read('/proc/cmdline')}`, '',
  ];
  // Cursor hidden, so the picture does not depend on the blink.
  writeFileSync('/dev/tty1', `\x1b[?25l${lines.join('\r\n')}\r\n`);
  await sleep(1000);
  const answer = askHost('console');
  assert.ok(answer.ok, answer.detail);
});

test('the test pattern written to /dev/fb0 is the host\'s `vgpu screenshot`, every pixel', async () => {
  // fbcon lets go of the framebuffer first, so that nothing draws over the pattern.
  for (const n of readdirSync('/sys/class/vtconsole')) {
    const p = `/sys/class/vtconsole/${n}`;
    if (/frame buffer/.test(read(`${p}/name`))) writeFileSync(`${p}/bind`, '0');
  }
  const stride = Number(read(`${fb}/stride`));
  assert.ok(stride >= width * 4, `stride ${stride}`);
  const canvas = createCanvas(width, height);
  drawTestPattern(canvas);
  const bytes = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    Buffer.from(canvas.pixels.buffer, y * width * 4, width * 4).copy(bytes, y * stride);
  }
  assert.ok(existsSync('/dev/fb0'));
  const fd = openSync('/dev/fb0', 'w');
  try {
    assert.equal(writeSync(fd, bytes, 0, bytes.byteLength, 0), bytes.byteLength);
  } finally {
    closeSync(fd);
  }
  // The fbdev emulation copies what was written to video memory from a worker.
  await sleep(1000);
  const answer = askHost('pattern', `${width}x${height}`);
  assert.ok(answer.ok, answer.detail);
});
