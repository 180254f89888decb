// The C library's flag values (O_*, PROT_*, MAP_*, EFD_*, MFD_*, SHUT_*, POLL*, ...), so TypeScript
// never hard-codes a number that differs between architectures.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exports.h"

namespace vfio_vgpu {

void InitConstants(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
#define CONSTANT(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
  CONSTANT(O_RDONLY);
  CONSTANT(O_WRONLY);
  CONSTANT(O_RDWR);
  CONSTANT(O_CREAT);
  CONSTANT(O_EXCL);
  CONSTANT(O_TRUNC);
  CONSTANT(O_APPEND);
  CONSTANT(O_CLOEXEC);
  CONSTANT(O_NONBLOCK);
  CONSTANT(O_SYNC);
  CONSTANT(O_DIRECTORY);
  CONSTANT(O_NOFOLLOW);
  CONSTANT(PROT_NONE);
  CONSTANT(PROT_READ);
  CONSTANT(PROT_WRITE);
  CONSTANT(PROT_EXEC);
  CONSTANT(MAP_SHARED);
  CONSTANT(MAP_PRIVATE);
  CONSTANT(MAP_ANONYMOUS);
  CONSTANT(MAP_FIXED);
  CONSTANT(MAP_NORESERVE);
  CONSTANT(MAP_POPULATE);
  CONSTANT(MAP_LOCKED);
  CONSTANT(EFD_CLOEXEC);
  CONSTANT(EFD_NONBLOCK);
  CONSTANT(EFD_SEMAPHORE);
  CONSTANT(SEEK_DATA);
  CONSTANT(SEEK_HOLE);
  CONSTANT(MFD_CLOEXEC);
  CONSTANT(MFD_ALLOW_SEALING);
  CONSTANT(FIONREAD);
  CONSTANT(FIONBIO);
  CONSTANT(FIOCLEX);
  CONSTANT(FIONCLEX);
  CONSTANT(F_GETFD);
  CONSTANT(F_SETFD);
  CONSTANT(F_GETFL);
  CONSTANT(F_SETFL);
  CONSTANT(FD_CLOEXEC);
  CONSTANT(SHUT_RD);
  CONSTANT(SHUT_WR);
  CONSTANT(SHUT_RDWR);
  CONSTANT(POLLIN);
  CONSTANT(POLLOUT);
  CONSTANT(POLLERR);
  CONSTANT(POLLHUP);
  CONSTANT(POLLNVAL);
#undef CONSTANT
  exports.Set("constants", c);
}

}  // namespace vfio_vgpu
