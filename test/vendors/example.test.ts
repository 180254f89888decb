// The README's example vendor driver (src/vendors/example/counter.ts), run the way the
// README shows: registered, presented on the mock kernel's mdev bus, created through
// sysfs, and used through the VFIO client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys } from '../../src/sys/index.js';
import { openPciDevice, pciCommand } from '../../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { CounterParent, counterDriver } from '../../src/vendors/example/counter.js';

test('the counter example: create, open, count, alarm MSI, remove', async () => {
  // --- as in README.md ---
  const sys = createMockSys({ devices: [] });
  const registry = new VgpuRegistry();
  registry.registerDriver(counterDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('counter', new CounterParent('counter0'));

  const types = '/sys/class/mdev_bus/counter0/mdev_supported_types';
  const uuid = '6f2a1e24-5b7c-4d2e-9a41-3c8f0e1d2b7a';
  sys.sysfs.write(`${types}/counter-basic/create`, uuid);
  const handle = openPciDevice(sys, uuid); // its IOMMU group from sysfs, a container, the device fd
  const { device } = handle;
  device.config.enable(pciCommand.MEMORY);
  const regs = device.bar(0);
  regs.write32(0x00, 5);
  regs.write32(0x00, 5);
  const count = regs.read32(0x00); // 10
  device.irqs.enable(1); // MSI
  const alarm = device.irqs.once(1, 0, 5000);
  regs.write32(0x04, 12);
  regs.write32(0x00, 2); // COUNT reaches ALARM: the vGPU raises its MSI
  await alarm;
  handle.close();
  sys.sysfs.write(`/sys/bus/mdev/devices/${uuid}/remove`, '1');
  // --- end ---

  assert.equal(count, 10);
  assert.equal(sys.sysfs.read(`${types}/counter-basic/available_instances`), '4');
  assert.equal(sys.sysfs.read(`${types}/counter-basic/name`), 'Counter');
  assert.equal(sys.sysfs.read(`${types}/counter-basic/registers`), '2');
  assert.equal(registry.size, 0);
});

test('the counter example: capacity of four, the alarm fires once per crossing, open resets', async () => {
  const sys = createMockSys({ devices: [] });
  const registry = new VgpuRegistry();
  registry.registerDriver(counterDriver);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('counter', new CounterParent('counter0'));
  const types = '/sys/class/mdev_bus/counter0/mdev_supported_types/counter-basic';
  const uuids = [1, 2, 3, 4].map((n) => `00000000-0000-4000-8000-00000000000${n}`);
  for (const u of uuids) sys.sysfs.write(`${types}/create`, u);
  assert.equal(sys.sysfs.read(`${types}/available_instances`), '0');
  assert.throws(() => sys.sysfs.write(`${types}/create`, '00000000-0000-4000-8000-000000000005'), { code: 'ENOSPC' });

  const open = () => openPciDevice(sys, uuids[0]!);
  let handle = open();
  let regs = handle.device.bar(0);
  handle.device.config.enable(pciCommand.MEMORY);
  let fired = 0n;
  handle.device.irqs.enable(1);
  handle.device.irqs.on(1, 0, (n) => { fired += n; });
  regs.write32(0x04, 3);
  for (let i = 0; i < 5; i++) regs.write32(0x00, 1);
  regs.write16(0x00, 100); // a 2-byte write: ignored by the example's registers
  assert.equal(regs.read16(0x00), 0, 'and a 2-byte read gives 0');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(fired, 1n);
  assert.equal(regs.read32(0x00), 5);
  handle.close();
  handle = open();
  regs = handle.device.bar(0);
  handle.device.config.enable(pciCommand.MEMORY);
  assert.equal(regs.read32(0x00), 0, 'a new open starts from power-on state');
  handle.close();
  for (const u of uuids) registry.remove(u);
  assert.equal(sys.sysfs.read(`${types}/available_instances`), '4');
});
