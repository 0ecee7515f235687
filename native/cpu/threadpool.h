// Persistent CPU thread pool: created once (threads = cores, LLMK_NUM_THREADS
// overrides), never a thread per op or per token. The calling thread takes part as
// thread 0, so a pool of N runs N-1 helper threads.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmk {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  int size() const { return n_; }
  // fn(tid, nthreads) on every thread of the pool (tid 0 = caller); returns when all
  // are done. Not re-entrant: one job at a time (callers are the device worker).
  void run(const std::function<void(int tid, int nthreads)>& fn);
  // For jobs whose fn claims shared work until none is left (an atomic counter): the
  // caller runs fn, then closes the job and waits only for helpers that joined before
  // that; a helper arriving later skips it. With as many busy threads as cores (the
  // JS thread beside a full pool), a descheduled helper then costs nothing instead of
  // holding the op until its next time slice.
  void run_shared(const std::function<void(int tid, int nthreads)>& fn);
  // [0, n) in one contiguous chunk per thread (fixed boundaries, so results do not
  // depend on who runs which), claimed through run_shared; grain = minimum chunk so
  // tiny loops stay on one thread.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker(int tid);
  int n_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  bool shared_ = false;
  // run_shared's admission word: generation (low 32 bits) << 32 | kClosed | helpers in fn.
  std::atomic<uint64_t> admit_{0};
  void run_job(const std::function<void(int, int)>& fn, bool shared);
  std::atomic<int> sleepers_{0};
  bool stop_ = false;
};

// Threads for CPU compute: LLMK_NUM_THREADS if set (>= 1), else hardware cores.
int default_num_threads();
// The cpu device's pool (created on first use).
ThreadPool& cpu_pool();

}  // namespace llmk
