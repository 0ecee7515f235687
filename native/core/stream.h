// A device's ordered work queue (DESIGN §3): one native worker thread per device
// runs queued closures in order. Enqueue never blocks on compute. The first error
// thrown by queued work is kept and handed to the next sync point, then cleared.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace llmk {

// A queued closure, stored inline up to kInline bytes (an op's closure holds its
// Tensors: ~100 bytes each). A std::function of that size is a heap block allocated
// on the JS thread and freed by the worker, and glibc serves such a cross-thread free
// under the allocating arena's lock, which the JS thread's next malloc then waits on
// (perf: futex waits in malloc were the top item of a tiny op's enqueue). Larger
// closures go to the heap.
class Task {
 public:
  static constexpr size_t kInline = 512 - 2 * sizeof(void*);
  Task() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Task>>>
  Task(F&& f) {  // NOLINT: implicit, as std::function's
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= kInline && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      ::new (static_cast<void*>(buf_)) Fn(std::forward<F>(f));
      ops_ = &kOps<Fn, true>;
    } else {
      *reinterpret_cast<Fn**>(buf_) = new Fn(std::forward<F>(f));
      ops_ = &kOps<Fn, false>;
    }
  }
  Task(Task&& o) noexcept { take(o); }
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }
  void operator()() { ops_->call(buf_); }
  void reset() {
    if (ops_) ops_->destroy(buf_);
    ops_ = nullptr;
  }

 private:
  struct Ops {
    void (*call)(void*);
    void (*move)(void* dst, void* src);  // move-constructs dst from src, then destroys src
    void (*destroy)(void*);
  };
  template <class Fn, bool Inline>
  static constexpr Ops kOps = {
      [](void* p) {
        if constexpr (Inline) (*static_cast<Fn*>(p))();
        else (**static_cast<Fn**>(p))();
      },
      [](void* d, void* s) {
        if constexpr (Inline) {
          ::new (d) Fn(std::move(*static_cast<Fn*>(s)));
          static_cast<Fn*>(s)->~Fn();
        } else {
          *static_cast<Fn**>(d) = *static_cast<Fn**>(s);
        }
      },
      [](void* p) {
        if constexpr (Inline) static_cast<Fn*>(p)->~Fn();
        else delete *static_cast<Fn**>(p);
      }};
  void take(Task& o) {
    ops_ = o.ops_;
    if (ops_) ops_->move(buf_, o.buf_);
    o.ops_ = nullptr;
  }
  alignas(std::max_align_t) unsigned char buf_[kInline];
  const Ops* ops_ = nullptr;
};

class Stream {
 public:
  // Sync callbacks run on the worker thread with the pending error ("" if none).
  using SyncDone = std::function<void(const std::string& error)>;

  explicit Stream(std::string name);
  ~Stream();
  void enqueue(Task w);
  // Enqueue a sync point: `done` runs after all earlier work, with the first error
  // raised since the previous sync point (that error is then cleared).
  void sync(SyncDone done);
  // Blocks the calling thread until the queue is drained (for shutdown and tests).
  void drain();

 private:
  void run();
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  // A ring of task slots (head_ the next to run, count_ queued), doubled when full and
  // back to kSlots once drained: slots are reused, so a steady stream of ops allocates
  // nothing, and a burst queued behind a long op does not hold its memory for good.
  static constexpr size_t kSlots = 256;
  std::vector<Task> ring_;
  size_t head_ = 0, count_ = 0;
  std::atomic<int> sleeping_{0};
  std::atomic<size_t> queued_{0};  // mirrors count_ for the lock-free spin
  bool stop_ = false;
  std::string error_;  // touched only on the worker thread
  std::thread th_;
};

}  // namespace llmk
