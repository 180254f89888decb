// The node agents `vgpu serve` runs for a cluster, over the daemon's host: the KubeVirt
// device plugin and the DRA driver, each when asked for, sharing one inventory watch.
// They are closed before the host is (Host.addCloser), so the DRA driver's slices are
// removed and the plugins' sockets are gone before the vGPUs are released.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../host.js';
import { makeDirectories } from '../atomic-write.js';
import { DevicePluginAgent, DEFAULT_DEVICE_PLUGIN_DIR } from './device-plugin/manager.js';
import { DraAgent, DEFAULT_CDI_DIR, DEFAULT_DRIVER, DEFAULT_REGISTRY_DIR, defaultPluginDir } from './dra/agent.js';
import { kubeClusterApi, loadKubeConfig } from './dra/cluster-api.js';
import { InventoryWatch } from './inventory.js';
import { DEFAULT_RESOURCE_DOMAIN, validateResourceDomain } from './names.js';

export const DEFAULT_STATE_DIR = '/var/lib/vfio-vgpu';

export interface ClusterOptions {
  devicePlugin?: { dir?: string; domain?: string; stateDir?: string };
  dra?: {
    driver?: string; node?: string; registryDir?: string; pluginDir?: string; cdiDir?: string;
    partitionable?: boolean; kubeconfig?: string; resyncMs?: number;
  };
  pollMs?: number;
}

export interface ClusterAgents {
  devicePlugin: DevicePluginAgent | undefined;
  dra: DraAgent | undefined;
  close(): Promise<void>;
}

const DRIVER_NAME = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;

/** The node name the DRA driver publishes for: told, else $NODE_NAME (set from the pod's spec.nodeName), else the host name. */
export function nodeName(given?: string, env: NodeJS.ProcessEnv = process.env): string {
  return given ?? env['NODE_NAME'] ?? hostname();
}

export async function startClusterAgents(host: Host, options: ClusterOptions, log: (line: string) => void): Promise<ClusterAgents> {
  const watch = new InventoryWatch(host, options.pollMs, (err) => log(`cluster inventory: ${err instanceof Error ? err.message : String(err)}`));
  await watch.start();
  let devicePlugin: DevicePluginAgent | undefined;
  let dra: DraAgent | undefined;
  const close = async (): Promise<void> => {
    watch.stop();
    await dra?.close();
    await devicePlugin?.close();
  };
  try {
    if (options.devicePlugin) {
      const o = options.devicePlugin;
      const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
      makeDirectories(stateDir, 0o755);
      devicePlugin = new DevicePluginAgent({
        dir: o.dir ?? DEFAULT_DEVICE_PLUGIN_DIR, domain: validateResourceDomain(o.domain ?? DEFAULT_RESOURCE_DOMAIN),
        allocationsFile: join(stateDir, 'device-plugin.json'), inventory: watch, holds: host.holds, log,
      });
      await devicePlugin.start();
      log(`device plugin: serving ${devicePlugin.resources().length} resources in ${o.dir ?? DEFAULT_DEVICE_PLUGIN_DIR}`);
    }
    if (options.dra) {
      const o = options.dra;
      const driver = o.driver ?? DEFAULT_DRIVER;
      if (!DRIVER_NAME.test(driver)) throw new Error(`DRA driver name ${JSON.stringify(driver)} must be a DNS subdomain with a dot, at most 63 characters`);
      const node = nodeName(o.node);
      const api = kubeClusterApi(loadKubeConfig(o.kubeconfig === undefined ? {} : { kubeconfig: o.kubeconfig }));
      dra = new DraAgent({
        driver, node, registryDir: o.registryDir ?? DEFAULT_REGISTRY_DIR, pluginDir: o.pluginDir ?? defaultPluginDir(driver),
        cdiDir: o.cdiDir ?? DEFAULT_CDI_DIR, partitionable: o.partitionable ?? false, api, host, inventory: watch, log,
        ...(o.resyncMs === undefined ? {} : { resyncMs: o.resyncMs }),
      });
      await dra.start();
      log(`DRA: driver ${driver} for node ${node}, registration at ${dra.registrationSocket}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  host.addCloser(close);
  return { devicePlugin, dra, close };
}
