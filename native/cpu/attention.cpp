// FlashAttention forward and paged flash-decoding on the cpu device: splits the work
// into tasks of (sequence, kv head, block of queries or of keys) and runs the per-ISA
// tile kernel (isa/attention.cpp) on the thread pool. Tasks are taken from a shared
// counter, heaviest first, because causal tasks differ in cost by up to Sk/tile.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "cpu/attention.h"
#include "cpu/convert.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk::cpu {

#define LLMK_DECLARE_ATTN(NS)                                        \
  namespace NS {                                                     \
  void attend_rows(const AttnRowsJob& a, float* scratch);            \
  void attend_rows_naive(const AttnRowsJob& a, float* scratch);      \
  void attend_decode(const AttnRowsJob& a, float* scratch);          \
  }
LLMK_DECLARE_ATTN(isa_scalar)
LLMK_DECLARE_ATTN(isa_avx2)
LLMK_DECLARE_ATTN(isa_avx512)
#undef LLMK_DECLARE_ATTN

namespace {

constexpr double kLn2 = 0.69314718055994530942;
constexpr double kLog2e = 1.44269504088896340736;

int dtype_code(DType t) { return t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2; }

// The copy of a kernel for the ISA in use.
template <class F>
F by_isa(F avx512, F avx2, F scalar) {
  return isa() == Isa::Avx512 ? avx512 : isa() == Isa::Avx2 ? avx2 : scalar;
}

// Runs fn(task, scratch) for task in [0, n) on every pool thread; each thread owns one
// scratch buffer of `floats` f32 (64-byte aligned).
template <class Fn>
void run_tasks(int64_t n, int64_t floats, const Fn& fn) {
  // Kept per thread and never zeroed: decode calls this per token, where a fresh
  // zero-filled buffer (page faults included) would cost as much as the attention.
  auto scratch = [floats]() {
    thread_local std::unique_ptr<float[]> buf;
    thread_local int64_t cap = 0;
    if (cap < floats + 16) {
      buf.reset(new float[size_t(floats) + 16]);
      cap = floats + 16;
    }
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.get()) + 63) & ~uintptr_t(63));
  };
  if (n == 1) {  // one task: no hand-off to the pool (a short decode step)
    fn(0, scratch());
    return;
  }
  std::atomic<int64_t> next{0};
  cpu_pool().run([&](int, int) {
    float* s = scratch();
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(t, s);
  });
}

// Sequence boundaries: uniform (dense batch) or read from cuSeqlens-style offsets.
std::vector<int64_t> offsets(const Tensor* cu, int64_t batch, int64_t len, int64_t total, const char* name) {
  std::vector<int64_t> o(size_t(batch) + 1);
  if (!cu) {
    for (int64_t b = 0; b <= batch; ++b) o[size_t(b)] = b * len;
    return o;
  }
  const int32_t* c = cu->data<int32_t>();
  for (int64_t b = 0; b <= batch; ++b) o[size_t(b)] = c[b];
  LLMK_CHECK(o[0] == 0, RangeError, "attention: expected ", name, "[0] = 0 but received ", o[0]);
  for (int64_t b = 1; b <= batch; ++b)
    LLMK_CHECK(o[size_t(b)] >= o[size_t(b) - 1], RangeError, "attention: expected non-decreasing ", name, " but ", name,
               "[", b, "] = ", o[size_t(b)], " < ", name, "[", b - 1, "] = ", o[size_t(b) - 1]);
  LLMK_CHECK(o[size_t(batch)] == total, RangeError, "attention: expected ", name, "[", batch, "] = ", total,
             " (the packed token count) but received ", o[size_t(batch)]);
  return o;
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* cu_q, const Tensor* cu_k,
               const AttentionParams& p, const Tensor& out, const Tensor* lse) {
  const bool varlen = cu_q != nullptr;
  const int rank = q.rank();
  const int Hq = int(q.dim(rank - 2)), D = int(q.dim(rank - 1)), Hkv = int(k.dim(rank - 2)), G = Hq / Hkv;
  const int64_t B = varlen ? cu_q->dim(0) - 1 : q.dim(0);
  const int64_t Tq = varlen ? q.dim(0) : B * q.dim(1), Tk = varlen ? k.dim(0) : B * k.dim(1);
  const std::vector<int64_t> qo = offsets(cu_q, B, varlen ? 0 : q.dim(1), Tq, "cuSeqlensQ");
  const std::vector<int64_t> ko = offsets(cu_k, B, varlen ? 0 : k.dim(1), Tk, "cuSeqlensK");
  const size_t es = dtype_size(q.dtype);
  const int dt = dtype_code(q.dtype);
  // Rows of one task: bq queries × the G q heads that share a kv head.
  const int bq = std::max(1, kAttnTaskRows / G);
  struct Task {
    int64_t b, kvh, q0, cost;
  };
  std::vector<Task> tasks;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t sq = qo[size_t(b) + 1] - qo[size_t(b)], sk = ko[size_t(b) + 1] - ko[size_t(b)];
    for (int64_t q0 = 0; q0 < sq; q0 += bq) {
      const int64_t keys = p.causal ? std::clamp<int64_t>(q0 + bq + sk - sq, 0, sk) : sk;
      for (int64_t h = 0; h < Hkv; ++h) tasks.push_back({b, h, q0, keys + 1});
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& x, const Task& y) { return x.cost > y.cost; });
  auto* kernel = by_isa(isa_avx512::attend_rows, isa_avx2::attend_rows, isa_scalar::attend_rows);
  const int rows_max = G * bq;
  const float scale_log2 = float(double(p.scale) * kLog2e);
  float* lse_out = lse ? lse->data<float>() : nullptr;
  run_tasks(int64_t(tasks.size()), attn_scratch_floats(rows_max, D) + 6 * int64_t(rows_max), [&](int64_t ti, float* scratch) {
    const Task& t = tasks[size_t(ti)];
    const int64_t sq = qo[size_t(t.b) + 1] - qo[size_t(t.b)], sk = ko[size_t(t.b) + 1] - ko[size_t(t.b)];
    const int nq = int(std::min<int64_t>(bq, sq - t.q0)), M = G * nq;
    // Per-row pointers and limits live at the end of this thread's scratch.
    float* tail = scratch + attn_scratch_floats(rows_max, D);
    auto* qrows = reinterpret_cast<const char**>(tail);
    auto* orows = reinterpret_cast<void**>(tail + 2 * rows_max);
    auto* last = reinterpret_cast<int64_t*>(tail + 4 * rows_max);
    float lse2[kAttnTaskRows * 2 + 1];
    std::vector<float> lse_big;
    float* l2 = lse2;
    if (M > int(std::size(lse2))) {
      lse_big.resize(size_t(M));
      l2 = lse_big.data();
    }
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < nq; ++i) {
        const int r = g * nq + i;
        const int64_t tok = qo[size_t(t.b)] + t.q0 + i, h = t.kvh * G + g;
        qrows[r] = q.data<char>() + (size_t(tok) * Hq + size_t(h)) * D * es;
        orows[r] = out.data<char>() + (size_t(tok) * Hq + size_t(h)) * D * es;
        // Bottom-right alignment: query i of sq sees keys j <= i + sk − sq.
        last[r] = p.causal ? t.q0 + i + sk - sq : sk - 1;
      }
    AttnRowsJob job;
    job.dtype = dt;
    job.D = D;
    job.scale_log2 = scale_log2;
    job.rows = M;
    job.q = qrows;
    job.last_key = last;
    const int64_t row_bytes = int64_t(Hkv) * D * int64_t(es);
    job.k.base = k.data<char>() + ko[size_t(t.b)] * row_bytes + t.kvh * D * int64_t(es);
    job.v.base = v.data<char>() + ko[size_t(t.b)] * row_bytes + t.kvh * D * int64_t(es);
    job.k.stride = job.v.stride = row_bytes;
    job.k_begin = 0;
    job.k_end = sk;
    job.out_dtype = dt;
    job.out = orows;
    job.lse2 = l2;
    kernel(job, scratch);
    if (!lse_out) return;
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < nq; ++i) {
        const int64_t h = t.kvh * G + g, qi = t.q0 + i;
        // Dense: [B, Hq, Sq]; packed: [Hq, Tq] (flash-attn's layouts).
        const int64_t idx = varlen ? h * Tq + qo[size_t(t.b)] + qi : (t.b * Hq + h) * sq + qi;
        lse_out[idx] = float(double(l2[g * nq + i]) * kLn2);
      }
  });
}

// Merges the ns split results of sequence t for heads [h0, h1): out = Σ_s 2^(lse_s −
// lse_max) · o_s / Σ_s 2^(lse_s − lse_max) (lse in base 2); one split only writes the LSE.
void combine_splits(const float* part_o, const float* lse2, int64_t p0, int64_t ns, int64_t t, int64_t h0, int64_t h1,
                    int64_t Hq, int D, const Tensor& out, float* lse_out) {
  float acc[256];  // D ≤ 256 (checked by the bindings)
  for (int64_t h = h0; h < h1; ++h) {
    const int64_t th = t * Hq + h;
    float mx = -INFINITY;
    for (int64_t s = 0; s < ns; ++s) mx = std::max(mx, lse2[s * Hq + h]);
    if (ns == 1) {
      if (lse_out) lse_out[th] = float(double(mx) * kLn2);
      continue;
    }
    std::fill(acc, acc + D, 0.f);
    double wsum = 0;
    for (int64_t s = 0; s < ns; ++s) {
      const float ls = lse2[s * Hq + h];
      if (ls == -INFINITY) continue;
      const float w = std::exp2(ls - mx);
      wsum += w;
      const float* o = part_o + size_t((p0 + s) * Hq + h) * D;
      for (int d = 0; d < D; ++d) acc[d] += w * o[d];
    }
    const float inv = wsum > 0 ? float(1.0 / wsum) : 0.f;
    for (int d = 0; d < D; ++d) store_f32(out.raw(), out.dtype, th * D + d, acc[d] * inv);
    if (lse_out) lse_out[th] = wsum > 0 ? float((double(mx) + std::log2(wsum)) * kLn2) : -INFINITY;
  }
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const AttentionParams& p, const Tensor& out, const Tensor* lse) {
  const int64_t T = q.dim(0), num_pages = k_cache.dim(0), page_size = k_cache.dim(1), max_pages = block_table.dim(1);
  const int Hq = int(q.dim(1)), D = int(q.dim(2)), Hkv = int(k_cache.dim(2));
  const int32_t* lens = seq_lens.data<int32_t>();
  const int32_t* table = block_table.data<int32_t>();
  for (int64_t t = 0; t < T; ++t) {
    LLMK_CHECK(lens[t] >= 0 && int64_t(lens[t]) <= max_pages * page_size, RangeError,
               "pagedAttention: expected seqLens[", t, "] in [0, ", max_pages * page_size,
               "] (blockTable columns × pageSize) but received ", lens[t]);
    for (int64_t i = 0; i < (lens[t] + page_size - 1) / page_size; ++i) {
      const int32_t pg = table[t * max_pages + i];
      LLMK_CHECK(pg >= 0 && pg < num_pages, RangeError, "pagedAttention: expected page indices in [0, ", num_pages,
                 ") but blockTable[", t, "][", i, "] = ", pg);
    }
  }
  const int threads = cpu_pool().size();
  // A task is one split of one sequence over every kv head at once: each cached token
  // row (Hkv·D contiguous elements) is then read in order, once. Splits are whole key
  // tiles. Auto: the batch's tiles shared out in `threads` equal chunks (at least 4
  // tiles each), each sequence split into as many as it fills: one split per thread for
  // one long sequence, none for many short ones, a long one beside short ones split so
  // no thread is left with it alone. Every split costs its own Q setup, partial output
  // and combine: Sk = 1024 with 2 threads, 8 splits (4 per thread, the old rule) took
  // 121 µs, 2 splits 113.
  std::vector<int> splits(static_cast<size_t>(T));
  std::vector<int64_t> part_base(size_t(T) + 1, 0);
  // Keys a row sees: [first(t), lens[t]) — all of them, or the last p.window (sliding window).
  auto first = [&](int64_t t) -> int64_t { return p.window > 0 ? std::max<int64_t>(0, lens[t] - p.window) : 0; };
  auto tiles_of = [&](int64_t t) {
    return std::max<int64_t>(1, (lens[t] - first(t) + kAttnDecodeKeys - 1) / kAttnDecodeKeys);
  };
  int64_t total_tiles = 0;
  for (int64_t t = 0; t < T; ++t) total_tiles += tiles_of(t);
  const int64_t chunk = std::max<int64_t>(4, (total_tiles + threads - 1) / threads);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t tiles = tiles_of(t);
    const int64_t s = p.num_splits > 0 ? p.num_splits : (tiles + chunk - 1) / chunk;
    splits[size_t(t)] = int(std::clamp<int64_t>(s, 1, tiles));
    part_base[size_t(t) + 1] = part_base[size_t(t)] + splits[size_t(t)];
  }
  const int64_t nparts = part_base[size_t(T)];
  // Partial results of split sequences: f32 [part, Hq, D] outputs and [part, Hq] lse2,
  // every element written by its task. Kept between calls (ops run on the device's one
  // worker thread): a fresh 100 KB+ vector per decode step is an mmap, page faults and
  // a zero fill, as long as the attention itself at Sk ≈ 1000.
  thread_local std::vector<float> part_o, part_lse;
  if (part_lse.size() < size_t(nparts * Hq)) part_lse.resize(size_t(nparts * Hq));
  if (nparts > T && part_o.size() < size_t(nparts * Hq * D)) part_o.resize(size_t(nparts * Hq * D));
  // The lambdas below run on pool threads: they must not name the thread_locals.
  float* const part_o_p = part_o.data();
  float* const part_lse_p = part_lse.data();
  std::vector<std::pair<int64_t, int>> tasks;
  tasks.reserve(size_t(nparts));
  for (int64_t t = 0; t < T; ++t)
    for (int s = 0; s < splits[size_t(t)]; ++s) tasks.emplace_back(t, s);
  const size_t es = dtype_size(q.dtype);
  const int dt = dtype_code(q.dtype);
  const int64_t row_bytes = int64_t(Hkv) * D * int64_t(es);
  auto* kernel = by_isa(isa_avx512::attend_decode, isa_avx2::attend_decode, isa_scalar::attend_decode);
  const float scale_log2 = float(double(p.scale) * kLog2e);
  const int64_t kernel_floats = attn_decode_scratch_floats(Hq, D);
  // One pool job: the split tasks, then the combine tasks (a sequence's heads in groups
  // of kCombineHeads), claimed in that order; a combine task waits for the splits of
  // its sequence still running (claimed already, so the wait is short).
  constexpr int kCombineHeads = 16;
  const int64_t cgroups = (Hq + kCombineHeads - 1) / kCombineHeads;
  std::unique_ptr<std::atomic<int>[]> done(new std::atomic<int>[size_t(T)]);
  for (int64_t t = 0; t < T; ++t) done[size_t(t)].store(0, std::memory_order_relaxed);
  float* lse_out = lse ? lse->data<float>() : nullptr;
  // Sequences with a combine step: split ones, or all when the LSE is asked for.
  std::vector<int64_t> to_combine;
  for (int64_t t = 0; t < T; ++t)
    if (splits[size_t(t)] > 1 || lse_out) to_combine.push_back(t);
  const int64_t ncombine = int64_t(to_combine.size()) * cgroups;
  run_tasks(nparts + ncombine, kernel_floats + 6 * int64_t(Hq), [&](int64_t ti, float* scratch) {
    if (ti >= nparts) {
      const int64_t t = to_combine[size_t((ti - nparts) / cgroups)], h0 = (ti - nparts) % cgroups * kCombineHeads;
      while (done[size_t(t)].load(std::memory_order_acquire) < splits[size_t(t)]) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      combine_splits(part_o_p, part_lse_p + part_base[size_t(t)] * Hq, part_base[size_t(t)], splits[size_t(t)], t, h0,
                     std::min<int64_t>(Hq, h0 + kCombineHeads), Hq, D, out, lse_out);
      return;
    }
    const auto [t, split] = tasks[size_t(ti)];
    const int64_t len = lens[t], ns = splits[size_t(t)], f = first(t);
    const int64_t tiles = (len - f + kAttnDecodeKeys - 1) / kAttnDecodeKeys;
    const int64_t k0 = f + tiles * split / ns * kAttnDecodeKeys, k1 = std::min(len, f + tiles * (split + 1) / ns * kAttnDecodeKeys);
    float* tail = scratch + kernel_floats;
    auto* qrows = reinterpret_cast<const char**>(tail);
    auto* orows = reinterpret_cast<void**>(tail + 2 * Hq);
    auto* last = reinterpret_cast<int64_t*>(tail + 4 * Hq);
    const int64_t part = part_base[size_t(t)] + split;
    // Row h is q head h: head-major over kv heads, as the kernel expects.
    for (int h = 0; h < Hq; ++h) {
      qrows[h] = q.data<char>() + (size_t(t) * Hq + size_t(h)) * D * es;
      orows[h] = ns > 1 ? static_cast<void*>(part_o_p + (size_t(part) * Hq + size_t(h)) * D)
                        : static_cast<void*>(out.data<char>() + (size_t(t) * Hq + size_t(h)) * D * es);
      last[h] = len - 1;
    }
    AttnRowsJob job;
    job.dtype = dt;
    job.D = D;
    job.scale_log2 = scale_log2;
    job.rows = Hq;
    job.heads = Hkv;
    job.q = qrows;
    job.last_key = last;
    job.k.base = k_cache.data<char>();
    job.v.base = v_cache.data<char>();
    job.k.stride = job.v.stride = row_bytes;
    job.k.pages = job.v.pages = table + t * max_pages;
    job.k.page_size = job.v.page_size = page_size;
    job.k_begin = k0;
    job.k_end = k1;
    job.out_dtype = ns > 1 ? 0 : dt;
    job.out = orows;
    job.lse2 = part_lse_p + size_t(part) * Hq;
    kernel(job, scratch);
    done[size_t(t)].fetch_add(1, std::memory_order_release);
  });
}

// One task per (batch, q head) holding its whole [Sq, Sk] score matrix, as a
// matmul → softmax → matmul attention does.
void attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, const Tensor& out) {
  const int64_t B = q.dim(0), Sq = q.dim(1), Sk = k.dim(1);
  const int Hq = int(q.dim(2)), D = int(q.dim(3)), Hkv = int(k.dim(2)), G = Hq / Hkv;
  const size_t es = dtype_size(q.dtype);
  const int dt = dtype_code(q.dtype);
  auto* kernel = by_isa(isa_avx512::attend_rows_naive, isa_avx2::attend_rows_naive, isa_scalar::attend_rows_naive);
  // Scores [Sk, Sq] (rows padded to 16), K and V, Q rows, Q transposed, O rows, m, l,
  // ones, key limits.
  const int64_t dp = (D + 15) / 16 * 16, mp = (Sq + 15) / 16 * 16;
  const int64_t kernel_floats = (Sk * mp + 2 * Sk * dp + 2 * Sq * dp + dp * mp + 4 * mp + 16) / 16 * 16;
  const int64_t row_bytes = int64_t(Hkv) * D * int64_t(es);
  run_tasks(B * Hq, kernel_floats + 6 * Sq, [&](int64_t ti, float* scratch) {
    const int64_t b = ti / Hq, h = ti % Hq, kvh = h / G;
    float* tail = scratch + kernel_floats;
    auto* qrows = reinterpret_cast<const char**>(tail);
    auto* orows = reinterpret_cast<void**>(tail + 2 * Sq);
    auto* last = reinterpret_cast<int64_t*>(tail + 4 * Sq);
    for (int64_t i = 0; i < Sq; ++i) {
      const size_t tok = size_t(b * Sq + i);
      qrows[i] = q.data<char>() + (tok * Hq + size_t(h)) * D * es;
      orows[i] = out.data<char>() + (tok * Hq + size_t(h)) * D * es;
      last[i] = p.causal ? i + Sk - Sq : Sk - 1;
    }
    AttnRowsJob job;
    job.dtype = dt;
    job.D = D;
    job.scale_log2 = float(double(p.scale) * kLog2e);
    job.rows = int(Sq);
    job.q = qrows;
    job.last_key = last;
    job.k.base = k.data<char>() + b * Sk * row_bytes + kvh * D * int64_t(es);
    job.v.base = v.data<char>() + b * Sk * row_bytes + kvh * D * int64_t(es);
    job.k.stride = job.v.stride = row_bytes;
    job.k_end = Sk;
    job.out_dtype = dt;
    job.out = orows;
    kernel(job, scratch);
  });
}

}  // namespace llmk::cpu
