// The vfio-user client against a server written from the spec alone (fixtures/
// scripted-server.ts, in a child process), which makes legal but unusual choices: region
// offsets of its own, a sparse BAR in a memfd at an offset, a region without fd, an argsz
// retry, and capabilities below the client's. Device, Region, Irqs and DMA mappings
// behave as over the kernel; what went over the wire is read back from the server's log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describeVfioUser } from '../../../src/host/info.js';
import { createNativeSys } from '../../../src/sys/native.js';
import { pciIrq } from '../../../src/uapi/constants.js';
import { ioctls } from '../../../src/uapi/ioctls.js';
import { openDevice, openVfioUserDevice, type VfioUserDeviceHandle } from '../../../src/vfio/index.js';
import { fdSnapshot, newFds, settled } from './fixtures/fds.js';
import { BAR1, IDS, Reg, SERVER_CAPS, type ScriptedScenario } from './fixtures/scripted-device.js';
import { startServer, type LogEntry, type ServerProcess } from './fixtures/server-process.js';
import { memfdMappings } from '../../vendors/display-world.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/scripted-server.js', import.meta.url));
const MSI = pciIrq.VFIO_PCI_MSI_IRQ_INDEX;
const INTX = pciIrq.VFIO_PCI_INTX_IRQ_INDEX;

async function withScripted(fn: (h: VfioUserDeviceHandle, server: ServerProcess) => Promise<void> | void, scenario: ScriptedScenario = {}): Promise<void> {
  const server = await startServer(SCRIPT, ['{socket}', JSON.stringify(scenario)]);
  try {
    const handle = openVfioUserDevice(server.socketPath);
    try {
      await fn(handle, server);
    } finally {
      handle.close();
    }
  } finally {
    await server.stop();
  }
}

/** The commands `cmd` the server logged, once at least `count` have arrived. */
const commands = (server: ServerProcess, cmd: string, count = 1): Promise<LogEntry[]> => server.entries((e) => e['cmd'] === cmd, count);
const VENDOR_TYPE = (0x8000_0000 | IDS.vendor) >>> 0;

test('a device described with unusual choices: our own region offsets, sparse BAR1, no VGA, a typed region without fd, argsz retries', () => withScripted(async (h, server) => {
  const { device } = h;
  assert.equal(device.name, server.socketPath);
  assert.deepEqual({ pci: device.info.pci, reset: device.info.reset, regions: device.info.numRegions, irqs: device.info.numIrqs }, { pci: true, reset: true, regions: 10, irqs: 5 });
  assert.deepEqual([...device.regions.keys()], [0, 1, 2, 3, 4, 5, 6, 7, 9], 'region 8 (VGA) answered EINVAL: absent, as over the kernel');
  for (const [index, region] of device.regions) assert.equal(region.offset, BigInt(index) << 40n, `region ${index} at the client's own offset`);
  const bar0 = device.bar(0);
  assert.deepEqual([bar0.size, bar0.readable, bar0.writable, bar0.mmappable], [0x1000, true, true, false]);
  const bar1 = device.bar(1);
  assert.equal(bar1.size, BAR1.size);
  assert.equal(bar1.mmappable, true);
  assert.deepEqual(bar1.sparseAreas, BAR1.areas.map(([offset, size]) => ({ offset, size })));
  const typed = device.region(9);
  assert.deepEqual(typed.type, { type: VENDOR_TYPE, subtype: 1 });
  assert.equal(typed.mmappable, false, 'MMAP without an fd is offered unmapped');
  assert.equal(typed.read8(3), 3 ^ 0x5a);
  assert.deepEqual(device.pciId, { vendor: IDS.vendor, device: IDS.device });
  assert.equal(device.config.classCode, IDS.classCode);
  assert.deepEqual(device.irqs.info(INTX), { index: 0, name: 'INTx', flags: 7, count: 1, eventfd: true, maskable: true, automasked: true, noresize: false });
  assert.equal(device.irqs.info(MSI)?.count, 3);
  // argsz: the first GET_REGION_INFO of BAR1 and region 9 was too small for the caps.
  const infos = await commands(server, 'GET_REGION_INFO', 12);
  const asked = (index: number): unknown[] => infos.filter((e) => e['index'] === index).map((e) => e['argsz']);
  assert.deepEqual(asked(1), [32, 32 + 16 + 32]);
  assert.deepEqual(asked(9), [32, 32 + 16]);
  assert.deepEqual(asked(0), [32]);
  const version = (await commands(server, 'VERSION'))[0]!;
  assert.deepEqual([version['major'], version['minor']], [0, 1]);
  const n = h.connection.negotiated;
  assert.deepEqual({ minor: n.minor, xfer: n.xferSize, fds: n.sendFds, page: n.dmaPageSize, maps: n.maxDmaMaps },
    { minor: 0, xfer: SERVER_CAPS.max_data_xfer_size, fds: SERVER_CAPS.max_msg_fds, page: 8192n, maps: SERVER_CAPS.max_dma_maps });
}));

test('region I/O is split to the server\'s max_data_xfer_size; registers are single messages', () => withScripted((h, server) => {
  const bar0 = h.device.bar(0);
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
  assert.equal(bar0.write(0x100, bytes), 300);
  assert.deepEqual(bar0.read(0x100, 300), bytes);
  bar0.write32(0x10, 0xdeadbeef);
  bar0.write16(0x14, 0x1234);
  bar0.write64(0x18, 0x0102030405060708n);
  assert.deepEqual([bar0.read32(0x10), bar0.read16(0x14), bar0.read8(0x15), bar0.read64(0x18)], [0xdeadbeef, 0x1234, 0x12, 0x0102030405060708n]);
  assert.equal(bar0.read(0xff0, 64).byteLength, 16, 'a read stops at the end of the region, as pread does');
  assert.throws(() => bar0.read(0x1001, 4), { code: 'EINVAL', syscall: 'pread' });
  // The server answers E2BIG to more than its 64 bytes: the 300 went in pieces.
  const [exchange] = server.log.filter((e) => e['event'] === 'too-large');
  assert.equal(exchange, undefined);
}));

test('BAR1\'s sparse areas are mmaps of the server\'s fd at its offset: what one side writes the other reads', () => withScripted((h) => {
  const bar1 = h.device.bar(1);
  const [first, second] = bar1.sparseAreas!;
  const low = bar1.mmap(first);
  const high = bar1.mmap(second);
  const pattern = Uint8Array.from({ length: 200 }, (_, i) => 255 - i);
  high.bytes.set(pattern, 0x40);
  assert.deepEqual(bar1.read(second!.offset + 0x40, 200), pattern, 'REGION_READ sees the mapping');
  bar1.write(0x10, Uint8Array.of(9, 8, 7));
  assert.deepEqual([...low.bytes.subarray(0x10, 0x13)], [9, 8, 7], 'the mapping sees REGION_WRITE');
  assert.equal(bar1.mappings.length, 2);
  assert.throws(() => bar1.mmap({ offset: 0xf000, size: 0x2000 }), { code: 'EINVAL', syscall: 'mmap' });
  assert.throws(() => h.device.bar(0).mmap(), { code: 'EINVAL' }, 'BAR0 has no fd');
}));

test('SET_IRQS: eventfds go as SCM_RIGHTS, at most max_msg_fds a message, runs of -1 without fds; the server\'s interrupts arrive', () => withScripted(async (h, server) => {
  const { irqs } = h.device;
  const sys = h.sys;
  irqs.enable(MSI);
  assert.deepEqual((await commands(server, 'SET_IRQS', 2)).map((e) => [e['argsz'], e['start'], e['count'], e['fds']]), [[20, 0, 2, 2], [20, 2, 1, 1]]);
  const got = irqs.once(MSI, 2, 5000);
  h.device.bar(0).write32(Reg.IRQ, 2);
  assert.equal(await got, 1n);
  const mine = [sys.eventfd(), sys.eventfd()];
  try {
    irqs.enable(MSI, { eventfds: [mine[0]!, -1, mine[1]!] });
    assert.deepEqual((await commands(server, 'SET_IRQS', 5)).slice(2).map((e) => [e['start'], e['count'], e['fds']]), [[0, 1, 1], [1, 1, 0], [2, 1, 1]]);
    h.device.bar(0).write32(Reg.IRQ, 2);
    assert.equal(sys.eventfdRead(mine[1]!), 1n, 'the caller\'s own eventfd was signalled');
    irqs.trigger(MSI, 0);
    assert.equal(sys.eventfdRead(mine[0]!), 1n, 'a loopback trigger (DATA_NONE) reached the server');
    irqs.disable(MSI);
    const last = (await commands(server, 'SET_IRQS', 7)).at(-1)!;
    assert.deepEqual([last['flags'], last['start'], last['count'], last['fds']], [0x21, 0, 0, 0]);
  } finally {
    for (const fd of mine) sys.close(fd);
  }
}));

test('DMA: memfd memory is mapped with its fd, other memory is served by DMA_READ/DMA_WRITE, while a request waits and while idle', () => withScripted(async (h, server) => {
  const bar0 = h.device.bar(0);
  const job = (iova: bigint, len: number, mode: number): void => {
    bar0.write64(Reg.IOVA, iova);
    bar0.write32(Reg.LEN, len);
    bar0.write32(Reg.DOORBELL, mode);
  };
  const expectJob = (bytes: Uint8Array, len: number): void => {
    for (let i = 0; i < len; i++) assert.equal(bytes[len + i], (bytes[i]! + 1) & 0xff, `byte ${i}`);
  };
  const PAGE = 8192;
  // Memory from the handle's fd layer: a memfd the server maps; it works on it directly.
  const shared = h.sys.allocate(2 * PAGE);
  const other = createNativeSys().allocate(2 * PAGE);
  try {
    const a = h.dma.map({ iova: 0x10000, memory: shared });
    const b = h.dma.map({ iova: 0x20000, memory: other });
    assert.deepEqual((await commands(server, 'DMA_MAP', 2)).map((e) => [e['address'], e['size'], e['flags'], e['offset'], e['fds'], e['argsz']]),
      [['0x10000', `0x${(2 * PAGE).toString(16)}`, 3, '0x0', 1, 32], ['0x20000', `0x${(2 * PAGE).toString(16)}`, 3, '0x0', 0, 32]]);
    const sharedBytes = new Uint8Array(shared.buffer);
    sharedBytes.set(Uint8Array.from({ length: 100 }, (_, i) => i * 2));
    h.device.irqs.enable(MSI);
    let irq = h.device.irqs.once(MSI, 0, 5000);
    job(0x10000n, 100, 3);
    await irq;
    expectJob(sharedBytes, 100);
    // Without an fd: inline (the server reads and writes before answering the doorbell).
    const otherBytes = new Uint8Array(other.buffer);
    otherBytes.set(Uint8Array.from({ length: 150 }, (_, i) => 200 - i));
    job(0x20000n, 150, 1);
    assert.equal(bar0.read32(Reg.STATUS), 0);
    expectJob(otherBytes, 150);
    // ...and later, while the client awaits the interrupt: the watcher serves it.
    otherBytes.set(Uint8Array.from({ length: 120 }, (_, i) => i ^ 0x33), 0x1000);
    irq = h.device.irqs.once(MSI, 0, 5000);
    job(0x21000n, 120, 2);
    await irq;
    assert.equal(bar0.read32(Reg.STATUS), 0);
    expectJob(otherBytes.subarray(0x1000), 120);
    // DMA_READ/WRITE reach fd-backed memory too.
    job(0x10000n + 0x800n, 64, 1);
    expectJob(sharedBytes.subarray(0x800), 64);
    assert.equal((await server.entries((e) => e['event'] === 'dma-job', 4)).length, 4);
    // The access each map granted is checked; so is the range.
    const readOnly = createNativeSys().allocate(PAGE);
    try {
      h.dma.map({ iova: 0x40000, memory: readOnly, write: false });
      job(0x40000n, 16, 1);
      assert.equal(bar0.read32(Reg.STATUS), 1, 'EPERM: the device may not write there');
      job(0x90000n, 16, 1);
      assert.equal(bar0.read32(Reg.STATUS), 14, 'EFAULT: nothing mapped');
      assert.equal(h.dma.unmap(0x40000, PAGE), BigInt(PAGE));
    } finally {
      createNativeSys().munmap(readOnly);
    }
    // The server's page size (8 KiB), overlaps, its max_dma_maps, splitting.
    assert.throws(() => h.dma.map({ iova: 0x60000, memory: other, size: 4096 }), { code: 'EINVAL', operation: 'VFIO_USER_DMA_MAP' });
    assert.throws(() => h.dma.map({ iova: 0x12000, memory: other }), { code: 'EEXIST' });
    const extra = [h.dma.map({ iova: 0x100000, memory: other }), h.dma.map({ iova: 0x200000, memory: other })];
    assert.throws(() => h.dma.map({ iova: 0x300000, memory: other }), { code: 'ENOSPC' });
    assert.throws(() => h.dma.unmap(0x100000, PAGE), { code: 'EINVAL' }, 'would split a mapping');
    assert.equal(h.dma.unmap(0x100000, 0x200000), BigInt(2 * PAGE) * 2n, 'two whole mappings');
    assert.equal(extra.length, 2);
    assert.equal(b.unmap(), BigInt(2 * PAGE));
    assert.equal(a.unmap(), BigInt(2 * PAGE));
    assert.equal(h.dma.unmap(0, 1n << 40n), 0n, 'nothing left');
    assert.deepEqual((await commands(server, 'DMA_UNMAP', 5)).map((e) => [e['address'], e['argsz']]),
      [['0x40000', 24], ['0x100000', 24], ['0x200000', 24], ['0x20000', 24], ['0x10000', 24]]);
  } finally {
    h.sys.munmap(shared);
    createNativeSys().munmap(other);
  }
}));

test('error replies: the errno and the command as operation; EIO for an error without errno; ENOTTY for an ioctl vfio-user lacks', () => withScripted(async (h, server) => {
  const bar0 = h.device.bar(0);
  assert.throws(() => bar0.read32(Reg.FAULT), { code: 'EACCES', syscall: 'pread', operation: 'VFIO_USER_REGION_READ' });
  assert.throws(() => bar0.write32(Reg.FAULT, 1), { code: 'EIO', syscall: 'pwrite', operation: 'VFIO_USER_REGION_WRITE' });
  assert.throws(() => h.sys.ioctl(h.device.fd, ioctls.VFIO_DEVICE_QUERY_GFX_PLANE, new Uint8Array(64)), { code: 'ENOTTY', operation: 'VFIO_DEVICE_QUERY_GFX_PLANE' });
  bar0.write32(0x20, 5);
  h.device.reset();
  assert.equal((await commands(server, 'RESET')).length, 1);
  assert.equal(bar0.read32(0x20), 0, 'the connection is still usable, and the reset happened');
  assert.equal(h.device.region(9).type?.type, VENDOR_TYPE);
}));

test('a request that gets no reply times out; the connection is unusable after, and close releases everything', async () => {
  const server = await startServer(SCRIPT, ['{socket}', '{}']);
  const before = fdSnapshot();
  try {
    const h = openVfioUserDevice(server.socketPath, { timeoutMs: 300 });
    const started = Date.now();
    assert.throws(() => h.device.bar(0).write32(Reg.STALL, 1), { code: 'ETIMEDOUT', operation: 'VFIO_USER_REGION_WRITE' });
    assert.ok(Date.now() - started >= 290);
    assert.throws(() => h.device.bar(0).read32(0), (err: Error & { code?: string }) => err.code === 'ETIMEDOUT' && /unusable/.test(err.message));
    assert.equal(h.connection.broken?.code, 'ETIMEDOUT');
    h.close();
    await settled();
    assert.deepEqual(newFds(before), []);
  } finally {
    await server.stop();
  }
});

test('the server goes away mid-session: ENODEV from then on, nothing hangs, close releases every fd and mapping', async () => {
  const server = await startServer(SCRIPT, ['{socket}', '{}']);
  const before = fdSnapshot();
  try {
    const h = openVfioUserDevice(server.socketPath);
    const bar1 = h.device.bar(1);
    const mapping = bar1.mmap(bar1.sparseAreas![0]);
    const memory = h.sys.allocate(8192);
    h.dma.map({ iova: 0x10000, memory });
    h.device.irqs.enable(MSI);
    assert.ok(newFds(before).length >= 5, 'the socket, BAR1\'s fd, a memfd, 3 eventfds');
    assert.throws(() => h.device.bar(0).write32(Reg.DIE, 1), { code: 'ENODEV', operation: 'VFIO_USER_REGION_WRITE' });
    await server.exited;
    assert.throws(() => h.device.bar(0).read32(0), { code: 'ENODEV' });
    assert.throws(() => h.device.irqs.trigger(MSI), { code: 'ENODEV', operation: 'VFIO_USER_DEVICE_SET_IRQS' });
    assert.throws(() => h.dma.map({ iova: 0x40000, memory }), { code: 'ENODEV' });
    mapping.bytes[0] = 1; // the server's memory stays mapped here until we unmap it
    h.close();
    assert.equal(mapping.unmapped, true);
    assert.equal(h.dma.closed, true);
    h.sys.munmap(memory);
    await settled();
    assert.deepEqual(newFds(before), []);
    assert.deepEqual(memfdMappings('scripted-bar1'), [0, 0]);
    assert.deepEqual(memfdMappings('vfio-user-dma'), [0, 0]);
  } finally {
    await server.stop();
  }
});

test('VERSION: a server with another major, a higher minor, capabilities we cannot honour, or twin sockets we did not offer is refused; nothing stays open', async () => {
  const cases: [NonNullable<ScriptedScenario['version']>, string][] = [
    ['major1', 'EPROTONOSUPPORT'], ['minor9', 'EPROTONOSUPPORT'], ['tiny-xfer', 'EPROTO'], ['bad-json', 'EPROTO'],
    ['twin', 'EPROTO'], ['close', 'ENODEV'], ['error', 'EPERM'],
  ];
  for (const [version, code] of cases) {
    const server = await startServer(SCRIPT, ['{socket}', JSON.stringify({ version })]);
    const before = fdSnapshot();
    try {
      assert.throws(() => openVfioUserDevice(server.socketPath), { code, operation: 'VFIO_USER_VERSION' }, version);
      await settled();
      assert.deepEqual(newFds(before), [], version);
    } finally {
      await server.stop();
    }
  }
});

test('connecting: ENOENT without a socket, ECONNREFUSED with nobody listening; openDevice takes a path', async () => {
  const server = await startServer(SCRIPT, ['{socket}', '{}']);
  try {
    assert.throws(() => openVfioUserDevice(`${server.dir}/none.sock`), { code: 'ENOENT' });
    const h = openDevice(createNativeSys(), server.socketPath);
    try {
      assert.equal(h.device.pciId?.device, IDS.device);
    } finally {
      h.close();
    }
  } finally {
    await server.stop();
  }
  const again = await startServer(SCRIPT, ['{socket}', '{}']);
  again.child.kill('SIGKILL');
  await again.exited;
  try {
    assert.throws(() => openVfioUserDevice(again.socketPath), { code: 'ECONNREFUSED' }, 'a socket file nobody listens on');
  } finally {
    await again.stop();
  }
});

test('open, use and close three times: no fd and no mapping left in the client', async () => {
  const server = await startServer(SCRIPT, ['{socket}', '{}']);
  try {
    const before = fdSnapshot();
    for (let round = 0; round < 3; round++) {
      const h = openVfioUserDevice(server.socketPath);
      const bar1 = h.device.bar(1);
      bar1.mmap(bar1.sparseAreas![1]);
      h.device.irqs.enable(MSI);
      h.device.irqs.on(MSI, 0, () => {}).unref();
      const memory = h.sys.allocate(8192);
      h.dma.map({ iova: 0x10000, memory });
      h.close();
      h.sys.munmap(memory);
      await server.waitFor((e) => e['event'] === 'disconnected' && server.log.filter((x) => x['event'] === 'disconnected').length > round);
    }
    await settled();
    assert.deepEqual(newFds(before), []);
    assert.deepEqual(memfdMappings('scripted-bar1'), [0, 0]);
    assert.deepEqual(memfdMappings('vfio-user-dma'), [0, 0]);
  } finally {
    await server.stop();
  }
});

test('describeVfioUser (vgpu info SOCKET): regions with the server\'s offsets and fds, interrupts, config space; then disconnected', async () => {
  const server = await startServer(SCRIPT, ['{socket}', '{}']);
  try {
    const report = describeVfioUser(server.socketPath);
    assert.equal(report.name, server.socketPath);
    const text = report.lines.join('\n');
    assert.match(report.lines[0]!, /vfio-user 0\.0, up to 64 B a transfer, DMA pages 8 KiB, 4 DMA mappings, 2 fds a message/);
    assert.match(text, /BAR0 4 KiB rw at offset 0x0 \(server offset 0x7000\)/);
    assert.match(text, /BAR1 64 KiB rw mmap 2 sparse areas at offset 0x10000000000 \(server offset 0x3000, fd\)/);
    assert.match(text, /MSI: 3 vectors/);
    assert.match(text, /Device 1234:beef \(rev 07\)/);
    await server.waitFor((e) => e['event'] === 'disconnected');
    await server.stop();
    assert.throws(() => describeVfioUser(server.socketPath), { code: 'ENOENT', message: /no vfio-user socket/ });
  } finally {
    await server.stop();
  }
});
