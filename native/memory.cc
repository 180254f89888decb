// mmap(2)/munmap(2) as external ArrayBuffers, addressOf, memfd_create(2), ftruncate(2).
//
// A mapping's ArrayBuffer points straight at the mapped pages (no copy). munmap()
// detaches it first, so JS can never touch unmapped memory; a mapping that is garbage
// collected without munmap() is unmapped by the buffer's finalizer. Every live mapping
// is in a table keyed by address, and each record says whether it is still mapped, so
// neither path unmaps twice and munmap() never unmaps memory that is not ours.
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace vfio_vgpu {

namespace {

struct MappingRecord {
  void* address;
  size_t length;
  bool live;  // false once munmap() unmapped it; the finalizer then only frees the record
};

// Mappings are process-wide, so is the table (worker threads share it).
std::mutex table_mutex;
std::unordered_map<uintptr_t, MappingRecord*> live_mappings;

// Marks ArrayBuffers made by mmap() so munmap() can refuse any other buffer.
constexpr napi_type_tag kMappingTag = {0x7666696f76677075ULL, 0x6d6d61702d627566ULL};

void FinalizeMapping(napi_env, void*, void* hint) {
  auto* record = static_cast<MappingRecord*>(hint);
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    if (record->live) {
      munmap(record->address, record->length);
      live_mappings.erase(reinterpret_cast<uintptr_t>(record->address));
      record->live = false;
    }
  }
  delete record;
}

// Unmaps a mapping no buffer will ever reach.
void ForgetMapping(MappingRecord* record) {
  std::lock_guard<std::mutex> lock(table_mutex);
  munmap(record->address, record->length);
  live_mappings.erase(reinterpret_cast<uintptr_t>(record->address));
  record->live = false;
}

// Rethrows the exception N-API left pending, or a plain Error with `message`.
[[noreturn]] void ThrowPending(napi_env env, const char* message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) throw Napi::Error::New(env);
  throw Napi::Error::New(env, message);
}

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int64_t offset = OffsetArg(info, 1, "offset");
  size_t length = LengthArg(info, 2, "length");
  uint32_t prot = BitsArg(info, 3, "prot");
  uint32_t flags = BitsArg(info, 4, "flags");

  void* address = mmap(nullptr, length, static_cast<int>(prot), static_cast<int>(flags), fd, static_cast<off_t>(offset));
  if (address == MAP_FAILED) ThrowErrno(env, errno, "mmap");

  auto* record = new MappingRecord{address, length, true};
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    live_mappings[reinterpret_cast<uintptr_t>(address)] = record;
  }
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, address, length, FinalizeMapping, record, &buffer) != napi_ok) {
    ForgetMapping(record);
    delete record;  // no buffer, so no finalizer will
    ThrowPending(env, "mmap: the mapping cannot be wrapped in an ArrayBuffer");
  }
  if (napi_type_tag_object(env, buffer, &kMappingTag) != napi_ok) {
    napi_detach_arraybuffer(env, buffer);
    ForgetMapping(record);  // the buffer's finalizer will free the record
    ThrowPending(env, "mmap: the mapping cannot be tagged");
  }
  return Napi::Value(env, buffer);
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  napi_value buffer = info[0];
  bool is_arraybuffer = false, ours = false, detached = false;
  napi_is_arraybuffer(env, buffer, &is_arraybuffer);
  if (is_arraybuffer) napi_check_object_type_tag(env, buffer, &kMappingTag, &ours);
  if (!ours) ThrowTypeError(env, "The \"buffer\" argument must be an ArrayBuffer returned by mmap()");

  napi_is_detached_arraybuffer(env, buffer, &detached);
  if (detached) return info.Env().Undefined();  // already unmapped (or transferred away)

  void* data = nullptr;
  napi_get_arraybuffer_info(env, buffer, &data, nullptr);
  std::lock_guard<std::mutex> lock(table_mutex);
  auto it = live_mappings.find(reinterpret_cast<uintptr_t>(data));
  if (it == live_mappings.end()) return info.Env().Undefined();
  MappingRecord* record = it->second;
  // Detach before unmapping: if detaching failed, JS would keep a view of freed pages.
  if (napi_detach_arraybuffer(env, buffer) != napi_ok) ThrowErrno(env, EINVAL, "munmap");
  if (munmap(record->address, record->length) < 0) ThrowErrno(env, errno, "munmap");
  record->live = false;
  live_mappings.erase(it);
  return info.Env().Undefined();
}

Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  bool is_arraybuffer = false;
  void* data = nullptr;
  napi_is_arraybuffer(env, info[0], &is_arraybuffer);
  if (is_arraybuffer) {
    napi_get_arraybuffer_info(env, info[0], &data, nullptr);
  } else {
    View view{nullptr, 0};
    if (!GetView(env, info[0], &view)) {
      ThrowTypeError(env, "The \"target\" argument must be an ArrayBuffer, Buffer, TypedArray or DataView");
    }
    data = view.data;
  }
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  uint32_t flags = BitsArg(info, 1, "flags");
  int fd = memfd_create(name.c_str(), flags);
  if (fd < 0) ThrowErrno(info.Env(), errno, "memfd_create");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int64_t length = OffsetArg(info, 1, "length");
  int result;
  do result = ftruncate(fd, static_cast<off_t>(length));
  while (result < 0 && errno == EINTR);
  if (result < 0) ThrowErrno(info.Env(), errno, "ftruncate");
  return info.Env().Undefined();
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf, "addressOf"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
}

}  // namespace vfio_vgpu
