#include "args.h"

#include <cstdint>
#include <string>

#include "errors.h"

namespace vfio_vgpu {

static constexpr double kMaxSafeInteger = 9007199254740991.0;

[[noreturn]] static void Bad(const Napi::CallbackInfo& info, const char* name, const char* expected) {
  std::string message = std::string("The \"") + name + "\" argument must be " + expected;
  ThrowTypeError(info.Env(), message.c_str());
}

int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) Bad(info, name, "an integer file descriptor");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!IsIntegerIn(d, INT32_MIN, INT32_MAX)) Bad(info, name, "an integer file descriptor");
  return static_cast<int>(d);
}

uint32_t BitsArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) Bad(info, name, "a 32-bit integer");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!IsIntegerIn(d, INT32_MIN, UINT32_MAX)) Bad(info, name, "a 32-bit integer");
  return static_cast<uint32_t>(static_cast<int64_t>(d));
}

uint32_t Uint32Arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) Bad(info, name, "an unsigned 32-bit integer");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!IsIntegerIn(d, 0, UINT32_MAX)) Bad(info, name, "an unsigned 32-bit integer");
  return static_cast<uint32_t>(d);
}

int IntArg(const Napi::CallbackInfo& info, size_t index, const char* name, int min, int max) {
  Napi::Value value = info[index];
  if (value.IsNumber() && IsIntegerIn(value.As<Napi::Number>().DoubleValue(), min, max)) {
    return static_cast<int>(value.As<Napi::Number>().DoubleValue());
  }
  std::string expected = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  Bad(info, name, expected.c_str());
}

size_t LengthArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) Bad(info, name, "a non-negative integer");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!IsIntegerIn(d, 0, kMaxSafeInteger)) Bad(info, name, "a non-negative integer");
  return static_cast<size_t>(d);
}

// A BigInt or Number in [0, max]; `what` names the expected value for the message.
static uint64_t UnsignedArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                            uint64_t max, const char* what) {
  Napi::Value value = info[index];
  if (value.IsBigInt()) {
    bool lossless = false;
    uint64_t result = value.As<Napi::BigInt>().Uint64Value(&lossless);
    // Uint64Value of a negative BigInt wraps and reports lossless = false.
    if (!lossless || result > max) Bad(info, name, what);
    return result;
  }
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (!IsIntegerIn(d, 0, kMaxSafeInteger)) Bad(info, name, what);
    return static_cast<uint64_t>(d);
  }
  Bad(info, name, what);
}

int64_t OffsetArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<int64_t>(UnsignedArg(info, index, name, INT64_MAX, "a bigint offset in [0, 2^63)"));
}

uint64_t Uint64Arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return UnsignedArg(info, index, name, UINT64_MAX, "a bigint in [0, 2^64)");
}

size_t TypedArrayElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
    default: return 1;
  }
}

bool GetView(napi_env env, napi_value value, View* view) {
  bool is = false;
  if (napi_is_typedarray(env, value, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, value, &type, &count, &data, nullptr, nullptr) != napi_ok) return false;
    *view = View{data, count * TypedArrayElementSize(type)};
    return true;
  }
  if (napi_is_dataview(env, value, &is) == napi_ok && is) {
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_dataview_info(env, value, &length, &data, nullptr, nullptr) != napi_ok) return false;
    *view = View{data, length};
    return true;
  }
  return false;
}

View ViewArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  View view{nullptr, 0};
  if (!GetView(info.Env(), info[index], &view)) Bad(info, name, "a Buffer, TypedArray or DataView");
  return view;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsString()) Bad(info, name, "a string");
  std::string result = value.As<Napi::String>().Utf8Value();
  // A C string ends at the first NUL: refuse rather than silently use a prefix.
  if (result.find('\0') != std::string::npos) Bad(info, name, "a string without null bytes");
  return result;
}

}  // namespace vfio_vgpu
