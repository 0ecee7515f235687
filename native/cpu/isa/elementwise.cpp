// The small ops a decoder needs, on the cpu device, compiled once per ISA (see
// CMakeLists; cpu/elementwise.cpp picks the copy): f32 math whatever the storage
// dtype, rows spread over the pool. f16/bf16 rows are converted in bulk (F16C /
// AVX-512) and exponentials are the vector exp2 of vec_simd.h — a decode step runs
// these on rows of 2–6 K elements ~150 times, where per-element scalar conversions and
// libm calls cost more than the data movement.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/convert.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"
#include "cpu/isa/convert_simd.h"
#include "cpu/isa/vec_simd.h"

namespace llmk::cpu::LLMK_ISA_NS {
namespace {

constexpr float kLog2e = 1.44269504088896340736f;

int float_code(DType t) { return t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2; }

constexpr int64_t kGrain = 1 << 14;  // elements: below this one thread is faster

// Converts a row segment to f32 in `buf` (or points at it directly when f32).
inline const float* as_f32(const void* p, DType t, int64_t off, int64_t n, float* buf) {
  if (t == DType::F32) return static_cast<const float*>(p) + off;
  load_f32_n(float_code(t), static_cast<const uint16_t*>(p) + off, buf, int(n));
  return buf;
}
inline void from_f32(void* p, DType t, int64_t off, int64_t n, const float* v) {
  if (t == DType::F32) {
    if (static_cast<float*>(p) + off != v) std::memcpy(static_cast<float*>(p) + off, v, n * 4);
    return;
  }
  store_f32_n(float_code(t), v, static_cast<uint16_t*>(p) + off, int(n));
}

// y[i] = g[i] · sigmoid(g[i]) · u[i] = g / (1 + 2^(−g·log2 e)) · u.
inline void silu_mul_n(const float* g, const float* u, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const vf gv = ld(g + i);
    st(y + i, gv / (1.f + exp2v(gv * -kLog2e)) * ld(u + i));
  }
  for (; i < n; ++i) y[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

// y[i] = exp(x[i] − mx); returns Σ y in f64: f32 lane sums over blocks of 64
// vectors (≤ 64 positive terms a lane: ~4e-6 relative at worst), each block's total
// added in f64 — one horizontal sum per vector was a serial chain that made this
// op run at a quarter of the read bandwidth.
inline double exp_sub_n(const float* x, float mx, float* y, int64_t n) {
  double sum = 0;
  int64_t i = 0;
  while (i + W <= n) {
    vf acc = vf{};
    for (const int64_t end = std::min(n - W, i + 63 * W); i <= end; i += W) {
      const vf e = exp2v((ld(x + i) - mx) * kLog2e);
      st(y + i, e);
      acc += e;
    }
    sum += double(hsum(acc));
  }
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  return sum;
}

// Per-thread f32 scratch rows, grown once and reused: a fresh zeroed vector per call
// cost more than the op itself on decode-sized rows.
inline float* scratch(int which, int64_t n) {
  thread_local std::vector<float> buf[3];
  if (int64_t(buf[which].size()) < n) buf[which].resize(size_t(n));
  return buf[which].data();
}

// Runs fn(row) for rows [0, rows), rows of `cols` elements, spread over the pool.
template <class F>
void for_rows(int64_t rows, int64_t cols, F&& fn) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1));
  cpu_pool().parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    float *s0 = scratch(0, cols), *s1 = scratch(1, cols), *s2 = scratch(2, cols);
    for (int64_t r = b; r < e; ++r) fn(r, s0, s1, s2);
  });
}

}  // namespace

// Flat loop over [0, n) in segments of <= kSeg elements that do not cross a row of
// the broadcast operand (period `period`); fn(offset, period_offset, len, scratch...).
template <class F>
void for_segments(int64_t n, int64_t period, F&& fn) {
  constexpr int64_t kSeg = 4096;
  cpu_pool().parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    float *s0 = scratch(0, kSeg), *s1 = scratch(1, kSeg), *s2 = scratch(2, kSeg);
    for (int64_t i = b; i < e;) {
      const int64_t p = i % period, len = std::min({e - i, kSeg, period - p});
      fn(i, p, len, s0, s1, s2);
      i += len;
    }
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y) {
  for_segments(a.numel(), b.numel(), [&](int64_t off, int64_t boff, int64_t len, float* s0, float* s1, float* s2) {
    const float* av = as_f32(a.raw(), a.dtype, off, len, s0);
    const float* bv = as_f32(b.raw(), b.dtype, boff, len, s1);
    if (op == BinaryOp::Add)
      for (int64_t i = 0; i < len; ++i) s2[i] = av[i] + bv[i];
    else
      for (int64_t i = 0; i < len; ++i) s2[i] = av[i] * bv[i];
    from_f32(y.raw(), y.dtype, off, len, s2);
  });
}

void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) {
  const int64_t cols = w.numel(), rows = x.numel() / cols;
  for_rows(rows, cols, [&](int64_t r, float* s0, float* s1, float* s2) {
    const float* xv = as_f32(x.raw(), x.dtype, r * cols, cols, s0);
    const float* wv = as_f32(w.raw(), w.dtype, 0, cols, s1);
    // f64 sums (a long row of f32 squares loses digits otherwise), 8 independent
    // partial sums so the adds pipeline and vectorize instead of one serial chain.
    double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8)
      for (int j = 0; j < 8; ++j) part[j] += double(xv[i + j]) * xv[i + j];
    for (; i < cols; ++i) part[0] += double(xv[i]) * xv[i];
    const double ss = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    const float inv = float(1.0 / std::sqrt(ss / double(cols) + double(eps)));
    for (int64_t c = 0; c < cols; ++c) s2[c] = xv[c] * inv * wv[c];
    from_f32(y.raw(), y.dtype, r * cols, cols, s2);
  });
}

void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& y) {
  const int64_t n = gate.numel();
  for_segments(n, n, [&](int64_t off, int64_t, int64_t len, float* s0, float* s1, float* s2) {
    const float* g = as_f32(gate.raw(), gate.dtype, off, len, s0);
    const float* u = as_f32(up.raw(), up.dtype, off, len, s1);
    silu_mul_n(g, u, s2, len);
    from_f32(y.raw(), y.dtype, off, len, s2);
  });
}

void embedding(const Tensor& table, const Tensor& ids, const Tensor& y) {
  const int64_t vocab = table.dim(0), cols = table.numel() / vocab, T = ids.numel();
  const int32_t* id = ids.data<int32_t>();
  for (int64_t t = 0; t < T; ++t)
    LLMK_CHECK(id[t] >= 0 && id[t] < vocab, RangeError, "embedding: expected ids in [0, ", vocab,
               ") but ids[", t, "] = ", id[t]);
  const size_t row_bytes = size_t(cols) * dtype_size(table.dtype);
  if (table.dtype == y.dtype) {
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(y.data<char>() + t * row_bytes, table.data<char>() + size_t(id[t]) * row_bytes, row_bytes);
    return;
  }
  for_rows(T, cols, [&](int64_t t, float* s0, float*, float*) {
    const float* v = as_f32(table.raw(), table.dtype, int64_t(id[t]) * cols, cols, s0);
    from_f32(y.raw(), y.dtype, t * cols, cols, v);
  });
}

void softmax(const Tensor& x, const Tensor& y) {
  const int64_t cols = x.dim(-1), rows = cols ? x.numel() / cols : 0;
  for_rows(rows, cols, [&](int64_t r, float* s0, float*, float* s2) {
    const float* v = as_f32(x.raw(), x.dtype, r * cols, cols, s0);
    // f32 output rows are written in place, others converted from the scratch row.
    float* o = y.dtype == DType::F32 ? y.data<float>() + r * cols : s2;
    // The max as a vector (NaN never wins a comparison, as in the scalar form).
    vf mv = splat(-INFINITY);
    int64_t i = 0;
    for (; i + W <= cols; i += W) {
      const vf e = ld(v + i);
      mv = e > mv ? e : mv;
    }
    float mx = hmax(mv);
    for (; i < cols; ++i) mx = std::max(mx, v[i]);
    if (mx == -INFINITY) mx = 0.f;  // all -inf: exp gives 0s, sum 0 -> NaN like torch
    const double sum = exp_sub_n(v, mx, o, cols);
    const float inv = float(1.0 / sum);
    for (i = 0; i < cols; ++i) o[i] *= inv;
    if (o == s2) from_f32(y.raw(), y.dtype, r * cols, cols, s2);
  });
}

void argmax(const Tensor& x, const Tensor& y) {
  const int64_t cols = x.dim(-1), rows = cols ? x.numel() / cols : 0;
  int32_t* out = y.data<int32_t>();
  for_rows(rows, cols, [&](int64_t r, float* s0, float*, float*) {
    const float* v = as_f32(x.raw(), x.dtype, r * cols, cols, s0);
    int64_t best = 0;
    for (int64_t i = 1; i < cols; ++i) {
      if (std::isnan(v[best])) break;
      if (std::isnan(v[i]) || v[i] > v[best]) best = i;
    }
    out[r] = int32_t(best);
  });
}

void cast(const Tensor& x, const Tensor& y) {
  if (x.dtype == y.dtype) {
    std::memmove(y.raw(), x.raw(), x.nbytes());
    return;
  }
  const int64_t n = x.numel();
  cpu_pool().parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    if (x.dtype == DType::I32 && y.dtype == DType::I8) {  // exact integer path
      for (int64_t i = b; i < e; ++i) y.data<int8_t>()[i] = saturate_int<int8_t>(x.data<int32_t>()[i]);
      return;
    }
    for (int64_t i = b; i < e; ++i) store_f32(y.raw(), y.dtype, i, load_f32(x.raw(), x.dtype, i));
  });
}

void fill(const Tensor& y, double value) {
  const int64_t n = y.numel();
  if (n == 0) return;
  const size_t es = dtype_size(y.dtype);
  unsigned char pattern[4];
  if (y.dtype == DType::I32) {
    const int32_t v = saturate_int<int32_t>(value);
    std::memcpy(pattern, &v, 4);
  } else {
    store_f32(pattern, y.dtype, 0, float(value));
  }
  cpu_pool().parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    char* p = y.data<char>();
    for (int64_t i = b; i < e; ++i) std::memcpy(p + i * es, pattern, es);
  });
}

}  // namespace llmk::cpu::LLMK_ISA_NS
