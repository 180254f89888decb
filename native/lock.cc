// flock(2), non-blocking: the daemon's single-instance locks (a lock file beside its
// socket, its definitions folder). The kernel drops them when the process dies, so a
// killed daemon never leaves a lock that needs cleaning.
#include <errno.h>
#include <sys/file.h>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace vfio_vgpu {

// flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it.
static Napi::Value TryLockExclusive(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
  if (r < 0) ThrowErrno(info.Env(), errno, "flock");
  return Napi::Boolean::New(info.Env(), true);
}

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("tryLockExclusive", Napi::Function::New(env, TryLockExclusive, "tryLockExclusive"));
}

}  // namespace vfio_vgpu
