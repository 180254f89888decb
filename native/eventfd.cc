// eventfd(2) and its 8-byte counter reads and writes (the interrupt path of VFIO).
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace vfio_vgpu {

static Napi::Value Eventfd(const Napi::CallbackInfo& info) {
  uint32_t initval = Uint32Arg(info, 0, "initval");
  uint32_t flags = BitsArg(info, 1, "flags");
  int fd = eventfd(initval, static_cast<int>(flags));
  if (fd < 0) ThrowErrno(info.Env(), errno, "eventfd");
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  uint64_t value = 0;
  ssize_t n;
  do n = read(fd, &value, sizeof value);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "read");
  if (n != sizeof value) ThrowErrno(info.Env(), EINVAL, "read");  // not an eventfd
  return Napi::BigInt::New(info.Env(), value);
}

static Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  uint64_t value = Uint64Arg(info, 1, "value");
  ssize_t n;
  do n = write(fd, &value, sizeof value);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "write");
  if (n != sizeof value) ThrowErrno(info.Env(), EINVAL, "write");
  return info.Env().Undefined();
}

void InitEventfd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New(env, Eventfd, "eventfd"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead, "eventfdRead"));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite, "eventfdWrite"));
}

}  // namespace vfio_vgpu
