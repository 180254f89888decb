// The DRA driver against a fake kubelet (plugin watcher registration, NodePrepare /
// NodeUnprepare over gRPC v1 and v1beta1) and a fake API server validating every
// ResourceSlice against the resource.k8s.io/v1 schema: slices published field by field,
// the prepare / unprepare round trip with CDI spec and checkpoint, idempotence, errors,
// a daemon restart in between, slices wiped and republished.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createHost, type Host } from '../../../src/host/host.js';
import { createMockSys } from '../../../src/sys/index.js';
import { SimGpuBoard, simgpuDriver } from '../../../src/vendors/simgpu/index.js';
import { InventoryWatch } from '../../../src/host/cluster/inventory.js';
import { DraAgent } from '../../../src/host/cluster/dra/agent.js';
import { kubeClusterApi } from '../../../src/host/cluster/dra/cluster-api.js';
import { VGPU_UUID_NAMESPACE } from '../../../src/host/cluster/dra/devices.js';
import { nameBasedUuid } from '../../../src/host/cluster/names.js';
import type { ResourceSliceObject, SliceDevice } from '../../../src/host/cluster/dra/slices.js';
import { FakeApiServer } from './fake-apiserver.js';
import { FakeDraKubelet } from './fake-dra-kubelet.js';
import { cdiMounts, draMdevUuid, type VmiResourceClaim } from './virt-launcher.js';
import type { NodePrepareResourcesResponse } from '../../../src/host/cluster/proto/messages.js';

const DRIVER = 'vgpu.vfio-vgpu.io';
const NODE = 'node-a';

let dir: string;
let host: Host;
let api: FakeApiServer;
let kubelet: FakeDraKubelet;
let watch: InventoryWatch;
let agent: DraAgent;
let nodeUid: string;
const logs: string[] = [];

async function startAgent(partitionable = false): Promise<DraAgent> {
  watch = new InventoryWatch(host, 100);
  await watch.start();
  const a = new DraAgent({
    driver: DRIVER, node: NODE, registryDir: join(dir, 'plugins_registry'), pluginDir: join(dir, 'plugins', DRIVER), cdiDir: join(dir, 'cdi'),
    partitionable, api: kubeClusterApi(api.kubeConfig()), host, inventory: watch, log: (line) => logs.push(line), resyncMs: 100,
  });
  await a.start();
  await kubelet.scan();
  return a;
}

async function stopAgent(): Promise<void> {
  await agent.close();
  watch.stop();
}

function slices(): ResourceSliceObject[] {
  return [...api.slices.values()] as unknown as ResourceSliceObject[];
}

function publishedDevices(): SliceDevice[] {
  return slices().flatMap((s) => s.spec.devices ?? []);
}

/** What the driver should offer, worked out here from the host's types. */
async function expectedSlots(): Promise<Map<string, { parent: string; type: string; name: string }>> {
  const out = new Map<string, { parent: string; type: string; name: string }>();
  const live = new Set(host.liveDevices().map((d) => d.uuid));
  for (const t of await host.types()) {
    for (let i = 0, n = 0; n < t.availableInstances; i++) {
      const uuid = nameBasedUuid(VGPU_UUID_NAMESPACE, `${NODE}/${t.parent}/${t.id}/${i}`);
      if (live.has(uuid)) continue;
      n++;
      out.set(uuid, { parent: t.parent, type: t.id, name: t.name });
    }
  }
  return out;
}

function claimObject(name: string, uid: string, devices: { request: string; device: string; pool?: string; driver?: string }[], annotations?: Record<string, string>): Record<string, unknown> {
  return {
    apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim',
    metadata: { name, namespace: 'vms', uid, ...(annotations ? { annotations } : {}) },
    spec: { devices: { requests: [...new Set(devices.map((d) => d.request))].map((r) => ({ name: r, exactly: { deviceClassName: 'vgpu.vfio-vgpu.io' } })) } },
    status: {
      allocation: {
        devices: { results: devices.map((d) => ({ request: d.request, driver: d.driver ?? DRIVER, pool: d.pool ?? NODE, device: d.device })) },
        nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [NODE] }] }] },
      },
    },
  };
}

async function until<T>(check: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vgpu-dra-'));
  for (const sub of ['plugins_registry', 'defs']) mkdirSync(join(dir, sub));
  host = createHost({ sys: createMockSys({ devices: [] }), definitionsRoot: join(dir, 'defs'), simulated: true, report: () => undefined });
  api = new FakeApiServer();
  await api.start();
  nodeUid = api.addNode(NODE);
  kubelet = new FakeDraKubelet(join(dir, 'plugins_registry'));
  agent = await startAgent();
});

afterEach(async (t) => {
  if (logs.length > 0 && 'diagnostic' in t) t.diagnostic(logs.splice(0).join('\n'));
  await stopAgent();
  kubelet.close();
  await api.stop();
  await host.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DRA: names', () => {
  it('makes RFC 4122 version 5 UUIDs (the RFC\'s DNS namespace example)', () => {
    assert.equal(nameBasedUuid('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });
});

describe('DRA: registration', () => {
  it('registers through the plugin watcher as a DRAPlugin speaking v1 and v1beta1', async () => {
    const reg = kubelet.plugins.get(DRIVER)!;
    assert.deepEqual(reg.info, {
      type: 'DRAPlugin', name: DRIVER, endpoint: join(dir, 'plugins', DRIVER, 'dra.sock'), supported_versions: ['v1.DRAPlugin', 'v1beta1.DRAPlugin'],
    });
    assert.equal(reg.version, 'v1');
    assert.deepEqual(agent.registration, { plugin_registered: true, error: '' });
    assert.ok(existsSync(join(dir, 'plugins_registry', `${DRIVER}-reg.sock`)));
  });

  it('registers again with a restarted kubelet, which then prepares through it', async () => {
    kubelet.close();
    agent.registration = undefined;
    kubelet = new FakeDraKubelet(join(dir, 'plugins_registry'));
    await kubelet.scan();
    assert.deepEqual(agent.registration, { plugin_registered: true, error: '' });
    const slot = [...(await expectedSlots())][0]![0];
    const uid = 'c1c1c1c1-0000-4000-8000-000000000009';
    api.addClaim(claimObject('after-restart', uid, [{ request: 'gpu', device: `vgpu-${slot}` }]));
    const res = await kubelet.prepare(DRIVER, [{ namespace: 'vms', uid, name: 'after-restart' }]);
    assert.equal(res.claims[uid]!.error, '');
    assert.ok(host.liveDevice(slot));
  });
});

describe('DRA: ResourceSlices', () => {
  it('publishes every free instance and live vGPU, field by field, in slices of at most 128', async () => {
    const live = await host.start({ parent: 'simgpu0', type: 'simgpu-2Q' });
    await host.addParent(simgpuDriver, new SimGpuBoard({ name: 'simgpu1' }));
    await host.addParent(simgpuDriver, new SimGpuBoard({ name: 'simgpu2' }));
    await agent.republish();
    const expected = await expectedSlots();
    const all = slices();
    assert.ok(all.length >= 2, `${all.length} slices`);
    const generation = all[0]!.spec.pool.generation;
    for (const s of all) {
      assert.equal(s.apiVersion, 'resource.k8s.io/v1');
      assert.equal(s.kind, 'ResourceSlice');
      assert.deepEqual(s.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: nodeUid, controller: true }]);
      assert.deepEqual(Object.keys(s.spec).sort(), ['devices', 'driver', 'nodeName', 'pool']);
      assert.equal(s.spec.driver, DRIVER);
      assert.equal(s.spec.nodeName, NODE);
      assert.deepEqual(s.spec.pool, { name: NODE, generation, resourceSliceCount: all.length });
      assert.ok(s.spec.devices!.length <= 128);
    }
    const devices = publishedDevices();
    assert.equal(devices.length, expected.size + 1);
    const types = new Map((await host.types()).map((t) => [`${t.parent}/${t.id}`, t]));
    for (const d of devices) {
      const uuid = d.name.slice('vgpu-'.length);
      const slot = expected.get(uuid) ?? (uuid === live ? { parent: 'simgpu0', type: 'simgpu-2Q', name: 'GRID M60-2Q' } : undefined);
      assert.ok(slot, `unexpected device ${d.name}`);
      const t = types.get(`${slot.parent}/${slot.type}`)!;
      assert.deepEqual(d, {
        name: `vgpu-${uuid}`,
        attributes: { typeId: { string: slot.type }, typeName: { string: slot.name }, parent: { string: slot.parent }, mdevUUID: { string: uuid } },
        capacity: { framebuffer: { value: t.attributes['framebuffer'] } },
      });
    }
    // Every write went through the schema; nothing was refused.
    assert.ok(api.writes.length > 0);
    assert.deepEqual(logs.filter((l) => l.includes('failed')), []);
  });

  it('partitionable mode: a counter set per parent, each device consuming its framebuffer', async () => {
    await stopAgent();
    agent = await startAgent(true);
    const all = slices();
    const counters = all.filter((s) => s.spec.sharedCounters);
    assert.equal(counters.length, 1);
    // With no vGPU yet, a board's framebuffer is what its roomiest type could fill: worked out from the types.
    const totals = new Map<string, number>();
    for (const t of await host.types()) {
      totals.set(t.parent, Math.max(totals.get(t.parent) ?? 0, Number(t.attributes['framebuffer']) * t.availableInstances));
    }
    assert.equal(totals.get('simgpu0'), 8 * 1024 ** 3);
    assert.deepEqual(counters[0]!.spec.sharedCounters, [...totals].sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([parent, bytes]) => ({ name: `parent-${parent}`, counters: { framebuffer: { value: String(bytes) } } })));
    for (const d of publishedDevices()) {
      const parent = d.attributes['parent']!.string;
      assert.deepEqual(d.consumesCounters, [{ counterSet: `parent-${parent}`, counters: { framebuffer: d.capacity!['framebuffer']! } }]);
    }
    for (const s of all) {
      assert.equal(s.spec.pool.resourceSliceCount, all.length);
      assert.ok((s.spec.devices?.length ?? 0) <= 64);
    }
  });

  it('republishes slices the kubelet wiped, and removes them at shutdown', async () => {
    const before = slices().map((s) => s.metadata.name).sort();
    assert.ok(before.length > 0);
    api.slices.clear();
    const again = await until(() => (api.slices.size === before.length ? slices() : undefined), 'republished slices');
    assert.deepEqual(again.map((s) => s.metadata.name).sort(), before);
    await stopAgent();
    assert.equal(api.slices.size, 0);
    agent = await startAgent();
  });

  it('moves to a new generation when what it offers changes', async () => {
    const g0 = slices()[0]!.spec.pool.generation;
    await host.start({ parent: 'simgpu0', type: 'simgpu-8Q' });
    const g1 = await until(() => { const s = slices(); return s[0] && s[0].spec.pool.generation > g0 && s.every((x) => x.spec.pool.generation === s[0]!.spec.pool.generation) ? s[0].spec.pool.generation : undefined; }, 'a new generation');
    assert.ok(g1 > g0);
  });
});

describe('DRA: prepare and unprepare', () => {
  it('creates the published UUID, writes the CDI spec and checkpoint, is idempotent, and undoes exactly that', async () => {
    const slot = [...(await expectedSlots())].find(([, s]) => s.type === 'simgpu-4Q')!;
    const uuid = slot[0];
    const device = `vgpu-${uuid}`;
    assert.ok(publishedDevices().some((d) => d.name === device));
    const uid = 'c1c1c1c1-0000-4000-8000-000000000001';
    api.addClaim(claimObject('vm-gpu', uid, [{ request: 'gpu', device }]));
    const claim = { namespace: 'vms', uid, name: 'vm-gpu' };
    const first = await kubelet.prepare(DRIVER, [claim]);
    const cdiName = `${uid}-${device}`;
    const metadataId = `${DRIVER}/metadata=${uid}_gpu`;
    assert.deepEqual(first, { claims: { [uid]: { devices: [{ request_names: ['gpu'], pool_name: NODE, device_name: device, cdi_device_ids: [`${DRIVER}/vgpu=${cdiName}`, metadataId] }], error: '' } } });
    const live = host.liveDevice(uuid)!;
    assert.deepEqual({ parent: live.parent, type: live.type }, { parent: 'simgpu0', type: 'simgpu-4Q' });
    const specPath = join(dir, 'cdi', `${DRIVER}-vgpu_${uid}.json`);
    assert.deepEqual(JSON.parse(readFileSync(specPath, 'utf8')), {
      cdiVersion: '0.6.0', kind: `${DRIVER}/vgpu`,
      devices: [{
        name: cdiName,
        annotations: { 'vfio-vgpu.io/mdevUUID': uuid },
        containerEdits: {
          env: [`VGPU_MDEV_UUID_${device.toUpperCase().replace(/-/g, '_')}=${uuid}`],
          deviceNodes: [{ path: '/dev/vfio/vfio', type: 'c', permissions: 'rw' }, { path: `/dev/vfio/${live.group}`, type: 'c', permissions: 'rw' }],
        },
      }],
    });
    const checkpoint = JSON.parse(readFileSync(join(dir, 'plugins', DRIVER, 'checkpoint.json'), 'utf8')) as unknown;
    const metadataDir = join(dir, 'plugins', DRIVER, 'dra-device-metadata', 'vms_vm-gpu');
    const metadataSpec = join(dir, 'cdi', `${DRIVER}-metadata_${uid}.json`);
    assert.deepEqual(checkpoint, { version: 1, claims: [{ uid, namespace: 'vms', name: 'vm-gpu', cdiSpec: specPath,
      devices: [{ device, uuid, requestNames: ['gpu'], created: true, cdiDeviceIds: [`${DRIVER}/vgpu=${cdiName}`, metadataId] }],
      metadata: { dir: metadataDir, cdiSpec: metadataSpec } }] });
    // Held: the vgpu command does not take it away.
    await assert.rejects(host.stop(uuid), (err: Error & { code?: string }) => err.code === 'EBUSY' && err.message.includes('ResourceClaim vms/vm-gpu'));
    // Idempotent: the same answer, in either API version, and no second vGPU.
    const count = host.liveDevices().length;
    assert.deepEqual(await kubelet.prepare(DRIVER, [claim]), first);
    assert.deepEqual(await kubelet.prepare(DRIVER, [claim], 'v1beta1'), first);
    assert.equal(host.liveDevices().length, count);
    // The vGPU stays published (the scheduler knows it is allocated).
    await agent.republish();
    assert.ok(publishedDevices().some((d) => d.name === device && d.attributes['mdevUUID']!.string === uuid));
    // Unprepare: the vGPU it made goes, the spec goes, the checkpoint forgets; again is fine.
    assert.deepEqual(await kubelet.unprepare(DRIVER, [claim]), { claims: { [uid]: { error: '' } } });
    assert.equal(host.liveDevice(uuid), undefined);
    assert.equal(existsSync(specPath), false);
    assert.equal(existsSync(metadataSpec), false);
    assert.equal(existsSync(metadataDir), false);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'plugins', DRIVER, 'checkpoint.json'), 'utf8')), { version: 1, claims: [] });
    assert.deepEqual(await kubelet.unprepare(DRIVER, [claim], 'v1beta1'), { claims: { [uid]: { error: '' } } });
  });

  it('reserves a live vGPU without making or removing it', async () => {
    const uuid = await host.start({ parent: 'simgpu0', type: 'simgpu-1Q' });
    await agent.republish();
    const uid = 'c1c1c1c1-0000-4000-8000-000000000002';
    api.addClaim(claimObject('live', uid, [{ request: 'a', device: `vgpu-${uuid}` }, { request: 'b', device: `vgpu-${uuid}` }]));
    const claim = { namespace: 'vms', uid, name: 'live' };
    const res = await kubelet.prepare(DRIVER, [claim]);
    assert.equal(res.claims[uid]!.error, '');
    assert.deepEqual(res.claims[uid]!.devices.map((d) => [d.device_name, d.request_names]), [[`vgpu-${uuid}`, ['a', 'b']]]);
    assert.deepEqual(await kubelet.unprepare(DRIVER, [claim]), { claims: { [uid]: { error: '' } } });
    assert.ok(host.liveDevice(uuid));
    assert.equal(host.holds.isHeld(uuid), false);
  });

  it('fails a claim clearly: wrong UID, another pool, unknown device, missing claim; the others in the call go on', async () => {
    const slot = [...(await expectedSlots())][0]![0];
    api.addClaim(claimObject('renamed', 'c1c1c1c1-0000-4000-8000-0000000000aa', [{ request: 'gpu', device: `vgpu-${slot}` }]));
    api.addClaim(claimObject('elsewhere', 'c1c1c1c1-0000-4000-8000-0000000000bb', [{ request: 'gpu', device: `vgpu-${slot}`, pool: 'node-b' }]));
    api.addClaim(claimObject('unknown', 'c1c1c1c1-0000-4000-8000-0000000000cc', [{ request: 'gpu', device: 'vgpu-00000000-0000-4000-8000-000000000000' }]));
    api.addClaim(claimObject('good', 'c1c1c1c1-0000-4000-8000-0000000000dd', [{ request: 'gpu', device: `vgpu-${slot}` }]));
    const before = host.liveDevices().length;
    const res = await kubelet.prepare(DRIVER, [
      { namespace: 'vms', name: 'renamed', uid: 'c1c1c1c1-0000-4000-8000-0000000000ff' },
      { namespace: 'vms', name: 'elsewhere', uid: 'c1c1c1c1-0000-4000-8000-0000000000bb' },
      { namespace: 'vms', name: 'unknown', uid: 'c1c1c1c1-0000-4000-8000-0000000000cc' },
      { namespace: 'vms', name: 'gone', uid: 'c1c1c1c1-0000-4000-8000-0000000000ee' },
      { namespace: 'vms', name: 'good', uid: 'c1c1c1c1-0000-4000-8000-0000000000dd' },
    ]);
    const err = (uid: string): string => res.claims[uid]!.error;
    assert.match(err('c1c1c1c1-0000-4000-8000-0000000000ff'), /UID is c1c1c1c1-0000-4000-8000-0000000000aa, not c1c1c1c1-0000-4000-8000-0000000000ff/);
    assert.match(err('c1c1c1c1-0000-4000-8000-0000000000bb'), /allocated from pool node-b, not this node's \(node-a\)/);
    assert.match(err('c1c1c1c1-0000-4000-8000-0000000000cc'), /is not offered by this node/);
    assert.match(err('c1c1c1c1-0000-4000-8000-0000000000ee'), /no such ResourceClaim/);
    assert.equal(err('c1c1c1c1-0000-4000-8000-0000000000dd'), '');
    for (const uid of ['c1c1c1c1-0000-4000-8000-0000000000ff', 'c1c1c1c1-0000-4000-8000-0000000000bb', 'c1c1c1c1-0000-4000-8000-0000000000cc']) {
      assert.deepEqual(res.claims[uid]!.devices, []);
    }
    assert.equal(host.liveDevices().length, before + 1);
  });

  it('loses nothing across a daemon restart between prepare and unprepare', async () => {
    const slot = [...(await expectedSlots())].find(([, s]) => s.type === 'simgpu-2Q')![0];
    const uid = 'c1c1c1c1-0000-4000-8000-000000000003';
    api.addClaim(claimObject('restart', uid, [{ request: 'gpu', device: `vgpu-${slot}` }]));
    const claim = { namespace: 'vms', uid, name: 'restart' };
    const first = await kubelet.prepare(DRIVER, [claim]);
    const generation = slices()[0]!.spec.pool.generation;
    await stopAgent();
    kubelet.close();
    host.holds.releaseAll('');
    agent = await startAgent();
    assert.equal(host.holds.isHeld(slot), true);
    assert.ok(slices().length > 0);
    assert.ok(generation > 0);
    // The slices were deleted at shutdown; the pool goes on from the saved generation, not from 1.
    assert.deepEqual(slices().map((s) => s.spec.pool.generation), slices().map(() => generation + 1));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'plugins', DRIVER, 'pool-generation.json'), 'utf8')), { generation: generation + 1 });
    assert.deepEqual(await kubelet.prepare(DRIVER, [claim]), first);
    assert.deepEqual(await kubelet.unprepare(DRIVER, [claim]), { claims: { [uid]: { error: '' } } });
    assert.equal(host.liveDevice(slot), undefined);
  });
});

/** The CDI ids the kubelet gives a container that names `request` of the claim. */
function idsFor(res: NodePrepareResourcesResponse, uid: string, request: string): string[] {
  const claim = res.claims[uid]!;
  assert.equal(claim.error, '');
  return claim.devices.filter((d) => d.request_names.includes(request)).flatMap((d) => d.cdi_device_ids);
}

/** What virt-launcher gets for (claimName, requestName) of a VMI with these resourceClaims. */
function launcherUuid(res: NodePrepareResourcesResponse, uid: string, vmiClaims: VmiResourceClaim[], claimName: string, request: string): string {
  return draMdevUuid(cdiMounts(join(dir, 'cdi'), idsFor(res, uid, request)), vmiClaims, claimName, request);
}

describe('DRA: device metadata (KEP-5304) as KubeVirt 1.9 reads it', () => {
  it('a named claim: the metadata stream field by field, its CDI mount, and the UUID virt-launcher reads', async () => {
    const [uuid, slot] = [...(await expectedSlots())].find(([, s]) => s.type === 'simgpu-4Q')!;
    const device = `vgpu-${uuid}`;
    const uid = 'd2d2d2d2-0000-4000-8000-000000000001';
    api.addClaim(claimObject('named-gpu', uid, [{ request: 'gpu', device }]));
    const res = await kubelet.prepare(DRIVER, [{ namespace: 'vms', uid, name: 'named-gpu' }]);
    const hostFile = join(dir, 'plugins', DRIVER, 'dra-device-metadata', 'vms_named-gpu', 'gpu', 'metadata.json');
    const containerFile = `/var/run/kubernetes.io/dra-device-attributes/resourceclaims/named-gpu/gpu/${DRIVER}-metadata.json`;
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'cdi', `${DRIVER}-metadata_${uid}.json`), 'utf8')), {
      cdiVersion: '0.6.0', kind: `${DRIVER}/metadata`,
      devices: [{ name: `${uid}_gpu`, containerEdits: { mounts: [{ hostPath: hostFile, containerPath: containerFile, options: ['ro', 'bind'] }] } }],
    });
    const text = readFileSync(hostFile, 'utf8');
    const body = (apiVersion: string): unknown => ({
      kind: 'DeviceMetadata', apiVersion,
      metadata: { name: 'named-gpu', namespace: 'vms', uid, generation: 1, creationTimestamp: null },
      requests: [{ name: 'gpu', devices: [{ driver: DRIVER, pool: NODE, name: device, attributes: {
        typeId: { string: 'simgpu-4Q' }, typeName: { string: slot.name }, parent: { string: 'simgpu0' }, mdevUUID: { string: uuid },
      } }] }],
    });
    // A JSON stream: v1beta1 first, then v1alpha1, each pretty-printed and ending in a newline.
    assert.equal(text, [body('metadata.resource.k8s.io/v1beta1'), body('metadata.resource.k8s.io/v1alpha1')].map((o) => `${JSON.stringify(o, null, 2)}\n`).join(''));
    assert.equal(statSync(hostFile).mode & 0o777, 0o644);
    const vmi: VmiResourceClaim[] = [{ name: 'gpu-claim', resourceClaimName: 'named-gpu' }];
    assert.equal(launcherUuid(res, uid, vmi, 'gpu-claim', 'gpu'), uuid);
    assert.equal(host.liveDevice(uuid)!.uuid, uuid);
    // Read as a template claim, the file is not there.
    assert.throws(() => launcherUuid(res, uid, [{ name: 'named-gpu', resourceClaimTemplateName: 't' }], 'named-gpu', 'gpu'), /0 metadata files/);
  });

  it('a template claim: mounted under resourceclaimtemplates/<pod claim name>, podClaimName recorded', async () => {
    const [uuid] = [...(await expectedSlots())].find(([, s]) => s.type === 'simgpu-2Q')!;
    const uid = 'd2d2d2d2-0000-4000-8000-000000000002';
    const generated = 'virt-launcher-vm1-abcde-gpu-claim-x7k2p';
    api.addClaim(claimObject(generated, uid, [{ request: 'gpu', device: `vgpu-${uuid}` }], { 'resource.kubernetes.io/pod-claim-name': 'gpu-claim' }));
    const res = await kubelet.prepare(DRIVER, [{ namespace: 'vms', uid, name: generated }]);
    const mounts = cdiMounts(join(dir, 'cdi'), idsFor(res, uid, 'gpu'));
    assert.deepEqual([...mounts.keys()], [`/var/run/kubernetes.io/dra-device-attributes/resourceclaimtemplates/gpu-claim/gpu/${DRIVER}-metadata.json`]);
    const objects = readFileSync([...mounts.values()][0]!, 'utf8').split(/\n(?=\{)/).map((t) => JSON.parse(t) as Record<string, unknown>);
    assert.deepEqual(objects.map((o) => [o['apiVersion'], o['podClaimName'], Object.keys(o)]), [
      ['metadata.resource.k8s.io/v1beta1', 'gpu-claim', ['kind', 'apiVersion', 'metadata', 'podClaimName', 'requests']],
      ['metadata.resource.k8s.io/v1alpha1', 'gpu-claim', ['kind', 'apiVersion', 'metadata', 'podClaimName', 'requests']],
    ]);
    assert.equal(launcherUuid(res, uid, [{ name: 'gpu-claim', resourceClaimTemplateName: 'vgpu-template' }], 'gpu-claim', 'gpu'), uuid);
    assert.throws(() => launcherUuid(res, uid, [{ name: 'gpu-claim', resourceClaimName: generated }], 'gpu-claim', 'gpu'), /0 metadata files/);
  });

  it('two requests: one file each, each with its own vGPU; a restart in between; unprepare removes exactly them', async () => {
    const slots = [...(await expectedSlots())].filter(([, s]) => s.type === 'simgpu-1Q').slice(0, 2).map(([u]) => u);
    assert.equal(slots.length, 2);
    const uid = 'd2d2d2d2-0000-4000-8000-000000000003';
    api.addClaim(claimObject('two', uid, [{ request: 'first', device: `vgpu-${slots[0]}` }, { request: 'second', device: `vgpu-${slots[1]}` }]));
    const other = 'd2d2d2d2-0000-4000-8000-000000000004';
    const otherSlot = [...(await expectedSlots())].find(([u, s]) => s.type === 'simgpu-1Q' && !slots.includes(u))![0];
    api.addClaim(claimObject('other', other, [{ request: 'gpu', device: `vgpu-${otherSlot}` }]));
    const claim = { namespace: 'vms', uid, name: 'two' };
    const res = await kubelet.prepare(DRIVER, [claim, { namespace: 'vms', uid: other, name: 'other' }]);
    assert.deepEqual(res.claims[uid]!.devices.map((d) => d.cdi_device_ids), [
      [`${DRIVER}/vgpu=${uid}-vgpu-${slots[0]}`, `${DRIVER}/metadata=${uid}_first`],
      [`${DRIVER}/vgpu=${uid}-vgpu-${slots[1]}`, `${DRIVER}/metadata=${uid}_second`],
    ]);
    const vmi: VmiResourceClaim[] = [{ name: 'gpus', resourceClaimName: 'two' }];
    assert.equal(launcherUuid(res, uid, vmi, 'gpus', 'first'), slots[0]);
    assert.equal(launcherUuid(res, uid, vmi, 'gpus', 'second'), slots[1]);
    // A daemon restart between prepare and the read: the files stay, the answer is the same.
    await stopAgent();
    kubelet.close();
    host.holds.releaseAll('');
    agent = await startAgent();
    const again = await kubelet.prepare(DRIVER, [claim]);
    assert.deepEqual(again.claims[uid], res.claims[uid]);
    assert.equal(launcherUuid(again, uid, vmi, 'gpus', 'first'), slots[0]);
    assert.equal(launcherUuid(again, uid, vmi, 'gpus', 'second'), slots[1]);
    assert.deepEqual(slots.map((u) => host.liveDevice(u)?.uuid), slots);
    // Unprepare: this claim's files and spec go, the other claim's stay and still read.
    assert.deepEqual(await kubelet.unprepare(DRIVER, [claim]), { claims: { [uid]: { error: '' } } });
    assert.equal(existsSync(join(dir, 'plugins', DRIVER, 'dra-device-metadata', 'vms_two')), false);
    assert.equal(existsSync(join(dir, 'cdi', `${DRIVER}-metadata_${uid}.json`)), false);
    assert.throws(() => launcherUuid(res, uid, vmi, 'gpus', 'first'), /unresolvable device/);
    assert.deepEqual(readdirSync(join(dir, 'plugins', DRIVER, 'dra-device-metadata')), ['vms_other']);
    assert.equal(launcherUuid(res, other, [{ name: 'o', resourceClaimName: 'other' }], 'o', 'gpu'), otherSlot);
  });

  it('refuses a claim whose names cannot be a path, leaving nothing behind', async () => {
    const [uuid] = [...(await expectedSlots())][0]!;
    const uid = 'd2d2d2d2-0000-4000-8000-000000000005';
    api.addClaim(claimObject('bad-annotation', uid, [{ request: 'gpu', device: `vgpu-${uuid}` }], { 'resource.kubernetes.io/pod-claim-name': '../../etc' }));
    const before = host.liveDevices().length;
    const res = await kubelet.prepare(DRIVER, [{ namespace: 'vms', uid, name: 'bad-annotation' }]);
    assert.match(res.claims[uid]!.error, /pod claim name "\.\.\/\.\.\/etc" is not a valid Kubernetes name/);
    assert.equal(host.liveDevices().length, before);
    assert.equal(existsSync(join(dir, 'cdi', `${DRIVER}-vgpu_${uid}.json`)), false);
    assert.equal(existsSync(join(dir, 'cdi', `${DRIVER}-metadata_${uid}.json`)), false);
    assert.equal(existsSync(join(dir, 'plugins', DRIVER, 'dra-device-metadata', 'vms_bad-annotation')), false);
  });
});

describe('DRA: the Node and the saved generation', () => {
  it('refuses to start without its Node object, and on a damaged generation file', async () => {
    const { writeFileSync } = await import('node:fs');
    await stopAgent();
    api.nodes.clear();
    await assert.rejects(startAgent(), (err: Error) => err.message.includes('cannot read the Node node-a'));
    watch.stop();
    nodeUid = api.addNode(NODE);
    const path = join(dir, 'plugins', DRIVER, 'pool-generation.json');
    writeFileSync(path, '{"generation":-1}');
    await assert.rejects(startAgent(), (err: Error) => err.message.includes(path) && err.message.includes('does not hold a pool generation'));
    watch.stop();
    rmSync(path);
    agent = await startAgent();
    assert.deepEqual(slices()[0]!.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: nodeUid, controller: true }]);
  });
});

describe('DRA: a damaged checkpoint', () => {
  it('refuses to start on it, saying which file and why', async () => {
    const { writeFileSync } = await import('node:fs');
    await stopAgent();
    const path = join(dir, 'plugins', DRIVER, 'checkpoint.json');
    writeFileSync(path, '{"version":1,"claims":[{"uid":"x"}]}');
    await assert.rejects(startAgent(), (err: Error) => err.message.includes(path) && err.message.includes('not one'));
    writeFileSync(path, '{"version":1,');
    await assert.rejects(startAgent(), (err: Error) => err.message.includes(path) && err.message.includes('not JSON'));
    rmSync(path);
    agent = await startAgent();
  });
});
