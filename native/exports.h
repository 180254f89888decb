// Each source file adds its own functions to the addon's exports object.
#pragma once

#include <napi.h>

namespace vfio_vgpu {

void InitFd(Napi::Env env, Napi::Object exports);        // open close dup pread pwrite
void InitIoctl(Napi::Env env, Napi::Object exports);     // ioctl
void InitMemory(Napi::Env env, Napi::Object exports);    // mmap munmap addressOf memfdCreate ftruncate pageSize
void InitEventfd(Napi::Env env, Napi::Object exports);   // eventfd eventfdRead eventfdWrite
void InitWatch(Napi::Env env, Napi::Object exports);     // watch
void InitSocket(Napi::Env env, Napi::Object exports);    // socket socketpair bind listen accept connect shutdown sendmsg recvmsg poll peerCredentials
void InitConstants(Napi::Env env, Napi::Object exports); // constants
void InitVfioTable(Napi::Env env, Napi::Object exports); // vfio
void InitLock(Napi::Env env, Napi::Object exports);      // tryLockExclusive

}  // namespace vfio_vgpu
