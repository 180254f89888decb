// The addon's entry point: only system calls live here; VFIO policy is TypeScript's.
#include <napi.h>

#include "exports.h"

namespace vfio_vgpu {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitFd(env, exports);
  InitIoctl(env, exports);
  InitMemory(env, exports);
  InitEventfd(env, exports);
  InitWatch(env, exports);
  InitSocket(env, exports);
  InitConstants(env, exports);
  InitVfioTable(env, exports);
  InitLock(env, exports);
  return exports;
}

}  // namespace vfio_vgpu

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return vfio_vgpu::Init(env, exports);
}

NODE_API_MODULE(vfio_vgpu, InitAddon)
