// Argument checks shared by every export: each returns the converted value or throws a
// TypeError naming the argument, so no wrong type ever reaches a system call.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vfio_vgpu {

struct View {
  void* data;
  size_t length;
};

// A file descriptor: an integer Number in the int range (negative values reach the
// kernel, which answers EBADF).
int FdArg(const Napi::CallbackInfo& info, size_t index, const char* name);

// An integer Number in [INT32_MIN, UINT32_MAX], as the C int/unsigned bits (flags, prot).
uint32_t BitsArg(const Napi::CallbackInfo& info, size_t index, const char* name);

// An integer Number in [0, UINT32_MAX].
uint32_t Uint32Arg(const Napi::CallbackInfo& info, size_t index, const char* name);

// An integer Number in [min, max] (a backlog, a timeout, a count).
int IntArg(const Napi::CallbackInfo& info, size_t index, const char* name, int min, int max);

// A non-negative safe-integer Number (a length in bytes).
size_t LengthArg(const Napi::CallbackInfo& info, size_t index, const char* name);

// A BigInt (or safe-integer Number) in [0, INT64_MAX]: a file offset.
int64_t OffsetArg(const Napi::CallbackInfo& info, size_t index, const char* name);

// A BigInt (or safe-integer Number) in [0, UINT64_MAX].
uint64_t Uint64Arg(const Napi::CallbackInfo& info, size_t index, const char* name);

// A Buffer, TypedArray or DataView: its first byte (after byteOffset) and byte length.
View ViewArg(const Napi::CallbackInfo& info, size_t index, const char* name);

// Bytes per element of a TypedArray type.
size_t TypedArrayElementSize(napi_typedarray_type type);

// The same for a raw napi_value; false when it is not an ArrayBufferView.
bool GetView(napi_env env, napi_value value, View* view);

// A string without NUL bytes (it becomes a C string).
std::string StringArg(const Napi::CallbackInfo& info, size_t index, const char* name);

// Whether a double is an integer within [min, max].
inline bool IsIntegerIn(double value, double min, double max) {
  return value >= min && value <= max && static_cast<double>(static_cast<int64_t>(value)) == value;
}

}  // namespace vfio_vgpu
