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
  float combine_row(const float* part_o, size_t o_stride, const float* lse2, size_t l_stride, int ns, int D, \
                    int out_dtype, void* out);                       \
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
  cpu_pool().run_shared([&](int, int) {
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

// Shortest run of prefill-chunk rows of pagedAttention given to the prefill tile kernel.
constexpr int64_t kPrefillRun = 8;

// A prefill task: up to bq consecutive query tokens of one sequence (`seq`, from its
// q0-th) × the G q heads of one kv head, for the tile kernel (attend_rows).
struct PrefillTask {
  int64_t seq, kvh, q0, nq, cost;
};

// Runs prefill tasks, most expensive first. token(t, i) gives query token i of task t
// as {row in q and out, last key it sees}; keys(t, job) points job.k / job.v at the
// task's kv head and sets job.k_end; lse(t, token, h, value) stores a natural-log LSE
// (called only when `want_lse`).
template <class Token, class Keys, class Lse>
void run_prefill(std::vector<PrefillTask>& tasks, const Tensor& q, const Tensor& out, int G, float scale_log2,
                 bool want_lse, const Token& token, const Keys& keys, const Lse& lse) {
  const int rank = q.rank();
  const int Hq = int(q.dim(rank - 2)), D = int(q.dim(rank - 1));
  const size_t es = dtype_size(q.dtype);
  const int dt = dtype_code(q.dtype);
  std::stable_sort(tasks.begin(), tasks.end(), [](const PrefillTask& x, const PrefillTask& y) { return x.cost > y.cost; });
  int rows_max = 1;
  for (const PrefillTask& t : tasks) rows_max = std::max(rows_max, int(G * t.nq));
  auto* kernel = by_isa(isa_avx512::attend_rows, isa_avx2::attend_rows, isa_scalar::attend_rows);
  run_tasks(int64_t(tasks.size()), attn_scratch_floats(rows_max, D) + 6 * int64_t(rows_max), [&](int64_t ti, float* scratch) {
    const PrefillTask& t = tasks[size_t(ti)];
    const int nq = int(t.nq), M = G * nq;
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
    for (int i = 0; i < nq; ++i) {
      const auto [tok, lim] = token(t, i);
      for (int g = 0; g < G; ++g) {
        const int r = g * nq + i;
        const int64_t h = t.kvh * G + g;
        qrows[r] = q.data<char>() + (size_t(tok) * Hq + size_t(h)) * D * es;
        orows[r] = out.data<char>() + (size_t(tok) * Hq + size_t(h)) * D * es;
        last[r] = lim;
      }
    }
    AttnRowsJob job;
    job.dtype = dt;
    job.D = D;
    job.scale_log2 = scale_log2;
    job.rows = M;
    job.q = qrows;
    job.last_key = last;
    job.k_begin = 0;
    keys(t, job);
    job.out_dtype = dt;
    job.out = orows;
    job.lse2 = l2;
    kernel(job, scratch);
    if (!want_lse) return;
    for (int i = 0; i < nq; ++i) {
      const int64_t tok = token(t, i).first;
      for (int g = 0; g < G; ++g) lse(t, tok, t.kvh * G + g, float(double(l2[g * nq + i]) * kLn2));
    }
  });
}

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* cu_q, const Tensor* cu_k,
               const AttentionParams& p, const Tensor& out, const Tensor* lse) {
  const bool varlen = cu_q != nullptr;
  const int rank = q.rank();
  const int Hq = int(q.dim(rank - 2)), D = int(q.dim(rank - 1)), Hkv = int(k.dim(rank - 2)), G = Hq / Hkv;
  const int64_t B = varlen ? cu_q->dim(0) - 1 : q.dim(0);
  const int64_t Tq = varlen ? q.dim(0) : B * q.dim(1), Tk = varlen ? k.dim(0) : B * k.dim(1);
  const std::vector<int64_t> qo = offsets(cu_q, B, varlen ? 0 : q.dim(1), Tq, "cuSeqlensQ");
  const std::vector<int64_t> ko = offsets(cu_k, B, varlen ? 0 : k.dim(1), Tk, "cuSeqlensK");
  const int64_t row_bytes = int64_t(Hkv) * D * int64_t(dtype_size(q.dtype));
  // Rows of one task: bq queries × the G q heads that share a kv head.
  const int bq = std::max(1, kAttnTaskRows / G);
  std::vector<PrefillTask> tasks;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t sq = qo[size_t(b) + 1] - qo[size_t(b)], sk = ko[size_t(b) + 1] - ko[size_t(b)];
    for (int64_t q0 = 0; q0 < sq; q0 += bq) {
      const int64_t keys = p.causal ? std::clamp<int64_t>(q0 + bq + sk - sq, 0, sk) : sk;
      for (int64_t h = 0; h < Hkv; ++h) tasks.push_back({b, h, q0, std::min<int64_t>(bq, sq - q0), keys + 1});
    }
  }
  float* lse_out = lse ? lse->data<float>() : nullptr;
  auto len_q = [&](int64_t b) { return qo[size_t(b) + 1] - qo[size_t(b)]; };
  auto len_k = [&](int64_t b) { return ko[size_t(b) + 1] - ko[size_t(b)]; };
  run_prefill(
      tasks, q, out, G, float(double(p.scale) * kLog2e), lse_out != nullptr,
      [&](const PrefillTask& t, int i) {
        // Bottom-right alignment: query i of sq sees keys j <= i + sk − sq.
        const int64_t qi = t.q0 + i;
        return std::pair<int64_t, int64_t>{qo[size_t(t.seq)] + qi, p.causal ? qi + len_k(t.seq) - len_q(t.seq) : len_k(t.seq) - 1};
      },
      [&](const PrefillTask& t, AttnRowsJob& job) {
        const int64_t off = ko[size_t(t.seq)] * row_bytes + t.kvh * D * int64_t(dtype_size(q.dtype));
        job.k.base = k.data<char>() + off;
        job.v.base = v.data<char>() + off;
        job.k.stride = job.v.stride = row_bytes;
        job.k_end = len_k(t.seq);
      },
      [&](const PrefillTask& t, int64_t tok, int64_t h, float value) {
        // Dense: [B, Hq, Sq]; packed: [Hq, Tq] (flash-attn's layouts).
        const int64_t qi = tok - qo[size_t(t.seq)];
        lse_out[varlen ? h * Tq + tok : (t.seq * Hq + h) * len_q(t.seq) + qi] = value;
      });
}

// Merges the ns split results of sequence t (outputs part_o [ns, Hq, D], base-2 LSEs
// lse2 [ns, Hq]) for heads [h0, h1): out = Σ_s 2^(lse_s − lse_max) · o_s / Σ_s
// 2^(lse_s − lse_max); one split only writes the LSE.
void combine_splits(const float* part_o, const float* lse2, int64_t ns, int64_t t, int64_t h0, int64_t h1, int64_t Hq,
                    int D, const Tensor& out, float* lse_out) {
  auto* row = by_isa(isa_avx512::combine_row, isa_avx2::combine_row, isa_scalar::combine_row);
  const size_t es = dtype_size(out.dtype);
  for (int64_t h = h0; h < h1; ++h) {
    const int64_t th = t * Hq + h;
    float l2 = lse2[h];
    if (ns > 1)
      l2 = row(part_o + size_t(h) * D, size_t(Hq) * D, lse2 + h, size_t(Hq), int(ns), D, dtype_code(out.dtype),
               out.data<char>() + size_t(th) * D * es);
    if (lse_out) lse_out[th] = l2 == -INFINITY ? -INFINITY : float(double(l2) * kLn2);
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
  const size_t es = dtype_size(q.dtype);
  const int64_t row_bytes = int64_t(Hkv) * D * int64_t(es);
  const float scale_log2 = float(double(p.scale) * kLog2e);
  float* lse_out = lse ? lse->data<float>() : nullptr;
  // Prefill chunks: runs of consecutive rows of one sequence (lengths rising by one,
  // block-table rows agreeing on the pages each uses), as the model's prefill passes
  // them, go to the prefill tile kernel as causal blocks of bq tokens: a K/V tile is
  // then converted once for a block of queries instead of read once per query.
  // Sliding windows keep the per-row path (the tile kernel has no per-row start).
  std::vector<char> in_run(size_t(T), 0);
  std::vector<std::pair<int64_t, int64_t>> runs;  // first row, rows
  std::vector<PrefillTask> ptasks;
  if (p.window == 0) {
    const int G = Hq / Hkv, bq = std::max(1, kAttnTaskRows / G);
    for (int64_t t = 0; t < T;) {
      int64_t e = t + 1;
      while (e < T && lens[e] == lens[e - 1] + 1 &&
             std::equal(table + (e - 1) * max_pages, table + (e - 1) * max_pages + (lens[e - 1] + page_size - 1) / page_size,
                        table + e * max_pages))
        ++e;
      if (e - t >= kPrefillRun) {
        std::fill(in_run.begin() + t, in_run.begin() + e, 1);
        for (int64_t q0 = 0; q0 < e - t; q0 += bq) {
          const int64_t nq = std::min<int64_t>(bq, e - t - q0);
          for (int64_t h = 0; h < Hkv; ++h) ptasks.push_back({int64_t(runs.size()), h, q0, nq, lens[t + q0 + nq - 1] + 1});
        }
        runs.emplace_back(t, e - t);
      }
      t = e;
    }
  }
  if (!ptasks.empty())
    run_prefill(
        ptasks, q, out, Hq / Hkv, scale_log2, lse_out != nullptr,
        [&](const PrefillTask& t, int i) {
          const int64_t tok = runs[size_t(t.seq)].first + t.q0 + i;
          return std::pair<int64_t, int64_t>{tok, lens[tok] - 1};
        },
        [&](const PrefillTask& t, AttnRowsJob& job) {
          const auto [t0, n] = runs[size_t(t.seq)];
          job.k.base = k_cache.data<char>() + int64_t(t.kvh) * D * int64_t(es);
          job.v.base = v_cache.data<char>() + int64_t(t.kvh) * D * int64_t(es);
          job.k.stride = job.v.stride = row_bytes;
          job.k.pages = job.v.pages = table + (t0 + n - 1) * max_pages;  // the run's last row covers every key
          job.k.page_size = job.v.page_size = page_size;
          job.k_end = lens[t0 + t.q0 + t.nq - 1];
        },
        [&](const PrefillTask&, int64_t tok, int64_t h, float value) { lse_out[tok * Hq + h] = value; });
  const int threads = cpu_pool().size();
  // A task is one split of one sequence over every kv head at once (unless there are
  // fewer splits than threads: see hgroups): each cached token row (Hkv·D contiguous
  // elements) is then read in order, once. Splits are whole key tiles. Auto: the
  // batch's tiles shared out in `threads` equal chunks (at least 4 tiles each), each
  // sequence split into as many as it fills: one split per thread for one long
  // sequence, none for many short ones, a long one beside short ones split so no thread
  // is left with it alone. Every split costs its own Q setup, partial output and
  // combine: Sk = 1024 with 2 threads, 8 splits (4 per thread, the old rule) took 121 µs,
  // 2 splits 113.
  std::vector<int> splits(static_cast<size_t>(T));
  std::vector<int64_t> part_base(size_t(T) + 1, 0);
  // Keys a row sees: [first(t), lens[t]) — all of them, or the last p.window (sliding window).
  auto first = [&](int64_t t) -> int64_t { return p.window > 0 ? std::max<int64_t>(0, lens[t] - p.window) : 0; };
  auto tiles_of = [&](int64_t t) {
    return std::max<int64_t>(1, (lens[t] - first(t) + kAttnDecodeKeys - 1) / kAttnDecodeKeys);
  };
  int64_t total_tiles = 0;
  for (int64_t t = 0; t < T; ++t) total_tiles += in_run[size_t(t)] ? 0 : tiles_of(t);
  const int64_t chunk = std::max<int64_t>(4, (total_tiles + threads - 1) / threads);
  bool any_split = false;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t tiles = tiles_of(t);
    const int64_t s = p.num_splits > 0 ? p.num_splits : (tiles + chunk - 1) / chunk;
    splits[size_t(t)] = in_run[size_t(t)] ? 0 : int(std::clamp<int64_t>(s, 1, tiles));  // 0: done by a prefill task
    any_split |= splits[size_t(t)] > 1;
    part_base[size_t(t) + 1] = part_base[size_t(t)] + splits[size_t(t)];
  }
  const int64_t nparts = part_base[size_t(T)];
  // Partial results of split sequences: f32 [part, Hq, D] outputs and [part, Hq] lse2,
  // every element written by its task. Kept between calls (ops run on the device's one
  // worker thread): a fresh 100 KB+ vector per decode step is an mmap, page faults and
  // a zero fill, as long as the attention itself at Sk ≈ 1000.
  thread_local std::vector<float> part_o, part_lse;
  if (part_lse.size() < size_t(nparts * Hq)) part_lse.resize(size_t(nparts * Hq));
  if (any_split && part_o.size() < size_t(nparts * Hq * D)) part_o.resize(size_t(nparts * Hq * D));
  // The lambdas below run on pool threads: they must not name the thread_locals.
  float* const part_o_p = part_o.data();
  float* const part_lse_p = part_lse.data();
  // Fewer parts than threads (short sequences: a part is at least 4 key tiles): each part
  // is also split over kv heads, contiguous groups of them (heads are independent: the
  // same arithmetic per head). Hq = 32, Hkv = 8, D = 128, f16, 2 threads: Sk = 128 40-41
  // -> 28-29 µs a call, Sk = 64 21-22 -> 15-20.
  const int hgroups = nparts > 0 && nparts < threads && Hkv > 1
                          ? int(std::min<int64_t>(Hkv, (threads + nparts - 1) / nparts))
                          : 1;
  struct DecodeTask {
    int64_t t;
    int split, group;
  };
  std::vector<DecodeTask> tasks;
  tasks.reserve(size_t(nparts * hgroups));
  for (int64_t t = 0; t < T; ++t)
    for (int s = 0; s < splits[size_t(t)]; ++s)
      for (int g = 0; g < hgroups; ++g) tasks.push_back({t, s, g});
  const int64_t ntasks = int64_t(tasks.size());
  const int dt = dtype_code(q.dtype);
  auto* kernel = by_isa(isa_avx512::attend_decode, isa_avx2::attend_decode, isa_scalar::attend_decode);
  const int64_t kernel_floats = attn_decode_scratch_floats(Hq, D);
  // One pool job: the split tasks, then the combine tasks (a sequence's heads in groups
  // of kCombineHeads), claimed in that order; a combine task waits for the splits of
  // its sequence still running (claimed already, so the wait is short).
  constexpr int kCombineHeads = 16;
  const int64_t cgroups = (Hq + kCombineHeads - 1) / kCombineHeads;
  std::unique_ptr<std::atomic<int>[]> done(new std::atomic<int>[size_t(T)]);
  for (int64_t t = 0; t < T; ++t) done[size_t(t)].store(0, std::memory_order_relaxed);
  // Sequences with a combine step: split ones, or all when the LSE is asked for.
  std::vector<int64_t> to_combine;
  for (int64_t t = 0; t < T; ++t)
    if (splits[size_t(t)] > 1 || (lse_out && splits[size_t(t)] == 1)) to_combine.push_back(t);
  const int64_t ncombine = int64_t(to_combine.size()) * cgroups;
  if (ntasks + ncombine == 0) return;
  run_tasks(ntasks + ncombine, kernel_floats + 6 * int64_t(Hq), [&](int64_t ti, float* scratch) {
    if (ti >= ntasks) {
      const int64_t t = to_combine[size_t((ti - ntasks) / cgroups)], h0 = (ti - ntasks) % cgroups * kCombineHeads;
      while (done[size_t(t)].load(std::memory_order_acquire) < splits[size_t(t)] * hgroups) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      const int64_t p0 = part_base[size_t(t)];
      combine_splits(splits[size_t(t)] > 1 ? part_o_p + p0 * Hq * D : nullptr, part_lse_p + p0 * Hq, splits[size_t(t)], t, h0,
                     std::min<int64_t>(Hq, h0 + kCombineHeads), Hq, D, out, lse_out);
      return;
    }
    const auto [t, split, group] = tasks[size_t(ti)];
    const int g0 = Hkv * group / hgroups, g1 = Hkv * (group + 1) / hgroups, G = Hq / Hkv;
    const int r0 = g0 * G, rows = (g1 - g0) * G;  // this task's q heads
    const int64_t len = lens[t], ns = splits[size_t(t)], f = first(t);
    const int64_t tiles = (len - f + kAttnDecodeKeys - 1) / kAttnDecodeKeys;
    const int64_t k0 = f + tiles * split / ns * kAttnDecodeKeys, k1 = std::min(len, f + tiles * (split + 1) / ns * kAttnDecodeKeys);
    float* tail = scratch + kernel_floats;
    auto* qrows = reinterpret_cast<const char**>(tail);
    auto* orows = reinterpret_cast<void**>(tail + 2 * Hq);
    auto* last = reinterpret_cast<int64_t*>(tail + 4 * Hq);
    const int64_t part = part_base[size_t(t)] + split;
    // Row i is q head r0 + i: head-major over kv heads, as the kernel expects.
    for (int i = 0; i < rows; ++i) {
      const size_t h = size_t(r0 + i);
      qrows[i] = q.data<char>() + (size_t(t) * Hq + h) * D * es;
      orows[i] = ns > 1 ? static_cast<void*>(part_o_p + (size_t(part) * Hq + h) * D)
                        : static_cast<void*>(out.data<char>() + (size_t(t) * Hq + h) * D * es);
      last[i] = len - 1;
    }
    AttnRowsJob job;
    job.dtype = dt;
    job.D = D;
    job.scale_log2 = scale_log2;
    job.rows = rows;
    job.heads = g1 - g0;
    job.q = qrows;
    job.last_key = last;
    job.k.base = k_cache.data<char>() + int64_t(g0) * D * int64_t(es);
    job.v.base = v_cache.data<char>() + int64_t(g0) * D * int64_t(es);
    job.k.stride = job.v.stride = row_bytes;
    job.k.pages = job.v.pages = table + t * max_pages;
    job.k.page_size = job.v.page_size = page_size;
    job.k_begin = k0;
    job.k_end = k1;
    job.out_dtype = ns > 1 ? 0 : dt;
    job.out = orows;
    job.lse2 = part_lse_p + size_t(part) * Hq + r0;
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
  // Scores [Sk, Sq], K and V, Q rows, Q transposed, O rows, m, l, ones, key limits
  // (strides as attend_rows_naive gives them: attn_walk_stride).
  const int64_t dp = (D + 15) / 16 * 16, mp = attn_walk_stride(Sq), ts = attn_walk_stride(D);
  const int64_t kernel_floats = (Sk * mp + 2 * Sk * ts + 2 * Sq * dp + dp * mp + 4 * mp + 16) / 16 * 16;
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
