// The KEP-5304 metadata writer on its own: subrequests filed under their request,
// names that cannot be paths refused, nothing left behind on failure, removal exact.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { removeClaimMetadata, writeClaimMetadata, type MetadataDevice } from '../../../src/host/cluster/dra/device-metadata.js';
import { cdiMounts, decodeJsonStream, draMdevUuid } from './virt-launcher.js';

const DRIVER = 'vgpu.vfio-vgpu.io';
const UID = 'e3e3e3e3-0000-4000-8000-000000000001';
const UUID = '9a0b8c7d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
let dir: string;

function device(uuid: string): MetadataDevice {
  return { driver: DRIVER, pool: 'node-a', name: `vgpu-${uuid}`, attributes: { mdevUUID: { string: uuid } } };
}

function options(): { driver: string; pluginDir: string; cdiDir: string } {
  return { driver: DRIVER, pluginDir: join(dir, 'plugin'), cdiDir: join(dir, 'cdi') };
}

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'vgpu-kep5304-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

describe('KEP-5304 metadata writer', () => {
  it('files a subrequest under its request, records the full name, and removes exactly what it wrote', () => {
    const claim = { namespace: 'vms', name: 'c', uid: UID, podClaimName: undefined };
    const { written, cdiIds } = writeClaimMetadata(options(), claim, new Map([['gpu/large', [device(UUID)]]]));
    assert.deepEqual([...cdiIds], [['gpu/large', `${DRIVER}/metadata=${UID}_gpu`]]);
    const file = join(dir, 'plugin', 'dra-device-metadata', 'vms_c', 'gpu', 'metadata.json');
    const objects = decodeJsonStream(readFileSync(file, 'utf8')) as { apiVersion: string; requests: { name: string }[] }[];
    assert.deepEqual(objects.map((o) => [o.apiVersion, o.requests.map((r) => r.name)]), [
      ['metadata.resource.k8s.io/v1beta1', ['gpu/large']], ['metadata.resource.k8s.io/v1alpha1', ['gpu/large']],
    ]);
    const mounts = cdiMounts(join(dir, 'cdi'), [cdiIds.get('gpu/large')!]);
    assert.deepEqual([...mounts], [[`/var/run/kubernetes.io/dra-device-attributes/resourceclaims/c/gpu/${DRIVER}-metadata.json`, file]]);
    // KubeVirt matches requests[].name against its requestName: a subrequest's full name does not match "gpu".
    assert.throws(() => draMdevUuid(mounts, [{ name: 'x', resourceClaimName: 'c' }], 'x', 'gpu'), /request gpu found 0 times/);
    removeClaimMetadata(written);
    assert.deepEqual(readdirSync(join(dir, 'plugin', 'dra-device-metadata')), []);
    assert.deepEqual(readdirSync(join(dir, 'cdi')), []);
  });

  it('refuses names that cannot be path segments and two subrequests of one request, leaving nothing', () => {
    const good = { namespace: 'vms', name: 'c', uid: UID, podClaimName: undefined };
    assert.throws(() => writeClaimMetadata(options(), { ...good, namespace: '..' }, new Map([['gpu', [device(UUID)]]])), /namespace "\.\." is not a valid/);
    assert.throws(() => writeClaimMetadata(options(), { ...good, name: 'a/b' }, new Map([['gpu', [device(UUID)]]])), /claim name "a\/b" is not a valid/);
    assert.throws(() => writeClaimMetadata(options(), { ...good, podClaimName: 'Gpu' }, new Map([['gpu', [device(UUID)]]])), /pod claim name "Gpu"/);
    assert.throws(() => writeClaimMetadata(options(), good, new Map([['..', [device(UUID)]]])), /request name "\.\."/);
    assert.throws(() => writeClaimMetadata(options(), good, new Map([['gpu/a', [device(UUID)]], ['gpu/b', [device(UUID)]]])), /request gpu appears twice/);
    assert.equal(existsSync(join(dir, 'plugin', 'dra-device-metadata', 'vms_c')), false);
    assert.equal(existsSync(join(dir, 'cdi', `${DRIVER}-metadata_${UID}.json`)), false);
  });

  it('a JSON stream reader that splits objects and refuses junk', () => {
    assert.deepEqual(decodeJsonStream('{"a":"}{"}\n{"b":[1,{"c":"\\""}]}\n'), [{ a: '}{' }, { b: [1, { c: '"' }] }]);
    assert.throws(() => decodeJsonStream('{"a":1} x'), /stray x/);
    assert.throws(() => decodeJsonStream('{"a":1'), /truncated/);
  });
});
