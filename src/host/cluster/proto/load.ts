// Loads the kubelet's protocol definitions (the .proto files beside this module's
// source) for @grpc/grpc-js. The files are found from the package root, so this works
// from dist/ in the repository and from an installed package alike (tsc does not copy
// .proto files into dist/).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync, type Options } from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';

/** Field names as the .proto files spell them (the wire's names), proto3 defaults filled in. */
const LOAD_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: true, arrays: true, objects: true, oneofs: true };

/** The folder holding the .proto files: <package root>/src/host/cluster/proto. */
export function protoDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'vfio-vgpu') return join(dir, 'src', 'host', 'cluster', 'proto');
      } catch { /* not ours: keep looking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the vfio-vgpu package root (its package.json) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const cache = new Map<string, GrpcObject>();

function load(file: string): GrpcObject {
  let loaded = cache.get(file);
  if (!loaded) {
    loaded = loadPackageDefinition(loadSync(join(protoDirectory(), file), LOAD_OPTIONS));
    cache.set(file, loaded);
  }
  return loaded;
}

/** A service's constructor (its `.service` is the definition a server adds) at a dotted path. */
function serviceAt(root: GrpcObject, path: string): ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`no gRPC service ${path} in the loaded definitions`);
  return node as ServiceClientConstructor;
}

/** The device plugin API v1beta1: Registration (the kubelet's) and DevicePlugin (ours). */
export function devicePluginApi(): { Registration: ServiceClientConstructor; DevicePlugin: ServiceClientConstructor } {
  const root = load('deviceplugin-v1beta1.proto');
  return { Registration: serviceAt(root, 'v1beta1.Registration'), DevicePlugin: serviceAt(root, 'v1beta1.DevicePlugin') };
}

/** The plugin watcher's Registration service (ours, called by the kubelet). */
export function pluginRegistrationApi(): { Registration: ServiceClientConstructor } {
  return { Registration: serviceAt(load('pluginregistration-v1.proto'), 'pluginregistration.Registration') };
}

export type DraVersion = 'v1' | 'v1beta1';

/** The DRAPlugin service of one version (same messages, another package on the wire). */
export function draApi(version: DraVersion): { DRAPlugin: ServiceClientConstructor } {
  return { DRAPlugin: serviceAt(load(`dra-${version}.proto`), `k8s.io.kubelet.pkg.apis.dra.${version}.DRAPlugin`) };
}

export type { ServiceDefinition };
