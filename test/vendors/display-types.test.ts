// The display parent's types and pool through the mdev sysfs ABI, and what a display
// vGPU looks like to the VFIO client: ids, BARs, the EDID region, no interrupts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPciDevice } from '../../src/vfio/index.js';
import { displayWorld, testUuid } from './display-world.js';

const MiB = 2 ** 20;

function sysfsRead(world: ReturnType<typeof displayWorld>, path: string): string {
  return world.sys.sysfs.read(path).trim();
}

test('types: vga, xga and hd with mbochs-style descriptions; instances from a 256 MiB pool', () => {
  const world = displayWorld();
  try {
    const rows = ['vga', 'xga', 'hd'].map((t) => [
      sysfsRead(world, `${world.typeDir(t)}/name`),
      sysfsRead(world, `${world.typeDir(t)}/description`),
      sysfsRead(world, `${world.typeDir(t)}/available_instances`),
      sysfsRead(world, `${world.typeDir(t)}/device_api`),
    ]);
    assert.deepEqual(rows, [
      ['display-vga', 'virtual display, 4 MB video memory, up to 640x480', '64', 'vfio-pci'],
      ['display-xga', 'virtual display, 16 MB video memory, up to 1024x768', '16', 'vfio-pci'],
      ['display-hd', 'virtual display, 32 MB video memory, up to 1920x1080', '8', 'vfio-pci'],
    ]);
  } finally {
    world.close();
  }
});

test('the pool narrows every type; ENOSPC when nothing fits; remove gives the memory back', () => {
  const world = displayWorld({ videoMemory: 36 * MiB });
  const avail = (): string[] => ['vga', 'xga', 'hd'].map((t) => sysfsRead(world, `${world.typeDir(t)}/available_instances`));
  try {
    assert.deepEqual(avail(), ['9', '2', '1']);
    world.create('hd', testUuid(1));
    assert.deepEqual(avail(), ['1', '0', '0']);
    assert.throws(() => world.create('xga', testUuid(2)), { code: 'ENOSPC' });
    world.create('vga', testUuid(3));
    assert.deepEqual(avail(), ['0', '0', '0']);
    assert.equal(world.parent.videoMemoryFree, 0);
    world.remove(testUuid(1));
    assert.deepEqual(avail(), ['8', '2', '1']);
  } finally {
    world.close();
  }
  assert.equal(world.parent.vgpus.length, 0);
});

test('the client sees mbochs\' shape: 1234:1111 display class, BAR0 framebuffer mappable, BAR2 4 KiB registers, region 9 EDID, no irqs', () => {
  const world = displayWorld();
  const uuid = world.create('xga', testUuid(1));
  const handle = openPciDevice(world.sys, uuid);
  try {
    const d = handle.device;
    assert.deepEqual(d.pciId, { vendor: 0x1234, device: 0x1111 });
    assert.equal(d.config.read32(0x08) >>> 8, 0x038000);
    assert.equal(d.info.numRegions, 10);
    const shown = [0, 2, 9].map((i) => { const r = d.region(i); return [r.index, r.size, r.flags, r.offset, r.type]; });
    assert.deepEqual(shown, [
      [0, 16 * MiB, 0x7, 0n, undefined],
      [2, 4096, 0x3, 2n << 40n, undefined],
      [9, 4096, 0xb, 9n << 40n, { type: 1, subtype: 1 }],
    ]);
    assert.equal(d.region(0).sparseAreas, undefined, 'the whole framebuffer is mappable');
    assert.equal(d.region(1).size, 0);
    assert.equal(d.config.read32(0x10) & 0xf, 0x8, 'BAR0: 32-bit prefetchable memory');
    assert.deepEqual(d.irqs.infos.filter((i) => i.count > 0).map((i) => i.name), ['REQ']);
  } finally {
    handle.close();
    world.close();
  }
});
