// mmap(2)/munmap(2) as external ArrayBuffers, addressOf, memfd_create(2), ftruncate(2).
//
// A mapping's ArrayBuffer points straight at the mapped pages (no copy). munmap()
// detaches it first, so JS can never touch unmapped memory; a mapping that is garbage
// collected without munmap() is unmapped by the buffer's finalizer.
//
// Every live mapping has an id that is never reused; the finalizer's hint is that id,
// not a pointer or an address. Whoever unmaps first (munmap(), the finalizer, or the
// error path of mmap()) removes the id from the table under the lock, so nothing is
// unmapped twice, a stale finalizer cannot unmap a newer mapping at the same address,
// and munmap() never unmaps memory that is not in the table.
//
// A mapping longer than buffer.constants.MAX_LENGTH (4 GiB on Node 20) cannot be an
// ArrayBuffer: mmap() unmaps it again and throws Node's ERR_BUFFER_TOO_LARGE, so large
// BARs are mapped in parts.
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

struct LiveMapping {
  void* address;
  size_t length;
};

// Mappings are process-wide, so is the table (worker threads share it).
std::mutex table_mutex;
uint64_t next_id = 1;
std::unordered_map<uint64_t, LiveMapping> mappings_by_id;
std::unordered_map<uintptr_t, uint64_t> id_by_address;

// Marks ArrayBuffers made by mmap() so munmap() can refuse any other buffer.
constexpr napi_type_tag kMappingTag = {0x7666696f76677075ULL, 0x6d6d61702d627566ULL};

uint64_t Remember(void* address, size_t length) {
  std::lock_guard<std::mutex> lock(table_mutex);
  uint64_t id = next_id++;
  mappings_by_id[id] = LiveMapping{address, length};
  id_by_address[reinterpret_cast<uintptr_t>(address)] = id;
  return id;
}

// Unmaps mapping `id` if it is still live; false if someone already did. Holds the lock.
bool UnmapLocked(uint64_t id, int* error) {
  auto it = mappings_by_id.find(id);
  if (it == mappings_by_id.end()) return false;
  if (munmap(it->second.address, it->second.length) < 0) {
    *error = errno;
    return true;
  }
  id_by_address.erase(reinterpret_cast<uintptr_t>(it->second.address));
  mappings_by_id.erase(it);
  *error = 0;
  return true;
}

void Forget(uint64_t id) {
  std::lock_guard<std::mutex> lock(table_mutex);
  int error;
  UnmapLocked(id, &error);
}

void FinalizeMapping(napi_env, void*, void* hint) {
  Forget(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(hint)));
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

  uint64_t id = Remember(address, length);
  void* hint = reinterpret_cast<void*>(static_cast<uintptr_t>(id));
  napi_value buffer = nullptr;
  // On failure Node may or may not have called the finalizer already (it does when the
  // length exceeds buffer.constants.MAX_LENGTH); Forget() is right either way.
  if (napi_create_external_arraybuffer(env, address, length, FinalizeMapping, hint, &buffer) != napi_ok) {
    Forget(id);
    ThrowPending(env, "mmap: the mapping cannot be wrapped in an ArrayBuffer");
  }
  if (napi_type_tag_object(env, buffer, &kMappingTag) != napi_ok) {
    napi_detach_arraybuffer(env, buffer);
    Forget(id);
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
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    auto it = id_by_address.find(reinterpret_cast<uintptr_t>(data));
    if (it == id_by_address.end()) return info.Env().Undefined();
    id = it->second;
  }
  // Detach before unmapping: if detaching failed, JS would keep a view of freed pages.
  // (Not under the lock: a finalizer run by the detach would take it.)
  if (napi_detach_arraybuffer(env, buffer) != napi_ok) ThrowErrno(env, EINVAL, "munmap");
  int error = 0;
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    UnmapLocked(id, &error);
  }
  if (error != 0) ThrowErrno(env, error, "munmap");
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
