// measurePeaks(): the machine's own compute and bandwidth peaks for the benchmark
// report's "% of peak". Runs on the cpu device's worker (after queued cpu work), on
// every pool thread, with the ISA the cpu kernels use. markTime / releaseMark /
// elapsedMs: device-side timing of what a benchmark enqueues.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <unistd.h>

#include "cpu/isa.h"
#include "cpu/threadpool.h"
#include "napi/tensor_handle.h"

namespace llmk::cpu {
#define LLMK_DECLARE_PEAK(ns)                                  \
  namespace ns {                                               \
  double peak_fma_f32(int64_t iters, float* sink);             \
  double peak_int8(int64_t iters, int32_t* sink);              \
  double peak_bf16(int64_t iters, float* sink);                \
  float peak_read(const float* p, size_t n);                   \
  }
LLMK_DECLARE_PEAK(isa_scalar)
LLMK_DECLARE_PEAK(isa_avx2)
LLMK_DECLARE_PEAK(isa_avx512)
#undef LLMK_DECLARE_PEAK
}  // namespace llmk::cpu

namespace llmk::napi {
namespace {

struct Peaks {
  double fp32_flops = 0, bf16_flops = 0, int8_ops = 0, read_bytes = 0;  // per second
  std::string isa;
  int threads = 0;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best rate over several short timed runs of `probe` on every pool thread (the
// best of many short runs is the peak even on a machine shared with other work);
// the first run calibrates the work so each run lasts about `target_s`.
template <class Probe>
double best_rate(double target_s, Probe probe) {
  ThreadPool& pool = cpu_pool();
  int64_t iters = 1 << 16;
  double best = 0;
  for (int rep = 0; rep < 9; ++rep) {
    std::vector<double> work(pool.size());
    const double t0 = now_s();
    pool.run([&](int tid, int) { work[tid] = probe(iters, tid); });
    const double dt = now_s() - t0;
    double total = 0;
    for (double w : work) total += w;
    if (rep == 0) {
      iters = std::max<int64_t>(1, int64_t(iters * target_s / dt));
      continue;
    }
    best = std::max(best, total / dt);
  }
  return best;
}

// 4× the L3, at least 256 MiB, at most 1 GiB (a sequential sweep over twice the
// cache already misses on every line under LRU-like replacement) and 1/8 of RAM.
size_t read_buffer_bytes() {
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  size_t want = std::max<size_t>(size_t(256) << 20, l3 > 0 ? size_t(l3) * 4 : 0);
  want = std::min<size_t>(want, size_t(1) << 30);
  if (pages > 0 && page > 0) want = std::min<size_t>(want, size_t(pages) * size_t(page) / 8);
  return want & ~size_t(4095);
}

// compute = false measures the read bandwidth only (the compute peaks stay 0).
Peaks measure(bool compute) {
  ThreadPool& pool = cpu_pool();
  const cpu::Isa isa = cpu::isa();
  Peaks p;
  p.isa = cpu::isa_name(isa);
  p.threads = pool.size();
  std::vector<float> fsink(pool.size() * 16);
  std::vector<int32_t> isink(pool.size() * 16);
  // The probe copy for the ISA in use.
  auto pick = [isa](auto avx512, auto avx2, auto scalar) {
    return isa == cpu::Isa::Avx512 ? avx512 : isa == cpu::Isa::Avx2 ? avx2 : scalar;
  };
  auto* fma_probe = pick(cpu::isa_avx512::peak_fma_f32, cpu::isa_avx2::peak_fma_f32, cpu::isa_scalar::peak_fma_f32);
  auto* bf16_probe = pick(cpu::isa_avx512::peak_bf16, cpu::isa_avx2::peak_bf16, cpu::isa_scalar::peak_bf16);
  auto* int8_probe = pick(cpu::isa_avx512::peak_int8, cpu::isa_avx2::peak_int8, cpu::isa_scalar::peak_int8);
  auto fma = [&](int64_t n, int tid) { return fma_probe(n, &fsink[tid * 16]); };
  auto bf16 = [&](int64_t n, int tid) { return bf16_probe(n, &fsink[tid * 16]); };
  auto i8 = [&](int64_t n, int tid) { return int8_probe(n, &isink[tid * 16]); };
  if (compute) {
    p.fp32_flops = best_rate(0.05, fma);
    p.bf16_flops = best_rate(0.05, bf16);
    p.int8_ops = best_rate(0.05, i8);
  }

  // Streaming read of a buffer well beyond the L3 (server L3s reach hundreds of
  // MiB). Each thread first-touches and then reads its own slice.
  const size_t n = read_buffer_bytes() / sizeof(float);
  std::unique_ptr<float[]> buf(new float[n]);
  pool.run([&](int tid, int nt) {
    const size_t b = n * tid / nt, e = n * (tid + 1) / nt;
    for (size_t i = b; i < e; ++i) buf[i] = float(i & 255);
  });
  auto* read_probe = pick(cpu::isa_avx512::peak_read, cpu::isa_avx2::peak_read, cpu::isa_scalar::peak_read);
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const double t0 = now_s();
    pool.run([&](int tid, int nt) {
      const size_t b = n * tid / nt, e = n * (tid + 1) / nt;
      const float* q = &buf[b];
      float& s = fsink[tid * 16];
      s += read_probe(q, e - b);
    });
    best = std::max(best, double(n) * sizeof(float) / (now_s() - t0));
  }
  p.read_bytes = best;
  return p;
}

Napi::Value MeasurePeaks(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* cpu = find_device("cpu");
    const bool read_only = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
    auto out = std::make_shared<Peaks>();
    enqueue(cpu, [out, read_only] { *out = measure(!read_only); });
    return sync_promise(info.Env(), cpu, [out](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("fp32Gflops", out->fp32_flops / 1e9);
      o.Set("bf16Gflops", out->bf16_flops / 1e9);
      o.Set("int8Gops", out->int8_ops / 1e9);
      o.Set("readGBs", out->read_bytes / 1e9);
      o.Set("isa", out->isa);
      o.Set("threads", out->threads);
      return o;
    });
  });
}

// markTime(device, gated): a mark the device records when its stream reaches it
// (enqueued like an op); elapsedMs(a, b): device time from a to b once a sync covered
// both. A gated mark holds the device's worker before recording until releaseMark() (or
// 2 s): the ops enqueued meanwhile are then issued back to back, so on a GPU the time
// from the mark is the device's, not the JS thread's pace of enqueueing them.
const napi_type_tag kTimeMarkTag = {0x6c6c6d6b5f74696dULL, 0x655f6d61726b0002ULL};

struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void release() {
    {
      std::lock_guard<std::mutex> l(mu);
      open = true;
    }
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, std::chrono::seconds(2), [this] { return open; });
  }
};
struct MarkBox {
  std::shared_ptr<TimeMark> mark;
  std::shared_ptr<Gate> gate;  // null: not gated
};

Napi::Value MarkTime(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* dev = parse_device(info[0], "device");
    const bool gated = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    auto box = std::make_unique<MarkBox>();
    box->mark = dev->backend->time_mark();
    if (gated) box->gate = std::make_shared<Gate>();
    enqueue(dev, [m = box->mark, g = box->gate] {
      if (g) g->wait();
      m->record();
    });
    auto ext = Napi::External<MarkBox>::New(info.Env(), box.release(), [](Napi::Env, MarkBox* p) {
      if (p->gate) p->gate->release();  // never leave the worker waiting on a mark JS dropped
      delete p;
    });
    ext.TypeTag(&kTimeMarkTag);
    return ext;
  });
}

MarkBox& unwrap_mark(const Napi::Value& v, const char* what) {
  LLMK_CHECK(v.IsExternal() && v.As<Napi::External<MarkBox>>().CheckTypeTag(&kTimeMarkTag), TypeError, "Expected ",
             what, " to be a time mark from markTime()");
  return *v.As<Napi::External<MarkBox>>().Data();
}

Napi::Value ReleaseMark(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    MarkBox& m = unwrap_mark(info[0], "mark");
    if (m.gate) m.gate->release();
    return info.Env().Undefined();
  });
}

Napi::Value ElapsedMs(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const TimeMark& a = *unwrap_mark(info[0], "start").mark;
    const TimeMark& b = *unwrap_mark(info[1], "end").mark;
    return Napi::Number::New(info.Env(), b.ms_since(a));
  });
}

}  // namespace

void init_bench(Napi::Env env, Napi::Object exports) {
  exports.Set("measurePeaks", Napi::Function::New(env, MeasurePeaks));
  exports.Set("markTime", Napi::Function::New(env, MarkTime));
  exports.Set("releaseMark", Napi::Function::New(env, ReleaseMark));
  exports.Set("elapsedMs", Napi::Function::New(env, ElapsedMs));
}

}  // namespace llmk::napi
