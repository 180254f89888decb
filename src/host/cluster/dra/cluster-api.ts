// What the DRA driver asks of the API server, and its implementation with
// @kubernetes/client-node (1.4.x: the line that runs on Node 20) from a kubeconfig
// file or the in-cluster service account.
import { ApiException, CoreV1Api, KubeConfig, ResourceV1Api, type V1ResourceSlice } from '@kubernetes/client-node';
import type { ResourceSliceObject } from './slices.js';

/** The fields of a ResourceClaim the driver reads. */
export interface ClaimObject {
  metadata: { name: string; namespace: string; uid: string; annotations?: Record<string, string> };
  status?: {
    allocation?: {
      devices?: { results?: { request: string; driver: string; pool: string; device: string }[] };
    };
  };
}

export interface ClusterApi {
  listSlices(driver: string, node: string): Promise<ResourceSliceObject[]>;
  createSlice(slice: ResourceSliceObject): Promise<ResourceSliceObject>;
  replaceSlice(slice: ResourceSliceObject): Promise<ResourceSliceObject>;
  deleteSlice(name: string): Promise<void>;
  readClaim(namespace: string, name: string): Promise<ClaimObject>;
  /** The Node object's UID (the owner of the node's slices). */
  readNodeUid(name: string): Promise<string>;
}

/** An API error's HTTP status (404, 409...), or undefined for any other failure. */
export function httpStatusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export interface KubeConfigChoice {
  /** A kubeconfig file; else $KUBECONFIG, ~/.kube/config or the in-cluster service account. */
  kubeconfig?: string;
}

export function loadKubeConfig(choice: KubeConfigChoice = {}): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (choice.kubeconfig !== undefined) kc.loadFromFile(choice.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new Error(`cannot load the kubeconfig ${choice.kubeconfig ?? '(default)'}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes API server configured (give --kubeconfig, set KUBECONFIG, or run in a pod)');
  return kc;
}

export function kubeClusterApi(kc: KubeConfig): ClusterApi {
  const api = kc.makeApiClient(ResourceV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  return {
    async listSlices(driver, node) {
      const list = await api.listResourceSlice({ fieldSelector: `spec.driver=${driver},spec.nodeName=${node}` });
      return plain<ResourceSliceObject[]>(list.items);
    },
    async createSlice(slice) {
      return plain(await api.createResourceSlice({ body: slice as unknown as V1ResourceSlice }));
    },
    async replaceSlice(slice) {
      return plain(await api.replaceResourceSlice({ name: slice.metadata.name, body: slice as unknown as V1ResourceSlice }));
    },
    async deleteSlice(name) {
      await api.deleteResourceSlice({ name });
    },
    async readClaim(namespace, name) {
      return plain(await api.readNamespacedResourceClaim({ namespace, name }));
    },
    async readNodeUid(name) {
      const uid = (await core.readNode({ name })).metadata?.uid;
      if (!uid) throw new Error(`the Node ${name} has no UID`);
      return uid;
    },
  };
}
