#include "cpu/threadpool.h"

#include <chrono>
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

namespace {
constexpr uint64_t kClosed = uint64_t(1) << 31;
constexpr uint64_t kJoined = kClosed - 1;  // mask of the helpers-in-fn count
inline void spin_pause() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

void ThreadPool::run(const std::function<void(int, int)>& fn) { run_job(fn, false); }

void ThreadPool::run_shared(const std::function<void(int, int)>& fn) { run_job(fn, true); }

void ThreadPool::run_job(const std::function<void(int, int)>& fn, bool shared) {
  if (n_ == 1) {
    fn(0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    shared_ = shared;
    remaining_.store(shared ? 0 : n_ - 1, std::memory_order_relaxed);
    const uint64_t gen = generation_.fetch_add(1, std::memory_order_release) + 1;
    // A static job admits no one through admit_: a helper still holding an older
    // shared job sees the generation move and skips it.
    admit_.store((gen & 0xffffffffu) << 32 | (shared ? 0 : kClosed), std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_relaxed)) cv_.notify_all();
  fn(0, n_);
  if (!shared) {
    while (remaining_.load(std::memory_order_acquire) != 0) spin_pause();
    return;
  }
  // All work is claimed: admit no one else, then wait for the helpers inside fn (they
  // finish what they claimed; their writes are released by the decrement).
  admit_.fetch_or(kClosed, std::memory_order_acq_rel);
  while ((admit_.load(std::memory_order_acquire) & kJoined) != 0) spin_pause();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t most = (n + grain - 1) / grain;
  if (most <= 1 || n_ == 1) {
    fn(0, n);
    return;
  }
  // The static split's chunks (one per thread, at least grain), taken by whoever is
  // free: a helper that has not started by the time the caller finishes its chunk
  // leaves the next one to the caller.
  const int64_t per = std::max((n + n_ - 1) / n_, grain), chunks = (n + per - 1) / per;
  std::atomic<int64_t> next{0};
  run_shared([&](int, int) {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;)
      fn(c * per, std::min(n, (c + 1) * per));
  });
}

void ThreadPool::worker(int tid) {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly (the ops of a decode step come back to back), then sleep. Briefly:
    // with the pool as wide as the cores, the JS thread and the device worker need a
    // core too, and a helper spinning on it kept a decode step's worker off the CPU
    // for ~0.4 ms once per step (small demo model, int8, 2 cores: 1.16 ms per token
    // with a 0.5 ms spin, 0.80-0.85 with 5 µs; a late helper costs little since
    // run_shared does not wait for it).
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(5);
    for (int spins = 1; generation_.load(std::memory_order_acquire) == seen; ++spins) {
      spin_pause();
      if (spins % 16 == 0 && std::chrono::steady_clock::now() > until) break;
    }
    const std::function<void(int, int)>* job;
    bool shared;
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
      shared = shared_;
    }
    if (!shared) {
      (*job)(tid, n_);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
      continue;
    }
    // Join only while this generation's job is open: once the caller closes it (or
    // publishes the next), fn and what it captures may be gone.
    uint64_t a = admit_.load(std::memory_order_acquire);
    bool joined = false;
    while ((a >> 32) == (seen & 0xffffffffu) && !(a & kClosed))
      if (admit_.compare_exchange_weak(a, a + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    if (!joined) continue;
    (*job)(tid, n_);
    admit_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace llmk
