// The simt emulator's engine: fibers, the per-block scheduler, barriers and warp
// collectives, deferred cp.async, the launch over a persistent pool of OS threads, and
// the fake CUDA runtime. See simt.h for the model.
#include "simt/simt.h"

#include <atomic>
#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cpu/threadpool.h"

namespace llmk_simt {
namespace {

constexpr size_t kStack = 64 * 1024;  // fiber stacks peak at a few KiB; a guard page catches overflow
constexpr size_t kDefaultDynSmem = 48 * 1024;
constexpr size_t kMaxDynSmem = 227 * 1024;  // sm_90 opt-in limit

std::atomic<int> g_schedule{-1};

int initial_schedule() {
  const char* e = std::getenv("LLMK_SIMT_SCHEDULE");
  if (!e || !*e || !std::strcmp(e, "forward")) return kForward;
  if (!std::strcmp(e, "reverse")) return kReverse;
  if (!std::strcmp(e, "random")) return kRandom;
  std::fprintf(stderr, "llm-kernels: LLMK_SIMT_SCHEDULE='%s' is not forward|reverse|random; using forward\n", e);
  return kForward;
}

// glibc's plain _longjmp: under _FORTIFY_SOURCE longjmp becomes __longjmp_chk, which
// aborts when jumping onto another stack ("longjmp causes uninitialized stack frame").
extern "C" [[noreturn]] void llmk_plain_longjmp(struct __jmp_buf_tag env[1], int val) __asm__("_longjmp");

enum State : int { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct CpAsync {
  void* dst;
  const void* src;
  bool zfill;
  int group;  // -1 until committed
};

struct Fiber {
  jmp_buf jb;
  ucontext_t uc;
  char* mem = nullptr;
  uint3 tid{};
  int linear = 0, lane = 0, warp = 0;
  State state = kDone;
  bool started = false;
  unsigned mask = 0;  // of the pending warp collective
  const char* bar_file = nullptr;
  int bar_line = 0;
  std::vector<CpAsync> copies;
  int groups_committed = 0;
};

}  // namespace

struct WarpSlot {
  alignas(16) unsigned char lane[32][kSlotBytes];
  alignas(16) unsigned char scratch[kScratchBytes];
  bool done = false;
};

namespace {

struct Worker {
  jmp_buf sched;
  std::vector<Fiber*> pool;
  std::vector<WarpSlot> warps;
  std::vector<unsigned char> dyn_smem;
  Fiber* cur = nullptr;
  LaunchBody* body = nullptr;
  std::string error;  // first failure of the current block
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  ~Worker() {
    const long pg = sysconf(_SC_PAGESIZE);
    for (Fiber* f : pool) {
      munmap(f->mem, kStack + pg);
      delete f;
    }
  }
};

thread_local Worker* t_worker = nullptr;

Worker* worker() {
  static thread_local std::unique_ptr<Worker> w;
  if (!w) {
    w = std::make_unique<Worker>();
    t_worker = w.get();
  }
  return w.get();
}

// Every switch goes through these two noinline frames: nothing is modified between
// _setjmp and the _longjmp back, so no local needs `volatile`.
__attribute__((noinline)) void switch_to(jmp_buf from, jmp_buf to) {
  if (_setjmp(from) == 0) llmk_plain_longjmp(to, 1);
}

void yield_to_scheduler() {
  Worker* w = t_worker;
  switch_to(w->cur->jb, w->sched);
}

void perform_copies(Fiber* f, int upto_group) {
  auto& c = f->copies;
  size_t keep = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].group >= 0 && c[i].group <= upto_group) {
      if (c[i].zfill) std::memset(c[i].dst, 0, 16);
      else std::memcpy(c[i].dst, c[i].src, 16);
    } else {
      c[keep++] = c[i];
    }
  }
  c.resize(keep);
}

void fiber_main() {
  Worker* w = t_worker;
  Fiber* f = w->cur;
  for (;;) {
    try {
      w->body->run_thread();
    } catch (const std::exception& e) {
      if (w->error.empty()) w->error = std::string("exception in kernel: ") + e.what();
    } catch (...) {
      if (w->error.empty()) w->error = "unknown exception in kernel";
    }
    // Copies still in flight at exit land before the kernel is considered done.
    for (auto& c : f->copies) c.group = 0;
    perform_copies(f, 0);
    f->state = kDone;
    yield_to_scheduler();
    f = t_worker->cur;  // the same fiber, resumed for the next block
    w = t_worker;
  }
}

void init_fiber_context(Fiber* f) {
  getcontext(&f->uc);
  const long pg = sysconf(_SC_PAGESIZE);
  f->uc.uc_stack.ss_sp = f->mem + pg;
  f->uc.uc_stack.ss_size = kStack;
  f->uc.uc_link = nullptr;
  makecontext(&f->uc, fiber_main, 0);
  f->started = false;
}

void grow_pool(Worker* w, size_t n) {
  const long pg = sysconf(_SC_PAGESIZE);
  while (w->pool.size() < n) {
    Fiber* f = new Fiber;
    void* m = mmap(nullptr, kStack + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      delete f;
      throw llmk::Error(llmk::ErrorKind::RangeError, "simt: cannot map a fiber stack");
    }
    f->mem = static_cast<char*>(m);
    mprotect(f->mem, pg, PROT_NONE);  // guard page: overflow faults instead of corrupting
    init_fiber_context(f);
    w->pool.push_back(f);
  }
}

__attribute__((noinline)) void resume(Worker* w, Fiber* f) {
  w->cur = f;
  threadIdx = f->tid;
  if (!f->started) {
    f->started = true;
    if (_setjmp(w->sched) == 0) setcontext(&f->uc);  // first entry only
  } else {
    switch_to(w->sched, f->jb);
  }
}

std::string block_name() {
  return llmk::cat("block (", blockIdx.x, ",", blockIdx.y, ",", blockIdx.z, ")");
}

// Runs one block to completion; returns false (with w->error set) on failure.
bool run_block(Worker* w, uint3 bid, dim3 bd, dim3 gd) {
  blockIdx = bid;
  blockDim = bd;
  gridDim = gd;
  const int n = int(bd.x * bd.y * bd.z), nw = (n + 31) / 32;
  grow_pool(w, size_t(n));
  if (int(w->warps.size()) < nw) w->warps.resize(size_t(nw));
  Fiber** F = w->pool.data();
  for (int i = 0; i < n; ++i) {
    Fiber* f = F[i];
    f->tid = uint3{unsigned(i % int(bd.x)), unsigned((i / int(bd.x)) % int(bd.y)), unsigned(i / int(bd.x * bd.y))};
    f->linear = i;
    f->lane = i % 32;
    f->warp = i / 32;
    f->state = kReady;
    f->copies.clear();
    f->groups_committed = 0;
  }
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;
  const int sched = set_schedule(-1);
  w->error.clear();
  auto fail_block = [&](const std::string& msg) {
    if (w->error.empty()) w->error = msg;
    // Abandoned stacks: every fiber of this block restarts from scratch next time.
    for (int i = 0; i < n; ++i) init_fiber_context(F[i]);
    return false;
  };
  for (;;) {
    if (sched == kReverse) {
      for (int i = 0; i < n; ++i) order[size_t(i)] = n - 1 - i;
    } else if (sched == kRandom) {
      for (int i = n - 1; i > 0; --i) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        std::swap(order[size_t(i)], order[size_t(w->rng % uint64_t(i + 1))]);
      }
    }
    for (int oi = 0; oi < n; ++oi) {
      Fiber* f = F[order[size_t(oi)]];
      if (f->state != kReady) continue;
      resume(w, f);
      if (!w->error.empty()) return fail_block(w->error);
    }
    // Everyone is done or parked. Release complete warp collectives first.
    bool released = false;
    int done = 0, at_block = 0;
    for (int wi = 0; wi < nw; ++wi) {
      const int lo = wi * 32, hi = std::min(n, lo + 32);
      unsigned arrived = 0, live = 0, existing = 0;
      int at_bar = 0;
      for (int i = lo; i < hi; ++i) {
        existing |= 1u << (i - lo);
        if (F[i]->state != kDone) live |= 1u << (i - lo);
        if (F[i]->state == kAtWarpBarrier) arrived |= 1u << (i - lo);
        if (F[i]->state == kAtBlockBarrier) ++at_bar;
        if (F[i]->state == kDone) ++done;
      }
      at_block += at_bar;
      if (!arrived) continue;
      if (arrived != live) {
        if (at_bar)
          return fail_block(llmk::cat("divergent warp ", wi, " in ", block_name(),
                                      ": some lanes wait at a warp collective while others wait at __syncthreads"));
        continue;  // cannot happen: no lane is ready after a round
      }
      for (int i = lo; i < hi; ++i) {
        const unsigned m = F[i]->mask & existing;
        if (F[i]->state == kAtWarpBarrier && m != arrived)
          return fail_block(llmk::cat("warp collective in warp ", wi, " of ", block_name(), ": lane ", i - lo,
                                      " passed mask 0x", std::hex, F[i]->mask, " but the lanes that arrived are 0x",
                                      arrived, std::dec, " (exited or diverged lanes)"));
      }
      for (int i = lo; i < hi; ++i)
        if (F[i]->state == kAtWarpBarrier) F[i]->state = kReady;
      released = true;
    }
    if (done == n) return true;
    if (released) continue;
    if (at_block + done != n) return fail_block(llmk::cat("deadlock in ", block_name()));
    if (done) {
      int i = 0;
      while (F[i]->state != kAtBlockBarrier) ++i;
      return fail_block(llmk::cat("divergent barrier in ", block_name(), ": __syncthreads at ", F[i]->bar_file, ":",
                                  F[i]->bar_line, " is waited on by ", at_block, " threads while ", done,
                                  " threads have exited"));
    }
    const char* file = nullptr;
    int line = 0;
    for (int i = 0; i < n; ++i) {
      if (!file) {
        file = F[i]->bar_file;
        line = F[i]->bar_line;
      } else if (F[i]->bar_line != line || std::strcmp(F[i]->bar_file, file) != 0) {
        return fail_block(llmk::cat("divergent barrier in ", block_name(), ": threads wait at ", file, ":", line,
                                    " and at ", F[i]->bar_file, ":", F[i]->bar_line));
      }
    }
    for (int i = 0; i < n; ++i) F[i]->state = kReady;
  }
}

std::mutex g_attr_mu;
std::unordered_map<const void*, int> g_max_dyn_smem;  // cudaFuncSetAttribute opt-ins

llmk::ThreadPool& simt_pool() {
  static llmk::ThreadPool pool(llmk::default_num_threads());
  return pool;
}

thread_local cudaError_t t_last_error = cudaSuccess;

}  // namespace

int set_schedule(int s) {
  int cur = g_schedule.load();
  if (cur < 0) {
    int expected = -1;
    g_schedule.compare_exchange_strong(expected, initial_schedule());
    cur = g_schedule.load();
  }
  if (s >= 0) {
    g_schedule.store(s);
    return s;
  }
  return cur;
}

const char* schedule_name(int s) { return s == kReverse ? "reverse" : s == kRandom ? "random" : "forward"; }

[[noreturn]] void die(const std::string& msg) {
  Worker* w = t_worker;
  if (w->error.empty()) w->error = llmk::cat(msg, " (", block_name(), ", thread ", w->cur->linear, ")");
  w->cur->state = kDone;
  yield_to_scheduler();
  std::abort();  // never resumed: the scheduler re-initialises this fiber
}

void block_barrier(const char* file, int line) {
  Worker* w = t_worker;
  w->cur->bar_file = file;
  w->cur->bar_line = line;
  w->cur->state = kAtBlockBarrier;
  yield_to_scheduler();
}

void warp_barrier() {
  Worker* w = t_worker;
  w->cur->state = kAtWarpBarrier;
  yield_to_scheduler();
}

int lane_id() { return t_worker->cur->lane; }
int warp_id() { return t_worker->cur->warp; }
void* dynamic_smem_base() { return t_worker->dyn_smem.data(); }

WarpSlot& warp_slot() { return t_worker->warps[size_t(t_worker->cur->warp)]; }
void* slot_lane(WarpSlot& s, int lane) { return s.lane[lane]; }
bool* slot_done_flag(WarpSlot& s) { return &s.done; }
void* slot_scratch(WarpSlot& s) { return s.scratch; }

void collective_enter(unsigned mask) {
  t_worker->cur->mask = mask;
  warp_barrier();
}
void collective_leave() { warp_barrier(); }  // same lanes, same mask as the entry

void cp_async_record(void* dst, const void* src, bool zfill) {
  if ((reinterpret_cast<uintptr_t>(dst) | (zfill ? 0 : reinterpret_cast<uintptr_t>(src))) & 15u)
    die(llmk::cat("cp.async: addresses must be 16-byte aligned (shared ", dst, ", global ", src, ")"));
  t_worker->cur->copies.push_back({dst, src, zfill, -1});
}

void cp_async_commit() {
  Fiber* f = t_worker->cur;
  const int g = f->groups_committed++;
  for (auto& c : f->copies)
    if (c.group < 0) c.group = g;
}

void cp_async_wait(int keep_pending) {
  Fiber* f = t_worker->cur;
  perform_copies(f, f->groups_committed - 1 - keep_pending);
}

void launch(LaunchBody& body, const void* kernel, dim3 grid, dim3 block, size_t smem) {
  const size_t threads = size_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    llmk::fail(llmk::ErrorKind::RangeError, "simt: invalid block (", block.x, ",", block.y, ",", block.z,
               "): at most 1024 threads (x, y <= 1024, z <= 64)");
  if (grid.y > 65535 || grid.z > 65535)
    llmk::fail(llmk::ErrorKind::RangeError, "simt: invalid grid (", grid.x, ",", grid.y, ",", grid.z, ")");
  size_t limit = kDefaultDynSmem;
  {
    std::lock_guard<std::mutex> lk(g_attr_mu);
    auto it = g_max_dyn_smem.find(kernel);
    if (it != g_max_dyn_smem.end()) limit = size_t(it->second);
  }
  if (smem > limit)
    llmk::fail(llmk::ErrorKind::RangeError, "simt: ", smem, " bytes of dynamic shared memory exceed the ", limit,
               "-byte limit", limit == kDefaultDynSmem ? " (raise it with cudaFuncSetAttribute, up to 227 KiB)" : "");
  const size_t nblk = size_t(grid.x) * grid.y * grid.z;
  if (nblk == 0) return;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::string first_error;
  size_t first_block = SIZE_MAX;
  simt_pool().run_shared([&](int, int) {
    Worker* w = worker();
    w->body = &body;
    if (w->dyn_smem.size() < smem) w->dyn_smem.resize(smem);
    for (size_t bi; !failed.load(std::memory_order_relaxed) && (bi = next++) < nblk;) {
      const uint3 bid{unsigned(bi % grid.x), unsigned(bi / grid.x % grid.y), unsigned(bi / (size_t(grid.x) * grid.y))};
      bool ok;
      try {
        ok = run_block(w, bid, block, grid);
      } catch (const std::exception& e) {
        w->error = e.what();
        ok = false;
      }
      if (!ok) {
        std::lock_guard<std::mutex> lk(err_mu);
        if (bi < first_block) {
          first_block = bi;
          first_error = w->error;
        }
        failed = true;
      }
    }
    w->body = nullptr;
  });
  if (failed) llmk::fail(llmk::ErrorKind::Error, "simt: ", first_error);
}

// ---- fake runtime ----------------------------------------------------------------------

namespace {
std::mutex g_alloc_mu;
std::unordered_map<void*, size_t> g_allocs;
cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}
}  // namespace

cudaError_t rt_malloc(void** p, size_t n) {
  void* m = nullptr;
  if (posix_memalign(&m, 256, n ? (n + 255) / 256 * 256 : 256) != 0) return set_error(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lk(g_alloc_mu);
  g_allocs[m] = n;
  *p = m;
  return cudaSuccess;
}
cudaError_t rt_malloc_async(void** p, size_t n, cudaStream_t) { return rt_malloc(p, n); }
cudaError_t rt_free(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lk(g_alloc_mu);
    if (!g_allocs.erase(p)) return set_error(cudaErrorInvalidValue);
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t rt_free_async(void* p, cudaStream_t) { return rt_free(p); }
cudaError_t rt_memcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t rt_memcpy_async(void* d, const void* s, size_t n, cudaMemcpyKind k, cudaStream_t) {
  return rt_memcpy(d, s, n, k);
}
cudaError_t rt_memset_async(void* d, int v, size_t n, cudaStream_t) {
  std::memset(d, v, n);
  return cudaSuccess;
}
// Streams are synchronous here: every launch has finished when it returns.
cudaError_t rt_stream_create(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(uintptr_t(1));
  return cudaSuccess;
}
cudaError_t rt_stream_destroy(cudaStream_t) { return cudaSuccess; }
// Host waits on the device, counted for tests (a GPU decode step should make one).
std::atomic<long> g_host_syncs{0};
long host_syncs() { return g_host_syncs.load(); }
cudaError_t rt_stream_synchronize(cudaStream_t) {
  g_host_syncs.fetch_add(1);
  return cudaSuccess;
}
cudaError_t rt_device_synchronize() { return cudaSuccess; }
cudaError_t rt_get_last_error() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
const char* rt_get_error_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (simt)";
    case cudaErrorInvalidValue: return "invalid argument (simt)";
    default: return "simt runtime error";
  }
}
cudaError_t rt_get_device_count(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t rt_set_device(int d) { return d == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice); }
cudaError_t rt_get_device_properties(cudaDeviceProp* p, int d) {
  if (d != 0) return set_error(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "SIMT emulator (%d threads)", simt_pool().size());
  p->major = 8;
  p->minor = 0;
  p->multiProcessorCount = simt_pool().size();
  p->totalGlobalMem = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
  p->sharedMemPerBlock = kDefaultDynSmem;
  p->sharedMemPerBlockOptin = kMaxDynSmem;
  p->maxThreadsPerBlock = 1024;
  p->warpSize = 32;
  return cudaSuccess;
}
cudaError_t rt_device_get_default_mem_pool(cudaMemPool_t* pool, int) {
  *pool = nullptr;
  return cudaSuccess;
}
cudaError_t rt_mem_pool_set_attribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
cudaError_t rt_func_set_attribute(const void* func, cudaFuncAttribute a, int v) {
  if (a != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (v < 0 || size_t(v) > kMaxDynSmem) return set_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lk(g_attr_mu);
  g_max_dyn_smem[func] = v;
  return cudaSuccess;
}

namespace {
struct Event {
  std::chrono::steady_clock::time_point t;
};
}  // namespace
cudaError_t rt_event_create(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new Event{});
  return cudaSuccess;
}
cudaError_t rt_event_record(cudaEvent_t e, cudaStream_t) {
  reinterpret_cast<Event*>(e)->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t rt_event_synchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t rt_event_elapsed_time(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(reinterpret_cast<Event*>(b)->t - reinterpret_cast<Event*>(a)->t).count();
  return cudaSuccess;
}
cudaError_t rt_event_destroy(cudaEvent_t e) {
  delete reinterpret_cast<Event*>(e);
  return cudaSuccess;
}

}  // namespace llmk_simt
