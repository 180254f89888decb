// watch(fd, onReady, events = 1): a uv_poll_t on the Node event loop that calls
// onReady(ready) on the JS thread each time fd is readable (events bit 1) or writable
// (bit 2), level-triggered: until the fd is drained (or full). `ready` is the bitmask of
// the watched events that are ready. On POLLERR libuv stops the poll for good; the last
// call then gets every watched bit, so the caller's next read or write meets the error.
//
// Lifetimes: the uv handle lives in a heap PollState freed by its close callback, so a
// watcher can close itself from inside its own callback. While open, the JS object is
// held strongly (like any active Node handle), so an interrupt handler never stops just
// because its watcher went out of scope. At env teardown (process exit, worker end) an
// async cleanup hook closes the handle and the loop waits for it; a watcher collected
// by GC while still open (only possible at teardown) closes its handle too.
//
// The poll watches a private dup of the fd, closed only after libuv let go of it. So the
// caller may close its own fd at any time (libuv aborts if an fd it is about to add to
// epoll is already closed), a reused fd number never meets a stale registration, and
// two watchers of one fd are two independent registrations.
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include "args.h"
#include "errors.h"
#include "exports.h"

namespace vfio_vgpu {

namespace {

// The bits of the `events` argument and of the callback's argument (this addon's own
// numbering, kept stable for TypeScript; mapped to libuv's below).
constexpr int kReadable = 1;
constexpr int kWritable = 2;

int ToUv(int events) {
  return ((events & kReadable) != 0 ? UV_READABLE : 0) | ((events & kWritable) != 0 ? UV_WRITABLE : 0);
}

int FromUv(int uv_events) {
  return ((uv_events & UV_READABLE) != 0 ? kReadable : 0) | ((uv_events & UV_WRITABLE) != 0 ? kWritable : 0);
}

class Watcher;

struct PollState {
  uv_poll_t handle;
  int fd;          // our dup, closed once the handle is
  int events;      // kReadable | kWritable, as the caller asked
  Watcher* owner;  // null once the watcher let go of this state
  napi_async_cleanup_hook_handle cleanup_hook;
};

class Watcher : public Napi::ObjectWrap<Watcher> {
 public:
  static Napi::Function DefineClass(Napi::Env env) {
    return Napi::ObjectWrap<Watcher>::DefineClass(env, "FdWatcher", {
      InstanceMethod<&Watcher::JsClose>("close"),
      InstanceMethod<&Watcher::JsRef>("ref"),
      InstanceMethod<&Watcher::JsUnref>("unref"),
    });
  }

  Watcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Watcher>(info) {
    napi_env env = info.Env();
    int fd = FdArg(info, 0, "fd");
    if (!info[1].IsFunction()) ThrowTypeError(env, "The \"onReady\" argument must be a function");
    int events = info[2].IsUndefined() ? kReadable : IntArg(info, 2, "events", kReadable, kReadable | kWritable);
    if (fd < 0) ThrowErrno(env, EBADF, "fcntl");

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "watch: no event loop");

    int own_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own_fd < 0) ThrowErrno(env, errno, "fcntl");
    auto* state = new PollState{};
    state->fd = own_fd;
    state->events = events;
    int err = uv_poll_init(loop, &state->handle, own_fd);
    if (err < 0) {
      delete state;  // uv_poll_init failed before registering the handle
      close(own_fd);
      ThrowErrno(env, -err, "uv_poll_init");
    }
    state->handle.data = state;
    err = uv_poll_start(&state->handle, ToUv(events), OnPoll);
    if (err < 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&state->handle), OnClosed);
      ThrowErrno(env, -err, "uv_poll_start");
    }
    napi_add_async_cleanup_hook(env, OnEnvCleanup, state, &state->cleanup_hook);
    state->owner = this;
    state_ = state;

    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    napi_value name = Napi::String::New(env, "vfio_vgpu.watch");
    napi_async_init(env, info.This(), name, &async_context_);
    Ref();  // keep the object (and so the callback) alive while watching
  }

  ~Watcher() override {
    // Collected while open: only at env teardown, when JS must not be touched.
    if (state_ != nullptr) CloseHandle();
  }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int uv_events) {
    auto* state = static_cast<PollState*>(handle->data);
    if (state->owner == nullptr) return;
    // status < 0 (POLLERR): libuv has stopped the poll and passes no events.
    int ready = status < 0 ? state->events : FromUv(uv_events) & state->events;
    if (ready != 0) state->owner->Fire(ready);
  }

  void Fire(int ready) {
    napi_env env = Env();
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value argument, result;
    napi_create_int32(env, ready, &argument);
    napi_status status = napi_make_callback(env, async_context_, Value(), callback_.Value(), 1, &argument, &result);
    if (status == napi_pending_exception) {
      // No JS frame below us to catch it: report it like any event-loop callback would.
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
    napi_close_handle_scope(env, scope);
  }

  // Stops polling and hands the PollState to libuv, which frees it when closed.
  void CloseHandle() {
    PollState* state = state_;
    state_ = nullptr;
    state->owner = nullptr;
    uv_handle_t* handle = reinterpret_cast<uv_handle_t*>(&state->handle);
    if (!uv_is_closing(handle)) uv_close(handle, OnClosed);
  }

  static void OnClosed(uv_handle_t* handle) {
    auto* state = static_cast<PollState*>(handle->data);
    if (state == nullptr) return;
    close(state->fd);
    if (state->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(state->cleanup_hook);
    delete state;
  }

  // The env is going away: close the handle; OnClosed removes the hook, which tells
  // Node the cleanup is done.
  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
    auto* state = static_cast<PollState*>(arg);
    if (state->owner != nullptr) {
      state->owner->CloseHandle();
    } else {
      uv_handle_t* handle = reinterpret_cast<uv_handle_t*>(&state->handle);
      if (!uv_is_closing(handle)) uv_close(handle, OnClosed);
    }
  }

  Napi::Value JsClose(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) {
      CloseHandle();
      callback_.Reset();
      napi_async_destroy(info.Env(), async_context_);
      async_context_ = nullptr;
      Unref();  // now collectable
    }
    return info.Env().Undefined();
  }

  Napi::Value JsRef(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&state_->handle));
    return info.Env().Undefined();
  }

  Napi::Value JsUnref(const Napi::CallbackInfo& info) {
    if (state_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&state_->handle));
    return info.Env().Undefined();
  }

  PollState* state_ = nullptr;
  Napi::FunctionReference callback_;
  napi_async_context async_context_ = nullptr;
};

struct WatchData {
  Napi::FunctionReference constructor;
};

Napi::Value Watch(const Napi::CallbackInfo& info) {
  auto* data = static_cast<WatchData*>(info.Data());
  return data->constructor.New({info[0], info[1], info[2]});
}

}  // namespace

void InitWatch(Napi::Env env, Napi::Object exports) {
  auto* data = new WatchData{Napi::Persistent(Watcher::DefineClass(env))};
  env.AddCleanupHook([data]() { delete data; });
  exports.Set("watch", Napi::Function::New(env, Watch, "watch", data));
}

}  // namespace vfio_vgpu
