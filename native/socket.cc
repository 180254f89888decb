// AF_UNIX stream sockets with fd passing (SCM_RIGHTS), the transport of vfio-user.
//
// Every socket made here is SOCK_NONBLOCK | SOCK_CLOEXEC, and every fd received is
// close-on-exec (MSG_CMSG_CLOEXEC). Sends and receives never block, even on a blocking
// fd from elsewhere (MSG_DONTWAIT), and a send to a closed peer is EPIPE, never SIGPIPE
// (MSG_NOSIGNAL). Until an fd is handed to JavaScript a guard owns it, so no error path
// (a failed syscall, a truncated control message, a failed allocation) leaves one open.
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "args.h"
#include "errors.h"
#include "exports.h"

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04  // Linux 6.5; older headers lack it
#endif

namespace vfio_vgpu {

namespace {

// The kernel's limit on fds in one SCM_RIGHTS message (SCM_MAX_FD, include/net/scm.h).
constexpr int kMaxFds = 253;
constexpr int kStreamType = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;

// Room for the largest SCM_RIGHTS message, aligned for cmsghdr.
union ControlBuffer {
  cmsghdr align;
  unsigned char bytes[CMSG_SPACE(sizeof(int) * kMaxFds)];
};

// Owns one fd until release(); closes it if an exception unwinds past it.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() { if (fd_ >= 0) close(fd_); }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }
  int release() { int fd = fd_; fd_ = -1; return fd; }

 private:
  int fd_;
};

// The fds one recvmsg() installed, owned until release(). Fixed capacity: the control
// buffer cannot hold more fds than it has ints, so adding never allocates.
class ReceivedFds {
 public:
  static constexpr int kCapacity = sizeof(ControlBuffer) / sizeof(int);
  ~ReceivedFds() { CloseAll(); }
  void Add(int fd) {
    if (count_ < kCapacity) fds_[count_++] = fd;
    else close(fd);  // cannot happen; never leak it if it does
  }
  int count() const { return count_; }
  int operator[](int i) const { return fds_[i]; }
  void CloseAll() {
    for (int i = 0; i < count_; i++) close(fds_[i]);
    count_ = 0;
  }
  void Release() { count_ = 0; }

 private:
  int fds_[kCapacity];
  int count_ = 0;
};

Napi::Value NewFd(Napi::Env env, int fd) { return Napi::Number::New(env, fd); }

// A pathname address. The path must fit sun_path with its NUL: ENAMETOOLONG rather
// than a silently shortened path. "" is ENOENT: Linux would read it as an abstract name.
socklen_t PathAddress(Napi::Env env, const std::string& path, const char* syscall, sockaddr_un* addr) {
  if (path.empty()) ThrowErrno(env, ENOENT, syscall);
  if (path.size() >= sizeof addr->sun_path) ThrowErrno(env, ENAMETOOLONG, syscall);
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

// The optional fds of sendmsg(): undefined (none) or an Array of at most kMaxFds integer
// fds, all checked before any syscall. Returns how many were written to `out`.
int FdsArg(const Napi::CallbackInfo& info, size_t index, int* out) {
  Napi::Value value = info[index];
  if (value.IsUndefined()) return 0;
  if (!value.IsArray()) ThrowTypeError(info.Env(), "The \"fds\" argument must be an array of file descriptors");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() > static_cast<uint32_t>(kMaxFds)) {
    ThrowTypeError(info.Env(), "The \"fds\" argument must be an array of at most 253 file descriptors");
  }
  int count = static_cast<int>(array.Length());
  for (int i = 0; i < count; i++) {
    Napi::Value fd = array.Get(static_cast<uint32_t>(i));
    if (!fd.IsNumber() || !IsIntegerIn(fd.As<Napi::Number>().DoubleValue(), INT32_MIN, INT32_MAX)) {
      ThrowTypeError(info.Env(), "The \"fds\" argument must be an array of integer file descriptors");
    }
    out[i] = static_cast<int>(fd.As<Napi::Number>().DoubleValue());
  }
  return count;
}

// Takes every fd out of the control messages: SCM_RIGHTS into `fds`, anything else
// that carries an fd (SCM_PIDFD) into `stray`, to be closed. Other messages are ignored.
void CollectFds(msghdr* msg, ReceivedFds* fds, ReceivedFds* stray) {
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET) continue;
    if (cmsg->cmsg_type != SCM_RIGHTS && cmsg->cmsg_type != SCM_PIDFD) continue;
    ReceivedFds* into = cmsg->cmsg_type == SCM_RIGHTS ? fds : stray;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(cmsg);
    for (size_t i = 0; i < count; i++) {
      int fd;
      std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
      into->Add(fd);
    }
  }
}

int64_t MonotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

Napi::Value Socket(const Napi::CallbackInfo& info) {
  OwnedFd fd(socket(AF_UNIX, kStreamType, 0));
  if (fd.get() < 0) ThrowErrno(info.Env(), errno, "socket");
  Napi::Value result = NewFd(info.Env(), fd.get());
  fd.release();
  return result;
}

Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, kStreamType, 0, sv) < 0) ThrowErrno(env, errno, "socketpair");
  OwnedFd first(sv[0]), second(sv[1]);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(static_cast<uint32_t>(0), NewFd(env, first.get()));
  pair.Set(static_cast<uint32_t>(1), NewFd(env, second.get()));
  first.release();
  second.release();
  return pair;
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  std::string path = StringArg(info, 1, "path");
  sockaddr_un addr;
  socklen_t length = PathAddress(info.Env(), path, "bind", &addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), length) < 0) ThrowErrno(info.Env(), errno, "bind");
  return info.Env().Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int backlog = IntArg(info, 1, "backlog", 0, INT32_MAX);  // the kernel caps it at somaxconn
  if (listen(fd, backlog) < 0) ThrowErrno(info.Env(), errno, "listen");
  return info.Env().Undefined();
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  int listener = FdArg(info, 0, "fd");
  int accepted;
  do accepted = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (accepted < 0 && errno == EINTR);
  if (accepted < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return info.Env().Null();  // nobody waits
  if (accepted < 0) ThrowErrno(info.Env(), errno, "accept4");
  OwnedFd fd(accepted);
  Napi::Value result = NewFd(info.Env(), fd.get());
  fd.release();
  return result;
}

// Not retried on EINTR: a second connect() after an interrupted one is not a retry.
// (A non-blocking unix connect never sleeps, so it is not interrupted anyway.)
Napi::Value Connect(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  std::string path = StringArg(info, 1, "path");
  sockaddr_un addr;
  socklen_t length = PathAddress(info.Env(), path, "connect", &addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), length) < 0) ThrowErrno(info.Env(), errno, "connect");
  return info.Env().Undefined();
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int how = IntArg(info, 1, "how", INT32_MIN, INT32_MAX);  // the kernel says EINVAL
  if (shutdown(fd, how) < 0) ThrowErrno(info.Env(), errno, "shutdown");
  return info.Env().Undefined();
}

// The fds travel with the first byte sent, so once any byte is sent (even a short send)
// all of them are. With no byte there is no message to carry them: Linux would drop
// them silently, so empty data with fds is refused.
Napi::Value Sendmsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  // The fds first: reading the array can run JS (getters), which could detach data's
  // buffer after its pointer had been taken.
  int fds[kMaxFds];
  int count = FdsArg(info, 2, fds);
  View data = ViewArg(info, 1, "data");
  if (count > 0 && data.length == 0) {
    ThrowTypeError(env, "The \"data\" argument must be at least one byte long when fds are sent");
  }

  iovec iov{data.data, data.length};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ControlBuffer control;
  if (count > 0) {
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    std::memset(control.bytes, 0, msg.msg_controllen);  // the padding too
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

// EMSGSIZE for fds that did not fit, with the data bytes that did arrive in `bytes`.
[[noreturn]] void ThrowTruncated(Napi::Env env, ssize_t bytes) {
  napi_value error = MakeErrnoError(env, EMSGSIZE, "recvmsg");
  napi_value js_bytes;
  napi_create_double(env, static_cast<double>(bytes), &js_bytes);
  napi_set_named_property(env, error, "bytes", js_bytes);
  throw Napi::Error(env, error);
}

Napi::Value Recvmsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  View buf = ViewArg(info, 1, "buf");
  int max_fds = IntArg(info, 2, "maxFds", 0, kMaxFds);
  // 0 bytes means end of stream: an empty buffer would make it mean nothing.
  if (buf.length == 0) ThrowTypeError(env, "The \"buf\" argument must be at least one byte long");

  iovec iov{buf.data, buf.length};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ControlBuffer control;  // the kernel fills it
  if (max_fds > 0) {
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds);
  }
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  // Nothing waiting is the common answer on a non-blocking socket, not an error:
  // null costs nothing, where an exception costs an Error and its stack every time.
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return env.Null();
  if (n < 0) ThrowErrno(env, errno, "recvmsg");

  ReceivedFds fds, stray;  // both closed on any exit that does not release them
  CollectFds(&msg, &fds, &stray);
  // CMSG_SPACE pads: the kernel may fit one fd more than max_fds without MSG_CTRUNC.
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || fds.count() > max_fds) {
    fds.CloseAll();
    ThrowTruncated(env, n);
  }
  Napi::Array js_fds = Napi::Array::New(env, fds.count());
  for (int i = 0; i < fds.count(); i++) js_fds.Set(static_cast<uint32_t>(i), NewFd(env, fds[i]));
  Napi::Object result = Napi::Object::New(env);
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
  result.Set("fds", js_fds);
  fds.Release();
  return result;
}

// One poll(2) on one fd, blocking the thread: for synchronous request/reply clients.
// EINTR is retried with the time left. A negative fd is EBADF (poll(2) would skip it
// and sleep out the timeout), and so is POLLNVAL (an fd that is not open).
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int events = IntArg(info, 1, "events", 0, 0xffff);
  int timeout = IntArg(info, 2, "timeoutMs", -1, INT32_MAX);
  if (fd < 0) ThrowErrno(env, EBADF, "poll");

  pollfd entry{fd, static_cast<short>(events), 0};
  const int64_t deadline = MonotonicNs() + static_cast<int64_t>(timeout) * 1000000;
  for (;;) {
    if (poll(&entry, 1, timeout) >= 0) break;
    if (errno != EINTR) ThrowErrno(env, errno, "poll");
    if (timeout > 0) {
      int64_t left = deadline - MonotonicNs();
      timeout = left <= 0 ? 0 : static_cast<int>((left + 999999) / 1000000);
    }
  }
  if ((entry.revents & POLLNVAL) != 0) ThrowErrno(env, EBADF, "poll");
  return Napi::Number::New(env, entry.revents);
}

// getsockopt(SO_PEERCRED): who is at the other end of a connected unix socket, as the
// kernel recorded it at connect()/listen() time, so a client can tell whose daemon it reached.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (fd < 0) ThrowErrno(env, EBADF, "getsockopt");
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) < 0) ThrowErrno(env, errno, "getsockopt");
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("sendmsg", Napi::Function::New(env, Sendmsg, "sendmsg"));
  exports.Set("recvmsg", Napi::Function::New(env, Recvmsg, "recvmsg"));
  exports.Set("poll", Napi::Function::New(env, Poll, "poll"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace vfio_vgpu
