// The counter example and the display migrated through the mock kernel: registers,
// the display's mode, EDID state and framebuffer arrive byte for byte; the mediated edu
// has no migration at all (the features answer ENOTTY).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys } from '../../src/sys/index.js';
import { openPciDevice, pciCommand } from '../../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { CounterParent, counterDriver } from '../../src/vendors/example/counter.js';
import { DisplayParent, displayDriver } from '../../src/vendors/display/index.js';
import { DisplayGuest } from '../../src/vendors/display/guest.js';
import { DeviceMigration } from '../../src/vfio/migration.js';
import { DispiReg, DisplayMmio } from '../../src/vendors/display/dispi.js';
import { load, save } from './migrate.js';

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

test('counter: COUNT and ALARM arrive, and the alarm still fires on the destination', async () => {
  const sys = createMockSys({ devices: [], kernel: '6.12' });
  const registry = new VgpuRegistry();
  registry.registerDriver(counterDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('counter', new CounterParent('counter0'));
  for (const n of [1, 2]) sys.sysfs.write('/sys/class/mdev_bus/counter0/mdev_supported_types/counter-basic/create', uuid(n));
  const src = openPciDevice(sys, uuid(1));
  const dst = openPciDevice(sys, uuid(2));
  try {
    for (const h of [src, dst]) h.device.config.enable(pciCommand.MEMORY);
    src.device.bar(0).write32(0, 40);
    src.device.bar(0).write32(4, 42);
    const { stream } = save(sys, src.device.fd);
    load(sys, dst.device.fd, stream, 1);
    assert.deepEqual([dst.device.bar(0).read32(0), dst.device.bar(0).read32(4)], [40, 42]);
    dst.device.irqs.enable(1);
    const alarm = dst.device.irqs.once(1, 0, 5000);
    dst.device.bar(0).write32(0, 2);
    await alarm;
    assert.equal(dst.device.bar(0).read32(0), 42);
  } finally {
    src.close();
    dst.close();
    for (const v of registry.list()) registry.remove(v.uuid);
  }
});

test('display: mode registers, EDID state and the framebuffer arrive byte for byte', () => {
  const sys = createMockSys({ devices: [], kernel: '6.12' });
  const registry = new VgpuRegistry();
  registry.registerDriver(displayDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('display', new DisplayParent());
  for (const n of [1, 2]) sys.sysfs.write('/sys/class/mdev_bus/display0/mdev_supported_types/display-xga/create', uuid(n));
  const src = DisplayGuest.open(sys, uuid(1));
  const dst = DisplayGuest.open(sys, uuid(2));
  try {
    const mode = src.setMode(800, 600);
    src.drawTestPattern('migrating');
    const regs = (g: DisplayGuest): number[] => Array.from({ length: 10 }, (_, i) => g.mmio.read16(DisplayMmio.DISPI + 2 * i));
    const edid = (g: DisplayGuest): Uint8Array => {
      const out = new Uint8Array(256);
      for (let i = 0; i < 256; i += 4) new DataView(out.buffer).setUint32(i, g.mmio.read32(DisplayMmio.EDID + i), true);
      return out;
    };
    const fb = (g: DisplayGuest): Uint8Array => g.framebuffer.read(0, mode.stride * mode.height);
    const { stream } = save(sys, src.device.fd);
    assert.ok(stream.byteLength < 800 * 600 * 4 + 64 * 1024, `${stream.byteLength} bytes: the written part of 16 MiB`);
    load(sys, dst.device.fd, stream, 5);
    assert.deepEqual(regs(dst), regs(src));
    assert.equal(dst.mmio.read16(DisplayMmio.DISPI + 2 * DispiReg.XRES), 800);
    assert.deepEqual(edid(dst), edid(src));
    assert.deepEqual(fb(dst), fb(src));
  } finally {
    src.close();
    dst.close();
    for (const v of registry.list()) registry.remove(v.uuid);
  }
});

test('the mediated edu cannot migrate: the migration features are absent on it', async () => {
  const { createEduDevice } = await import('../../src/sys/mock/devices/edu.js');
  const { EduMediatedParent: EduParent, eduMediatedDriver: eduDriver } = await import('../../src/vendors/edu/index.js');
  const sys = createMockSys({ devices: [createEduDevice('0000:00:04.0')], kernel: '6.12' });
  const registry = new VgpuRegistry();
  registry.registerDriver(eduDriver);
  attachMockKernel(registry, sys.kernel);
  const parent = EduParent.open(sys, '0000:00:04.0');
  registry.addParent('edu', parent);
  const types = sys.sysfs.list(`/sys/class/mdev_bus/${parent.name}/mdev_supported_types`);
  sys.sysfs.write(`/sys/class/mdev_bus/${parent.name}/mdev_supported_types/${types[0]}/create`, uuid(9));
  const h = openPciDevice(sys, uuid(9));
  try {
    const m = new DeviceMigration(sys, h.device.fd);
    assert.equal(m.flags(), undefined);
    assert.throws(() => m.state(), { code: 'ENOTTY' });
    assert.throws(() => m.dataSize(), { code: 'ENOTTY' });
    assert.throws(() => m.stopLogging(), { code: 'ENOTTY' });
  } finally {
    h.close();
    for (const v of registry.list()) registry.remove(v.uuid);
    parent.close();
  }
});
