// A device's ordered work queue (DESIGN §3): one native worker thread per device
// runs queued closures in order. Enqueue never blocks on compute. The first error
// thrown by queued work is kept and handed to the next sync point, then cleared.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace llmk {

class Stream {
 public:
  using Work = std::function<void()>;
  // Sync callbacks run on the worker thread with the pending error ("" if none).
  using SyncDone = std::function<void(const std::string& error)>;

  explicit Stream(std::string name);
  ~Stream();
  void enqueue(Work w);
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
  std::deque<Work> q_;
  std::atomic<int> sleeping_{0};
  std::atomic<size_t> queued_{0};  // mirrors q_.size() for the lock-free spin
  bool stop_ = false;
  std::string error_;  // touched only on the worker thread
  std::thread th_;
};

}  // namespace llmk
