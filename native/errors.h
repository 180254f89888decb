// Errors thrown to JavaScript, shaped like src/addon/errors.ts: a system-call failure is an
// Error with code ('EINVAL'), errno (22) and syscall ('ioctl'); a wrong argument is a
// TypeError with code 'ERR_INVALID_ARG_TYPE', like Node's own.
#pragma once

#include <napi.h>

namespace vfio_vgpu {

// The errno's symbolic name ("EINVAL"), or "Unknown system error N".
const char* ErrnoName(int err);

// Builds the Error object for a failed system call (errno > 0).
napi_value MakeErrnoError(napi_env env, int err, const char* syscall);

// Throws it as a C++ exception (node-addon-api paths).
[[noreturn]] void ThrowErrno(napi_env env, int err, const char* syscall);

// Sets it as the pending JS exception (raw N-API paths); the caller returns nullptr.
void SetErrnoPending(napi_env env, int err, const char* syscall);

// TypeError for a bad argument, C++-exception and pending-exception flavours.
[[noreturn]] void ThrowTypeError(napi_env env, const char* message);
void SetTypeErrorPending(napi_env env, const char* message);

}  // namespace vfio_vgpu
