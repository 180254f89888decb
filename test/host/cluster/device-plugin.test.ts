// The KubeVirt device plugin against a fake kubelet speaking the real gRPC protocol
// over unix sockets in a temp dir: registration and dial back, ListAndWatch, changes
// streamed, Allocate read the way virt-launcher reads it, GetPreferredAllocation, a
// parent that vanishes, a kubelet restart and a daemon restart.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createHost, type Host } from '../../../src/host/host.js';
import { createMockSys } from '../../../src/sys/index.js';
import { SimGpuBoard, simgpuDriver } from '../../../src/vendors/simgpu/index.js';
import { InventoryWatch } from '../../../src/host/cluster/inventory.js';
import { DevicePluginAgent } from '../../../src/host/cluster/device-plugin/manager.js';
import { FakeKubelet } from './fake-kubelet.js';
import { assignHostDevices, envVarOf } from './virt-launcher.js';

const R4Q = 'vfio-vgpu.io/GRID_M60-4Q';
const R1Q = 'vfio-vgpu.io/GRID_M60-1Q';

let dir: string;
let host: Host;
let kubelet: FakeKubelet;
let watch: InventoryWatch;
let agent: DevicePluginAgent;
const logs: string[] = [];

async function startAgent(): Promise<DevicePluginAgent> {
  watch = new InventoryWatch(host, 100);
  await watch.start();
  const a = new DevicePluginAgent({
    dir: join(dir, 'device-plugins'), domain: 'vfio-vgpu.io', allocationsFile: join(dir, 'state', 'device-plugin.json'),
    inventory: watch, holds: host.holds, log: (line) => logs.push(line), retryMs: 100,
  });
  await a.start();
  return a;
}

async function stopAgent(): Promise<void> {
  await agent.close();
  watch.stop();
}

function grpcCode(err: unknown): number | undefined {
  return (err as ServiceError).code;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vgpu-dp-'));
  for (const sub of ['device-plugins', 'state', 'defs']) rmSync(join(dir, sub), { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  for (const sub of ['device-plugins', 'state', 'defs']) mkdirSync(join(dir, sub));
  host = createHost({ sys: createMockSys({ devices: [] }), definitionsRoot: join(dir, 'defs'), simulated: true, report: () => undefined });
  kubelet = new FakeKubelet(join(dir, 'device-plugins'));
  await kubelet.start();
  agent = await startAgent();
});

afterEach(async () => {
  await stopAgent();
  await kubelet.stop();
  await host.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('device plugin: registration and ListAndWatch', () => {
  it('registers one resource per type name and streams its vGPUs by UUID', async () => {
    const a = await host.start({ parent: 'simgpu0', type: 'simgpu-4Q' });
    const b = await host.start({ parent: 'simgpu0', type: 'simgpu-4Q' });
    const devices = await kubelet.until(() => {
      const d = kubelet.devices(R4Q);
      return d && d.length === 2 ? d : undefined;
    }, 'two 4Q vGPUs');
    assert.deepEqual(devices, [a, b].sort().map((ID) => ({ ID, health: 'Healthy', topology: null })));
    const reg = kubelet.plugins.get(R4Q)!;
    assert.deepEqual(reg.request, {
      version: 'v1beta1', endpoint: 'vfio-vgpu-vfio-vgpu.io_GRID_M60-4Q.sock', resource_name: R4Q,
      options: { pre_start_required: false, get_preferred_allocation_available: true },
    });
    assert.deepEqual(reg.options, { pre_start_required: false, get_preferred_allocation_available: true });
    // Every type of every parent has its resource, with no device while none exists.
    const names = (await host.types()).map((t) => `vfio-vgpu.io/${t.name.replace(/ /g, '_')}`).sort();
    assert.deepEqual([...kubelet.plugins.keys()].sort(), [...new Set(names)].sort());
    assert.deepEqual(kubelet.devices(R1Q), []);
  });

  it('streams a new vGPU and a stopped one', async () => {
    await kubelet.until(() => kubelet.devices(R1Q), '1Q plugin');
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-1Q' });
    await kubelet.until(() => (kubelet.devices(R1Q)?.some((d) => d.ID === uuid) ? true : undefined), 'the new vGPU');
    await host.stop(uuid);
    const after = await kubelet.until(() => { const d = kubelet.devices(R1Q); return d?.length === 0 ? d : undefined; }, 'the vGPU gone');
    assert.deepEqual(after, []);
  });
});

describe('device plugin: Allocate', () => {
  it('answers what virt-launcher reads: exactly the UUIDs asked for, with the VFIO device nodes', async () => {
    const uuids = [await host.start({ parent: 'simgpu0', type: 'simgpu-1Q' }), await host.start({ parent: 'simgpu0', type: 'simgpu-1Q' }),
      await host.start({ parent: 'simgpu0', type: 'simgpu-1Q' })];
    await kubelet.until(() => (kubelet.devices(R1Q)?.length === 3 ? true : undefined), 'three 1Q');
    for (const asked of [[uuids[2]!], [uuids[1]!, uuids[0]!], [...uuids]]) {
      const answer = await kubelet.allocate(R1Q, { container_requests: [{ devices_ids: asked }] });
      assert.equal(answer.container_responses.length, 1);
      const c = answer.container_responses[0]!;
      assert.deepEqual(assignHostDevices(c.envs, R1Q, asked.length), asked);
      assert.deepEqual(Object.keys(c.envs), [envVarOf(R1Q)]);
      assert.equal(envVarOf(R1Q), 'MDEV_PCI_RESOURCE_VFIO-VGPU_IO_GRID_M60-1Q');
      const groups = [...new Set(asked.map((u) => host.liveDevice(u)!.group))];
      assert.deepEqual(c.devices, [
        { container_path: '/dev/vfio/vfio', host_path: '/dev/vfio/vfio', permissions: 'rw' },
        ...groups.map((g) => ({ container_path: `/dev/vfio/${g}`, host_path: `/dev/vfio/${g}`, permissions: 'rw' })),
      ]);
      assert.deepEqual(c.mounts, []);
      assert.deepEqual(c.annotations, {});
      assert.deepEqual(c.cdi_devices, []);
    }
    // Two containers in one request: each gets its own.
    const two = await kubelet.allocate(R1Q, { container_requests: [{ devices_ids: [uuids[0]!] }, { devices_ids: [uuids[1]!, uuids[2]!] }] });
    assert.deepEqual(two.container_responses.map((c) => assignHostDevices(c.envs, R1Q, c.envs[envVarOf(R1Q)]!.split(',').length)),
      [[uuids[0]], [uuids[1], uuids[2]]]);
  });

  it('holds an allocated vGPU: stop and undefine refuse it without force', async () => {
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-2Q' });
    await host.define({ uuid });
    const r2q = 'vfio-vgpu.io/GRID_M60-2Q';
    await kubelet.until(() => (kubelet.devices(r2q)?.length === 1 ? true : undefined), '2Q');
    await kubelet.allocate(r2q, { container_requests: [{ devices_ids: [uuid] }] });
    await assert.rejects(host.stop(uuid), (err: Error & { code?: string }) => err.code === 'EBUSY' && err.message.includes(r2q) && err.message.includes('--force'));
    await assert.rejects(host.undefine(uuid), (err: Error & { code?: string }) => err.code === 'EBUSY');
    assert.equal((await host.list({ uuid })).length, 1);
    assert.equal(await host.undefine(uuid, undefined, { force: true }), 1);
    await host.stop(uuid, { force: true });
    assert.equal(host.liveDevice(uuid), undefined);
  });

  it('refuses unknown and unhealthy IDs with a clear gRPC error, recording nothing', async () => {
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-8Q' });
    const r8q = 'vfio-vgpu.io/GRID_M60-8Q';
    await kubelet.until(() => (kubelet.devices(r8q)?.length === 1 ? true : undefined), '8Q');
    const unknown = '00000000-0000-4000-8000-000000000000';
    await assert.rejects(kubelet.allocate(r8q, { container_requests: [{ devices_ids: [uuid, unknown] }] }),
      (err: Error) => grpcCode(err) === status.NOT_FOUND && err.message.includes(`has no device ${unknown}`));
    assert.equal(host.holds.isHeld(uuid), false);
    await assert.rejects(kubelet.allocate(r8q, { container_requests: [{ devices_ids: [] }] }), (err: Error) => grpcCode(err) === status.INVALID_ARGUMENT);
  });
});

describe('device plugin: health', () => {
  it('streams Unhealthy for a vGPU whose parent vanished, and refuses to allocate it', async () => {
    await host.addParent(simgpuDriver, new SimGpuBoard({ name: 'simgpu1' }));
    const uuid = await host.start({ parent: 'simgpu1', type: 'simgpu-4Q' });
    await kubelet.until(() => (kubelet.devices(R4Q)?.length === 1 ? true : undefined), '4Q on simgpu1');
    host.registry.removeParent('simgpu1');
    const devices = await kubelet.until(() => { const d = kubelet.devices(R4Q); return d?.[0]?.health === 'Unhealthy' ? d : undefined; }, 'Unhealthy');
    assert.deepEqual(devices, [{ ID: uuid, health: 'Unhealthy', topology: null }]);
    await assert.rejects(kubelet.allocate(R4Q, { container_requests: [{ devices_ids: [uuid] }] }),
      (err: Error) => grpcCode(err) === status.FAILED_PRECONDITION && err.message.includes('unhealthy'));
  });
});

describe('device plugin: GetPreferredAllocation', () => {
  it('packs by parent and honours must-include', async () => {
    await host.addParent(simgpuDriver, new SimGpuBoard({ name: 'simgpu1' }));
    const on0 = [await host.start({ parent: 'simgpu0', type: 'simgpu-2Q' }), await host.start({ parent: 'simgpu0', type: 'simgpu-2Q' }),
      await host.start({ parent: 'simgpu0', type: 'simgpu-2Q' })];
    const on1 = [await host.start({ parent: 'simgpu1', type: 'simgpu-2Q' }), await host.start({ parent: 'simgpu1', type: 'simgpu-2Q' })];
    const r2q = 'vfio-vgpu.io/GRID_M60-2Q';
    await kubelet.until(() => (kubelet.devices(r2q)?.length === 5 ? true : undefined), 'five 2Q');
    const all = [...on0, ...on1];
    const ask = async (must: string[], size: number): Promise<string[]> =>
      (await kubelet.preferred(r2q, { container_requests: [{ available_deviceIDs: all, must_include_deviceIDs: must, allocation_size: size }] }))
        .container_responses[0]!.deviceIDs;
    // Two fit on simgpu1 exactly (best fit), leaving simgpu0's three together.
    assert.deepEqual(new Set(await ask([], 2)), new Set(on1));
    // Three: simgpu0 holds them all.
    assert.deepEqual(new Set(await ask([], 3)), new Set(on0));
    // must-include on simgpu0: the rest from simgpu0 too.
    const withMust = await ask([on0[1]!], 2);
    assert.equal(withMust[0], on0[1]);
    assert.equal(withMust.length, 2);
    assert.ok(on0.includes(withMust[1]!));
    // Four: simgpu0's three and one of simgpu1's.
    const four = await ask([], 4);
    assert.equal(four.filter((u) => on0.includes(u)).length, 3);
    assert.equal(four.filter((u) => on1.includes(u)).length, 1);
    await assert.rejects(ask([], 6), (err: Error) => grpcCode(err) === status.INVALID_ARGUMENT);
    await assert.rejects(ask([on0[0]!, on0[1]!], 1), (err: Error) => grpcCode(err) === status.INVALID_ARGUMENT);
  });
});

describe('device plugin: restarts', () => {
  it('registers again when the kubelet restarts (kubelet.sock recreated, plugin sockets wiped)', async () => {
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-4Q' });
    await kubelet.until(() => (kubelet.devices(R4Q)?.length === 1 ? true : undefined), '4Q');
    const before = kubelet.registrations.length;
    await kubelet.restart();
    const devices = await kubelet.until(() => kubelet.devices(R4Q), 're-registration');
    assert.ok(kubelet.registrations.length >= before + 1);
    assert.deepEqual(devices, [{ ID: uuid, health: 'Healthy', topology: null }]);
    const answer = await kubelet.allocate(R4Q, { container_requests: [{ devices_ids: [uuid] }] });
    assert.deepEqual(assignHostDevices(answer.container_responses[0]!.envs, R4Q, 1), [uuid]);
  });

  it('keeps allocations across a daemon restart, and releases what the kubelet no longer holds', async () => {
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-4Q' });
    await kubelet.until(() => (kubelet.devices(R4Q)?.length === 1 ? true : undefined), '4Q');
    await kubelet.allocate(R4Q, { container_requests: [{ devices_ids: [uuid] }] });
    await stopAgent();
    host.holds.releaseAll('');
    assert.equal(host.holds.isHeld(uuid), false);
    const file = JSON.parse(readFileSync(join(dir, 'state', 'device-plugin.json'), 'utf8')) as { version: number; allocations: { uuid: string; resource: string }[] };
    assert.equal(file.version, 1);
    assert.deepEqual(file.allocations.map(({ uuid: u, resource }) => ({ uuid: u, resource })), [{ uuid, resource: R4Q }]);
    agent = await startAgent();
    assert.equal(host.holds.isHeld(uuid), true);
    await assert.rejects(host.stop(uuid), (err: Error & { code?: string }) => err.code === 'EBUSY');
    // The kubelet's checkpoint, written later, lists no device of ours: the pod is gone.
    const checkpoint = join(dir, 'device-plugins', 'kubelet_internal_checkpoint');
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(checkpoint, JSON.stringify({ Data: { PodDeviceEntries: [], RegisteredDevices: { [R4Q]: [uuid] } }, Checksum: 0 }));
    await host.start({ parent: 'simgpu0', type: 'simgpu-4Q' }); // a change: the agent looks again
    await kubelet.until(() => (host.holds.isHeld(uuid) ? undefined : true), 'the release');
    assert.ok(existsSync(checkpoint));
    await host.stop(uuid);
  });
});
