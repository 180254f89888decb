// open(2), close(2), dup(2) (as F_DUPFD_CLOEXEC), pread(2), pwrite(2), read(2), write(2),
// lseek(2) (SEEK_DATA / SEEK_HOLE find what of a sparse memfd was ever written).
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace vfio_vgpu {

static Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "path");
  uint32_t flags = BitsArg(info, 1, "flags");
  uint32_t mode = info[2].IsUndefined() ? 0 : BitsArg(info, 2, "mode");
  int fd;
  do fd = open(path.c_str(), static_cast<int>(flags), static_cast<mode_t>(mode));
  while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open");
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  // No retry on EINTR: Linux has already released the fd by then.
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// A new fd for the same open file, close-on-exec like every fd the addon makes: the
// mock kernel holds one as its reference to an eventfd the user may close.
static Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ThrowErrno(info.Env(), errno, "dup");
  return Napi::Number::New(info.Env(), copy);
}

static Napi::Value Pread(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  View buf = ViewArg(info, 1, "buf");
  int64_t offset = OffsetArg(info, 2, "offset");
  ssize_t n;
  do n = pread(fd, buf.data, buf.length, static_cast<off_t>(offset));
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "pread");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

static Napi::Value Pwrite(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  View buf = ViewArg(info, 1, "buf");
  int64_t offset = OffsetArg(info, 2, "offset");
  ssize_t n;
  do n = pwrite(fd, buf.data, buf.length, static_cast<off_t>(offset));
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "pwrite");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// read(2) and write(2) at the file position: stream files (a migration data fd) have no
// offsets, and pread on them is ESPIPE.
static Napi::Value Read(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  View buf = ViewArg(info, 1, "buf");
  ssize_t n;
  do n = read(fd, buf.data, buf.length);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "read");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

static Napi::Value Write(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  View buf = ViewArg(info, 1, "buf");
  ssize_t n;
  do n = write(fd, buf.data, buf.length);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "write");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

static Napi::Value Lseek(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int64_t offset = OffsetArg(info, 1, "offset");
  if (info.Length() < 3 || !info[2].IsNumber()) {
    Napi::TypeError::New(info.Env(), "whence must be a number").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  int whence = info[2].As<Napi::Number>().Int32Value();
  off_t at = lseek(fd, static_cast<off_t>(offset), whence);
  if (at < 0) ThrowErrno(info.Env(), errno, "lseek");
  return Napi::BigInt::New(info.Env(), static_cast<int64_t>(at));
}

void InitFd(Napi::Env env, Napi::Object exports) {
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("lseek", Napi::Function::New(env, Lseek, "lseek"));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("pread", Napi::Function::New(env, Pread, "pread"));
  exports.Set("pwrite", Napi::Function::New(env, Pwrite, "pwrite"));
}

}  // namespace vfio_vgpu
