// ioctl(2): the hot path (every VFIO operation, every benchmarked call), so it is raw
// N-API with no C++ wrappers, no exceptions and no allocation on success.
//
// A buffer argument is passed by pointer; the kernel reads and writes as many bytes as
// the request means. Requests that encode a size (_IOR/_IOW/_IOWR) are checked against
// the buffer so the kernel never writes past it; VFIO's requests encode none (their
// structs carry argsz), so sizing those buffers is the caller's job.
#include <errno.h>
#include <sys/ioctl.h>

#include <cmath>
#include <cstdint>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace vfio_vgpu {

static constexpr double kTwoTo64 = 18446744073709551616.0;

// A Number argument as the C unsigned long the kernel receives: negative ints
// sign-extend (ioctl(fd, req, -1) passes ~0UL), anything up to 2^64 - 1 passes as is.
static bool NumberToUlong(double d, unsigned long* out) {
  if (!(d >= -kTwoTo64 / 2 && d < kTwoTo64) || d != std::trunc(d)) return false;  // NaN fails too
  *out = d < 0 ? static_cast<unsigned long>(static_cast<int64_t>(d)) : static_cast<unsigned long>(static_cast<uint64_t>(d));
  return true;
}

// The argument as passed, and for a buffer its byte length (SIZE_MAX for a number).
struct IoctlArg {
  unsigned long value = 0;
  size_t bytes = SIZE_MAX;
};

static bool ArgFromTypedArray(napi_env env, napi_value value, bool need_size, IoctlArg* arg) {
  void* data = nullptr;
  // Fails (napi_invalid_arg) for anything but a TypedArray; data is already past
  // byteOffset. Asking for the element type and count too costs a third more, so
  // only requests that encode a size ask (VFIO's and FIONREAD do not).
  if (napi_get_typedarray_info(env, value, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok) return false;
  arg->value = reinterpret_cast<unsigned long>(data);
  if (need_size) {
    napi_typedarray_type type;
    size_t length = 0;
    napi_get_typedarray_info(env, value, &type, &length, nullptr, nullptr, nullptr);
    arg->bytes = length * TypedArrayElementSize(type);
  }
  return true;
}

// The rarer forms: a Number by value, undefined as 0, a DataView by pointer.
static bool ArgFromOther(napi_env env, napi_value value, IoctlArg* arg) {
  double d;
  if (napi_get_value_double(env, value, &d) == napi_ok) return NumberToUlong(d, &arg->value);
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined) return true;
  View view{nullptr, 0};
  if (type != napi_object || !GetView(env, value, &view)) return false;
  arg->value = reinterpret_cast<unsigned long>(view.data);
  arg->bytes = view.length;
  return true;
}

static napi_value Ioctl(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);

  double fd_d = 0, request_d = 0;
  if (argc < 1 || napi_get_value_double(env, argv[0], &fd_d) != napi_ok || !IsIntegerIn(fd_d, INT32_MIN, INT32_MAX)) {
    SetTypeErrorPending(env, "The \"fd\" argument must be an integer file descriptor");
    return nullptr;
  }
  if (argc < 2 || napi_get_value_double(env, argv[1], &request_d) != napi_ok ||
      !IsIntegerIn(request_d, INT32_MIN, UINT32_MAX)) {
    SetTypeErrorPending(env, "The \"request\" argument must be a 32-bit integer");
    return nullptr;
  }
  // Requests with the direction bit set are negative when built with JS bit operators.
  unsigned long request = static_cast<uint32_t>(static_cast<int64_t>(request_d));

  // Cheapest test first: a TypedArray (every VFIO struct) costs one N-API call.
  bool encodes_size = _IOC_DIR(request) != _IOC_NONE;
  IoctlArg arg;
  if (argc >= 3 && !ArgFromTypedArray(env, argv[2], encodes_size, &arg) && !ArgFromOther(env, argv[2], &arg)) {
    SetTypeErrorPending(env, "The \"arg\" argument must be an integer or an ArrayBufferView");
    return nullptr;
  }
  if (encodes_size && arg.bytes < _IOC_SIZE(request)) {
    SetTypeErrorPending(env, "The \"arg\" argument is smaller than the size the request encodes");
    return nullptr;
  }

  int result = ioctl(static_cast<int>(fd_d), request, arg.value);
  if (result < 0) {
    SetErrnoPending(env, errno, "ioctl");
    return nullptr;
  }
  // 0, what nearly every ioctl returns, goes back as undefined: making a Number costs
  // ~5-6 ns of a ~310 ns call, and src/addon/addon.ts's wrapper turns undefined back
  // into 0, so callers still get the int.
  if (result == 0) return nullptr;
  napi_value js_result;
  napi_create_int32(env, result, &js_result);
  return js_result;
}

void InitIoctl(Napi::Env env, Napi::Object exports) {
  napi_value fn;
  napi_create_function(env, "ioctl", NAPI_AUTO_LENGTH, Ioctl, nullptr, &fn);
  exports.Set("ioctl", Napi::Value(env, fn));
}

}  // namespace vfio_vgpu
