#include "errors.h"

#include <string.h>
#include <uv.h>

#include <string>

namespace vfio_vgpu {

const char* ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  // glibc knows every errno; libuv only the ones it uses itself.
  if (const char* name = strerrorname_np(err)) return name;
#endif
  return uv_err_name(-err);
}

static void SetProperty(napi_env env, napi_value object, const char* key, napi_value value) {
  napi_set_named_property(env, object, key, value);
}

napi_value MakeErrnoError(napi_env env, int err, const char* syscall) {
  const char* code = ErrnoName(err);
  std::string message = std::string(syscall) + " failed: " + code;
  napi_value js_code, js_message, js_errno, js_syscall, error;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code);
  napi_create_string_utf8(env, message.c_str(), message.size(), &js_message);
  napi_create_int32(env, err, &js_errno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall);
  napi_create_error(env, nullptr, js_message, &error);
  SetProperty(env, error, "code", js_code);
  SetProperty(env, error, "errno", js_errno);
  SetProperty(env, error, "syscall", js_syscall);
  return error;
}

void ThrowErrno(napi_env env, int err, const char* syscall) {
  throw Napi::Error(env, MakeErrnoError(env, err, syscall));
}

void SetErrnoPending(napi_env env, int err, const char* syscall) {
  napi_throw(env, MakeErrnoError(env, err, syscall));
}

static napi_value MakeTypeError(napi_env env, const char* message) {
  napi_value js_code, js_message, error;
  napi_create_string_utf8(env, "ERR_INVALID_ARG_TYPE", NAPI_AUTO_LENGTH, &js_code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &js_message);
  napi_create_type_error(env, js_code, js_message, &error);
  return error;
}

void ThrowTypeError(napi_env env, const char* message) {
  throw Napi::Error(env, MakeTypeError(env, message));
}

void SetTypeErrorPending(napi_env env, const char* message) {
  napi_throw(env, MakeTypeError(env, message));
}

}  // namespace vfio_vgpu
