// vfio-vgpu's public API: the fd layer (real or mock kernel), the VFIO client, the uapi.
export * from './sys/index.js';
export * from './vfio/index.js';
export * as uapi from './uapi/index.js';
