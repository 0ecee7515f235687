#include "core/stream.h"

#include <future>

#include "llmk/status.h"

namespace llmk {

Stream::Stream(std::string name) : name_(std::move(name)) { th_ = std::thread([this] { run(); }); }

Stream::~Stream() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  th_.join();
}

void Stream::enqueue(Work w) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    q_.push_back(std::move(w));
    queued_.fetch_add(1, std::memory_order_release);
    wake = sleeping_.load(std::memory_order_relaxed) != 0;
  }
  // Only pay for a futex wake when the worker actually sleeps: while it is busy or
  // spinning it picks the item up by itself, which keeps a tiny op's enqueue cheap.
  if (wake) cv_.notify_one();
}

void Stream::sync(SyncDone done) {
  enqueue([this, done = std::move(done)] {
    std::string e;
    e.swap(error_);
    done(e);
  });
}

void Stream::drain() {
  std::promise<void> p;
  auto f = p.get_future();
  enqueue([&p] { p.set_value(); });
  f.wait();
}

void Stream::run() {
  for (;;) {
    Work w;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (q_.empty()) {
        // Spin briefly before sleeping: ops arrive in bursts from one JS turn.
        lk.unlock();
        for (int i = 0; i < 2000; ++i) {
          if (queued_.load(std::memory_order_acquire) != 0) break;
#if defined(__x86_64__)
          __builtin_ia32_pause();
#endif
        }
        lk.lock();
        sleeping_.store(1, std::memory_order_relaxed);
        cv_.wait(lk, [this] { return stop_ || !q_.empty(); });
        sleeping_.store(0, std::memory_order_relaxed);
      }
      if (q_.empty() && stop_) return;
      w = std::move(q_.front());
      q_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    try {
      w();
    } catch (const std::exception& e) {
      if (error_.empty()) error_ = cat(name_, ": ", e.what());
    } catch (...) {
      if (error_.empty()) error_ = cat(name_, ": unknown native error");
    }
  }
}

}  // namespace llmk
