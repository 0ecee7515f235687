#include "cpu/threadpool.h"

#include <cstdlib>
#include <string>

namespace llmk {

int default_num_threads() {
  if (const char* e = std::getenv("LLMK_NUM_THREADS")) {
    int n = std::atoi(e);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

ThreadPool& cpu_pool() {
  static ThreadPool pool(default_num_threads());
  return pool;
}

ThreadPool::ThreadPool(int threads) : n_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < n_; ++t) threads_.emplace_back([this, t] { worker(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_ == 1) {
    fn(0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    remaining_.store(n_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_relaxed)) cv_.notify_all();
  fn(0, n_);
  while (remaining_.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks <= 1 || n_ == 1) {
    fn(0, n);
    return;
  }
  run([&](int tid, int nt) {
    const int64_t per = (n + nt - 1) / nt;
    const int64_t step = per < grain ? grain : per;
    const int64_t b = int64_t(tid) * step, e = b + step < n ? b + step : n;
    if (b < e) fn(b, e);
  });
}

void ThreadPool::worker(int tid) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for a while (decode issues many small jobs back to back), then sleep.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < 20000) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      ++spins;
    }
    const std::function<void(int, int)>* job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (generation_.load(std::memory_order_acquire) == seen) {
        sleepers_.fetch_add(1);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleepers_.fetch_sub(1);
      }
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      job = job_;
    }
    (*job)(tid, n_);
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace llmk
