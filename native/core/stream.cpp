#include "core/stream.h"

#include <future>

#include "llmk/status.h"

namespace llmk {

Stream::Stream(std::string name) : name_(std::move(name)), ring_(kSlots) { th_ = std::thread([this] { run(); }); }

Stream::~Stream() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  th_.join();
}

void Stream::enqueue(Task w) {
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (count_ == ring_.size()) {  // full: twice the slots, the queue in order from slot 0
      std::vector<Task> bigger(2 * ring_.size());
      for (size_t i = 0; i < count_; ++i) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
      ring_.swap(bigger);
      head_ = 0;
    }
    ring_[(head_ + count_++) % ring_.size()] = std::move(w);
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
    Task w;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (count_ == 0) {
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
        cv_.wait(lk, [this] { return stop_ || count_ != 0; });
        sleeping_.store(0, std::memory_order_relaxed);
      }
      if (count_ == 0 && stop_) return;
      w = std::move(ring_[head_]);
      head_ = (head_ + 1) % ring_.size();
      if (--count_ == 0 && ring_.size() > kSlots) {  // a burst grew the ring: give it back
        std::vector<Task>(kSlots).swap(ring_);
        head_ = 0;
      }
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
