// Issue 12 part 6: a corrupted, truncated, replayed or oversized stream, a stream from
// another type or vendor, and a resume onto a vGPU of another type are refused with a
// clear error; the destination stays usable (back to RUNNING by reset, or by a good
// stream after) and the source is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMockSys } from '../../src/sys/index.js';
import { openPciDevice, pciCommand, type PciDeviceHandle } from '../../src/vfio/index.js';
import { attachMockKernel, VgpuRegistry } from '../../src/vgpu/index.js';
import { CounterParent, counterDriver } from '../../src/vendors/example/counter.js';
import { SimGpuBoard, simgpuDriver } from '../../src/vendors/simgpu/index.js';
import { DisplayParent, displayDriver } from '../../src/vendors/display/index.js';
import { DeviceMigration } from '../../src/vfio/migration.js';
import { migStates as S } from '../../src/uapi/migration.js';
import { RECORD_HEAD } from '../../src/vgpu/migration/stream.js';
import { save } from './migrate.js';

const MiB = 1024 * 1024;
const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** A host with counters, two simgpu boards (one 0B, one 1B) and a display. */
function host() {
  const sys = createMockSys({ devices: [], kernel: '6.12' });
  const registry = new VgpuRegistry();
  for (const d of [counterDriver, simgpuDriver, displayDriver]) registry.registerDriver(d);
  attachMockKernel(registry, sys.kernel);
  registry.addParent('counter', new CounterParent('counter0'));
  registry.addParent('simgpu', new SimGpuBoard({ name: 'simgpu0', framebufferSize: 1024 * MiB }));
  registry.addParent('simgpu', new SimGpuBoard({ name: 'simgpu1', framebufferSize: 1024 * MiB }));
  registry.addParent('display', new DisplayParent());
  const make = (parent: string, type: string, n: number): PciDeviceHandle => {
    sys.sysfs.write(`/sys/class/mdev_bus/${parent}/mdev_supported_types/${type}/create`, uuid(n));
    const h = openPciDevice(sys, uuid(n));
    h.device.config.enable(pciCommand.MEMORY);
    return h;
  };
  return { sys, registry, make };
}

/** Tries to resume `stream` on `h`: the errno and message of the refusal, and the state after. */
function tryResume(sys: ReturnType<typeof host>['sys'], h: PciDeviceHandle, stream: Uint8Array): { error: string; state: number } {
  const m = new DeviceMigration(sys, h.device.fd);
  m.setState(S.VFIO_DEVICE_STATE_STOP);
  const data = m.setState(S.VFIO_DEVICE_STATE_RESUMING)!;
  let error = '';
  try {
    try {
      data.writeAll(stream);
      m.setState(S.VFIO_DEVICE_STATE_STOP);
    } catch (err) {
      error = `${(err as { code: string }).code}: ${(err as Error).message}`;
    }
  } finally {
    data.close();
  }
  return { error, state: m.state() };
}

/** The counter's registers. */
function counter(h: PciDeviceHandle): [number, number] {
  return [h.device.bar(0).read32(0), h.device.bar(0).read32(4)];
}

test('refused streams: the reason is clear, the destination usable, the source unchanged', () => {
  const { sys, registry, make } = host();
  const src = make('counter0', 'counter-basic', 1);
  const dst = make('counter0', 'counter-basic', 2);
  try {
    src.device.bar(0).write32(0, 1234);
    src.device.bar(0).write32(4, 5000);
    dst.device.bar(0).write32(0, 7);
    const run = save(sys, src.device.fd, { precopy: false });
    const good = run.stream;
    const srcMig = new DeviceMigration(sys, src.device.fd);
    srcMig.setState(S.VFIO_DEVICE_STATE_RUNNING);

    const corrupt = good.slice();
    corrupt[corrupt.byteLength - RECORD_HEAD - 60]! ^= 0x01; // a byte inside the sections
    const replayed = new Uint8Array([...good, ...good]);
    const dupRecord = (() => {
      // The header, then the first record twice.
      const headerLen = new DataView(good.buffer).getUint32(12, true);
      const recLen = RECORD_HEAD + new DataView(good.buffer, headerLen).getUint32(16, true);
      return new Uint8Array([...good.subarray(0, headerLen + recLen), ...good.subarray(headerLen)]);
    })();
    const cases: [string, Uint8Array, RegExp][] = [
      ['corrupted', corrupt, /EINVAL: .*checksum/],
      ['truncated', good.subarray(0, good.byteLength - 10), /EINVAL: .*truncated/],
      ['replayed (the stream twice)', replayed, /EINVAL: .*after the end of the stream/],
      ['replayed (a record twice)', dupRecord, /EINVAL: .*record 0 where record 1 was due/],
      ['garbage', new Uint8Array(4096).fill(0x41), /EINVAL: .*not a vGPU migration stream/],
      ['oversized', new Uint8Array(64 * MiB), /ENOMEM: .*more than this vGPU can hold/],
    ];
    for (const [what, stream, reason] of cases) {
      const { error, state } = tryResume(sys, dst, stream);
      assert.match(error, reason, what);
      assert.equal(state, S.VFIO_DEVICE_STATE_RESUMING, `${what}: still RESUMING, nothing loaded`);
      assert.deepEqual(counter(dst), [7, 0], `${what}: the destination's registers untouched`);
      dst.device.reset(); // how a user leaves a failed RESUMING
      assert.equal(new DeviceMigration(sys, dst.device.fd).state(), S.VFIO_DEVICE_STATE_RUNNING, `${what}: usable after reset`);
      dst.device.bar(0).write32(0, 7);
      assert.deepEqual(counter(dst), [7, 0]);
      assert.equal(srcMig.state(), S.VFIO_DEVICE_STATE_RUNNING, `${what}: the source runs on`);
      assert.deepEqual(counter(src), [1234, 5000], `${what}: the source unchanged`);
    }
    // An oversized stream is refused at the write that goes past the most a counter can hold.
    const m = new DeviceMigration(sys, dst.device.fd);
    m.setState(S.VFIO_DEVICE_STATE_STOP);
    const data = m.setState(S.VFIO_DEVICE_STATE_RESUMING)!;
    data.writeAll(good.subarray(0, 16));
    assert.throws(() => data.writeAll(new Uint8Array(8 * MiB)), { code: 'ENOMEM' });
    data.close();
    dst.device.reset();
    // And after all that, the good stream still loads.
    const { error } = tryResume(sys, dst, good);
    assert.equal(error, '');
    new DeviceMigration(sys, dst.device.fd).setState(S.VFIO_DEVICE_STATE_RUNNING);
    assert.deepEqual(counter(dst), [1234, 5000]);
  } finally {
    src.close();
    dst.close();
    for (const v of registry.list()) registry.remove(v.uuid);
  }
});

test('refused streams: another vendor, another type, another type as destination', () => {
  const { sys, registry, make } = host();
  const counterSrc = make('counter0', 'counter-basic', 1);
  const gpu0B = make('simgpu0', 'simgpu-0B', 2);
  const gpu1B = make('simgpu1', 'simgpu-1B', 3);
  const display = make('display0', 'display-xga', 4);
  try {
    counterSrc.device.bar(0).write32(0, 99);
    const fromCounter = save(sys, counterSrc.device.fd, { precopy: false }).stream;
    new DeviceMigration(sys, counterSrc.device.fd).setState(S.VFIO_DEVICE_STATE_RUNNING);
    const from0B = save(sys, gpu0B.device.fd).stream;
    new DeviceMigration(sys, gpu0B.device.fd).setState(S.VFIO_DEVICE_STATE_RUNNING);

    let r = tryResume(sys, gpu0B, fromCounter);
    assert.match(r.error, /EINVAL: .*from vendor counter, this vGPU is simgpu/);
    r = tryResume(sys, display, from0B);
    assert.match(r.error, /EINVAL: .*from vendor simgpu, this vGPU is display/);
    r = tryResume(sys, gpu1B, from0B);
    assert.match(r.error, /EINVAL: .*from a simgpu-0B vGPU, this vGPU is simgpu-1B/);
    for (const h of [gpu0B, gpu1B, display]) {
      h.device.reset();
      assert.equal(new DeviceMigration(sys, h.device.fd).state(), S.VFIO_DEVICE_STATE_RUNNING);
    }
    assert.equal(gpu1B.device.bar(0).read32(0x04), 13, 'the 1B vGPU still answers as a 1B');
    assert.equal(counterSrc.device.bar(0).read32(0), 99, 'the source unchanged');
  } finally {
    for (const h of [counterSrc, gpu0B, gpu1B, display]) h.close();
    for (const v of registry.list()) registry.remove(v.uuid);
  }
});
