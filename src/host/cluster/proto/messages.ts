// The kubelet API messages as @grpc/proto-loader decodes them (proto.load.ts: field
// names as on the wire, defaults filled in), and as we build them for the encoder.

// ---- deviceplugin v1beta1 ----
export interface DevicePluginOptions { pre_start_required: boolean; get_preferred_allocation_available: boolean }
export interface RegisterRequest { version: string; endpoint: string; resource_name: string; options: DevicePluginOptions | null }
export type Empty = Record<string, never>;
export interface NumaNode { ID: number }
export interface TopologyInfo { nodes: NumaNode[] }
export interface PluginDevice { ID: string; health: 'Healthy' | 'Unhealthy'; topology?: TopologyInfo | null }
export interface ListAndWatchResponse { devices: PluginDevice[] }
export interface ContainerPreferredAllocationRequest { available_deviceIDs: string[]; must_include_deviceIDs: string[]; allocation_size: number }
export interface PreferredAllocationRequest { container_requests: ContainerPreferredAllocationRequest[] }
export interface PreferredAllocationResponse { container_responses: { deviceIDs: string[] }[] }
export interface AllocateRequest { container_requests: { devices_ids: string[] }[] }
export interface Mount { container_path: string; host_path: string; read_only: boolean }
export interface DeviceSpec { container_path: string; host_path: string; permissions: string }
export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Mount[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdi_devices: { name: string }[];
}
export interface AllocateResponse { container_responses: ContainerAllocateResponse[] }
export interface PreStartContainerRequest { devices_ids: string[] }

// ---- pluginregistration v1 ----
export interface PluginInfo { type: string; name: string; endpoint: string; supported_versions: string[] }
export interface RegistrationStatus { plugin_registered: boolean; error: string }

// ---- dra v1 / v1beta1 ----
export interface DraClaim { namespace: string; uid: string; name: string }
export interface DraDevice { request_names: string[]; pool_name: string; device_name: string; cdi_device_ids: string[] }
export interface NodePrepareResourceResponse { devices: DraDevice[]; error: string }
export interface NodePrepareResourcesRequest { claims: DraClaim[] }
export interface NodePrepareResourcesResponse { claims: Record<string, NodePrepareResourceResponse> }
export interface NodeUnprepareResourcesRequest { claims: DraClaim[] }
export interface NodeUnprepareResourcesResponse { claims: Record<string, { error: string }> }
