// `vgpu serve --device-plugin --dra` as a user runs it: the daemon process registers
// with a fake kubelet and publishes ResourceSlices to a fake API server from a
// kubeconfig file; the vgpu command starts a vGPU the kubelet then sees, refuses to
// stop it once allocated unless --force, prints the KubeVirt configuration, and
// SIGTERM leaves no socket and no slice behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeKubelet } from '../host/cluster/fake-kubelet.js';
import { FakeApiServer } from '../host/cluster/fake-apiserver.js';
import { assignHostDevices } from '../host/cluster/virt-launcher.js';
import { vgpuJs, runVgpu, vgpuEnv } from './cli-process.js';

const R4Q = 'vfio-vgpu.io/GRID_M60-4Q';

async function until<T>(check: () => T | undefined, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('vgpu serve with the Kubernetes node agents', () => {
  let dir: string;
  let kubelet: FakeKubelet;
  let api: FakeApiServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vgpu-serve-k8s-'));
    for (const sub of ['dp', 'reg']) mkdirSync(join(dir, sub));
    kubelet = new FakeKubelet(join(dir, 'dp'));
    await kubelet.start();
    api = new FakeApiServer();
    await api.start();
    api.addNode('node-a');
  });

  after(async () => {
    await kubelet.stop();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves both agents, holds allocations, and cleans up at SIGTERM', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
      // client-node speaks plain http only with this set (the fake listens on 127.0.0.1 without TLS).
      clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'node', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'node' } }],
    }));
    const socket = join(dir, 'vgpu.sock');
    const child = spawn(process.execPath, [vgpuJs, 'serve', '--socket', socket, '--root', join(dir, 'defs'), '--run-dir', join(dir, 'run'),
      '--device-plugin', '--device-plugin-dir', join(dir, 'dp'), '--state-dir', join(dir, 'state'),
      '--dra', '--kubeconfig', kubeconfig, '--node-name', 'node-a', '--plugins-registry', join(dir, 'reg'),
      '--dra-plugin-dir', join(dir, 'plugin'), '--cdi-dir', join(dir, 'cdi')], { env: vgpuEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      await until(() => (stderr.includes('vgpu serve: ready') ? true : undefined), `the daemon to be ready (stderr: ${stderr})`);
      await until(() => kubelet.devices(R4Q), 'the 4Q resource registered');
      await until(() => (api.slices.size > 0 ? true : undefined), 'ResourceSlices').catch((err: Error) => { throw new Error(`${err.message}: ${stderr} ${api.requests.join(' ')}`); });
      assert.ok(existsSync(join(dir, 'reg', 'vgpu.vfio-vgpu.io-reg.sock')));

      const started = await runVgpu(['start', '--socket', socket, '-p', 'simgpu0', '-t', 'simgpu-4Q']);
      assert.equal(started.code, 0, started.stderr);
      const uuid = started.stdout.trim();
      await until(() => (kubelet.devices(R4Q)?.some((d) => d.ID === uuid) ? true : undefined), 'the new vGPU streamed');
      const answer = await kubelet.allocate(R4Q, { container_requests: [{ devices_ids: [uuid] }] });
      assert.deepEqual(assignHostDevices(answer.container_responses[0]!.envs, R4Q, 1), [uuid]);
      // Served over vfio-user by the daemon: its socket is mounted too.
      assert.deepEqual(answer.container_responses[0]!.mounts, [{ container_path: join(dir, 'run', `${uuid}.sock`), host_path: join(dir, 'run', `${uuid}.sock`), read_only: false }]);

      const refused = await runVgpu(['stop', '--socket', socket, '-u', uuid]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /held by a pod's container \(KubeVirt device plugin, vfio-vgpu\.io\/GRID_M60-4Q\)/);
      assert.match(refused.stderr, /--force/);

      const kv = await runVgpu(['kubevirt', '--socket', socket, '--json']);
      assert.equal(kv.code, 0, kv.stderr);
      const patch = JSON.parse(kv.stdout) as { spec: { configuration: { permittedHostDevices: { mediatedDevices: unknown[] } } } };
      assert.deepEqual(patch.spec.configuration.permittedHostDevices.mediatedDevices.find((d) => (d as { resourceName: string }).resourceName === R4Q),
        { mdevNameSelector: 'GRID M60-4Q', resourceName: R4Q, externalResourceProvider: true });

      const forced = await runVgpu(['stop', '--socket', socket, '-u', uuid, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      await until(() => (kubelet.devices(R4Q)?.some((d) => d.ID === uuid) ? undefined : true), 'the stopped vGPU gone');

      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.equal(api.slices.size, 0);
      assert.deepEqual(readdirSync(join(dir, 'reg')), []);
      assert.deepEqual(readdirSync(join(dir, 'dp')).filter((n) => n !== 'kubelet.sock'), []);
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses an agent option without its agent, before starting anything', async () => {
    const res = await runVgpu(['serve', '--socket', join(dir, 'x.sock'), '--root', join(dir, 'defs2'), '--cdi-dir', join(dir, 'cdi')]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /--cdi-dir needs --dra/);
    assert.equal(existsSync(join(dir, 'x.sock')), false);
  });
});
