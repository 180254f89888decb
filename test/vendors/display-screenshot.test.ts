// The screenshot path end to end: a guest draws the test pattern through its mmap of the
// framebuffer BAR, and the PNG screenshotPng makes through the client (QUERY_GFX_PLANE,
// the region mapped) decodes to exactly those pixels. Also: the demo, errors, and no fd
// or mapping left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import {
  COLOUR_BARS, createCanvas, DisplayGuest, drawTestPattern, pixelAt, runDisplayDemo, screenshotPng, type Canvas,
} from '../../src/vendors/display/index.js';
import { offersDmabufPlanes, offersRegionPlanes, queryPrimaryDmabuf } from '../../src/vendors/display/screenshot.js';
import { displayWorld, memfdMappings, testUuid } from './display-world.js';

/** The PNG's pixels as 0x00RRGGBB, checking it is opaque. */
function decode(png: Buffer): { width: number; height: number; pixels: Uint32Array } {
  const image = PNG.sync.read(png);
  const pixels = new Uint32Array(image.width * image.height);
  for (let i = 0; i < pixels.length; i++) {
    const d = image.data;
    assert.equal(d[i * 4 + 3], 0xff);
    pixels[i] = (d[i * 4]! << 16) | (d[i * 4 + 1]! << 8) | d[i * 4 + 2]!;
  }
  return { width: image.width, height: image.height, pixels };
}

/** The first pixel where `got` differs from the canvas, or undefined. */
function firstDifference(got: { width: number; pixels: Uint32Array }, want: Canvas): string | undefined {
  for (let y = 0; y < want.height; y++) {
    for (let x = 0; x < want.width; x++) {
      const g = got.pixels[y * got.width + x]!;
      const w = pixelAt(want, x, y);
      if (g !== w) return `(${x}, ${y}): 0x${g.toString(16)} instead of 0x${w.toString(16)}`;
    }
  }
  return undefined;
}

function expected(width: number, height: number, caption?: string): Canvas {
  const c = createCanvas(width, height);
  drawTestPattern(c, caption);
  return c;
}

test('the test pattern has its bars and a caption in white on the black band', () => {
  const c = expected(640, 480);
  COLOUR_BARS.forEach((colour, i) => assert.equal(pixelAt(c, i * 80 + 40, 100), colour));
  let lit = 0;
  for (let y = 360; y < 480; y++) for (let x = 0; x < 640; x++) if (pixelAt(c, x, y) === 0xffffff) lit++;
  assert.ok(lit > 1000, `caption pixels: ${lit}`);
  const other = expected(640, 480, 'something else');
  assert.notEqual(firstDifference({ width: 640, pixels: other.pixels }, c), undefined, 'a different caption is a different picture');
});

test('screenshot of an open device: the PNG is exactly what the guest drew (640x480 on vga)', () => {
  const world = displayWorld();
  const uuid = world.create('vga', testUuid(1));
  const guest = DisplayGuest.open(world.sys, uuid);
  try {
    assert.deepEqual(guest.maxResolution(), { width: 640, height: 480, bpp: 32 });
    guest.setMode(640, 480);
    guest.drawTestPattern();
    const shot = decode(screenshotPng(world.sys, guest.device));
    assert.deepEqual([shot.width, shot.height], [640, 480]);
    assert.equal(firstDifference(shot, expected(640, 480)), undefined);
    assert.equal(firstDifference(shot, guest.canvas), undefined, 'and what its mapping holds');
    guest.canvas.pixels[0] = 0x00ff7f;
    assert.equal(decode(screenshotPng(world.sys, guest.device)).pixels[0], 0x00ff7f, 'a changed pixel shows');
  } finally {
    guest.close();
    world.close();
  }
});

test('screenshot by UUID after the guest closed: 1920x1080 on hd, and a smaller mode on xga', () => {
  const world = displayWorld();
  try {
    for (const [type, width, height, n] of [['hd', 1920, 1080, 1], ['xga', 320, 200, 2]] as const) {
      const uuid = world.create(type, testUuid(n));
      const guest = DisplayGuest.open(world.sys, uuid);
      guest.setMode(width, height);
      guest.drawTestPattern(type);
      guest.close();
      const shot = decode(screenshotPng(world.sys, uuid));
      assert.deepEqual([shot.width, shot.height], [width, height]);
      assert.equal(firstDifference(shot, expected(width, height, type)), undefined, type);
    }
  } finally {
    world.close();
  }
});

test('screenshot errors: ENODATA while the display is off, EBUSY by UUID while the guest has it, ENOENT for no vGPU', () => {
  const world = displayWorld();
  const uuid = world.create('vga', testUuid(1));
  const guest = DisplayGuest.open(world.sys, uuid);
  try {
    assert.throws(() => screenshotPng(world.sys, guest.device), { code: 'ENODATA' });
    guest.setMode(640, 480);
    assert.throws(() => screenshotPng(world.sys, uuid), { code: 'EBUSY' });
    guest.disable();
    assert.throws(() => screenshotPng(world.sys, guest.device), { code: 'ENODATA' });
    assert.throws(() => screenshotPng(world.sys, testUuid(9)), { code: 'ENOENT' });
  } finally {
    guest.close();
    world.close();
  }
});

test('no fd or mapping is left: draw, screenshot (by device and by UUID), close and remove, three times', () => {
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const world = displayWorld();
  const before = fds();
  for (let round = 1; round <= 3; round++) {
    const uuid = world.create('vga', testUuid(round));
    const guest = DisplayGuest.open(world.sys, uuid);
    guest.setMode(640, 480);
    guest.drawTestPattern();
    assert.deepEqual(memfdMappings(uuid), [1, 640 * 480 * 4], 'the guest\'s framebuffer mapping only');
    screenshotPng(world.sys, guest.device);
    guest.setMode(320, 240);
    assert.deepEqual(memfdMappings(uuid), [1, 320 * 240 * 4], 'a new mode replaced the mapping');
    guest.close();
    assert.deepEqual(memfdMappings(uuid), [0, 0]);
    screenshotPng(world.sys, uuid);
    assert.deepEqual(memfdMappings(uuid), [0, 0]);
    world.remove(uuid);
  }
  assert.equal(fds(), before);
  world.close();
});

test('runDisplayDemo: creates a vGPU, draws, saves the screenshot it describes, removes the vGPU', () => {
  const world = displayWorld();
  const dir = mkdtempSync(join(tmpdir(), 'vgpu-display-'));
  try {
    const out = join(dir, 'screen.png');
    const summary = runDisplayDemo(world.sys, world.registry, out);
    const shot = decode(readFileSync(out));
    assert.deepEqual([shot.width, shot.height], [640, 480]);
    assert.equal(firstDifference(shot, expected(640, 480)), undefined);
    assert.match(summary, /display-vga/);
    assert.match(summary, /640x480x32/);
    assert.match(summary, new RegExp(`${out.replace(/[.]/g, '\\.')}, \\d+ bytes of PNG`));
    assert.equal(world.registry.list().length, 0);
    assert.equal(world.parent.videoMemoryFree, world.parent.videoMemory);
    // Again on the same registry: the driver and parent are reused.
    runDisplayDemo(world.sys, world.registry, out, { type: 'xga', width: 800, height: 600 });
    assert.deepEqual([decode(readFileSync(out)).width, decode(readFileSync(out)).height], [800, 600]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    world.close();
  }
});

test('a VMM\'s screenshot does not disturb the guest: its mapping and mode stay', () => {
  const world = displayWorld();
  const uuid = world.create('vga', testUuid(1));
  const guest = DisplayGuest.open(world.sys, uuid);
  try {
    guest.setMode(256, 128);
    guest.drawTestPattern();
    screenshotPng(world.sys, guest.device);
    assert.equal(guest.read(0x1), 256);
    guest.canvas.pixels[3] = 0x445566;
    assert.equal(decode(screenshotPng(world.sys, guest.device)).pixels[3], 0x445566);
  } finally {
    guest.close();
    world.close();
  }
});

test('plane probes: the display vGPU offers region planes and, as mdpy, no dma-buf ones (PROBE|DMABUF is EINVAL)', () => {
  const world = displayWorld();
  const uuid = world.create('vga', testUuid(7));
  const guest = DisplayGuest.open(world.sys, uuid);
  try {
    assert.equal(offersRegionPlanes(guest.device), true);
    assert.equal(offersDmabufPlanes(guest.device), false);
    guest.setMode(640, 480);
    assert.throws(() => queryPrimaryDmabuf(guest.device), { code: 'EINVAL' });
  } finally {
    guest.close();
    world.close();
  }
});
