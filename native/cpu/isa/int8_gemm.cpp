// LLM.int8() kernels, compiled once per ISA (see CMakeLists): weight and activation
// quantization, and the GEMM whose epilogue dequantizes, adds the outlier columns'
// product and the bias, so no int32 matrix ever reaches memory.
//
// Inner products are taken along K ("dot" form, both operands row-major as stored):
// a register tile of MR activation rows × NR weight rows keeps MR·NR vector
// accumulators and reduces them once per tile. Weights stay in their [N, K] layout
// (no repacked copy next to the model), and for small M the same loop is the GEMV:
// every weight row is read exactly once while the few activation rows sit in L1.
//   AVX-512 VNNI: vpdpbusd multiplies u8 × s8, so activations are stored as
//     xq + 128 and the product is corrected by 128 · Σ_k q[n,k] (rowsum, computed
//     once at quantizeWeight time). 4 × 6 tile: 24 accumulators + 4 x + 1 w = 29 zmm.
//   AVX2: vpmaddubsw(|w|, sign(xq, w)) — |w| ≤ 127 and |xq| ≤ 127 keep the i16 pair
//     sums below 32767 (no saturation), vpmaddwd widens to i32. 2 × 4 tile in 16 ymm.
//   scalar: the same tile loop on plain integers.
// Outlier columns O (f32, typically <= 1% of K) are added in the same epilogue, with
// the panel's int8 weights at O: for M >= 16 as one panel-wide product vectorized over
// rows, for decode (M <= 4) by gathering those weights from the rows the tile just
// streamed, in between per tile from a transposed f32 copy of them.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/int8.h"
#include "cpu/isa/convert_simd.h"

namespace llmk::cpu::LLMK_ISA_NS {

namespace {

#if defined(__AVX512VNNI__)
constexpr int kMR = 4, kNR = 6;
constexpr bool kOffset = true;
#elif defined(__AVX2__)
constexpr int kMR = 2, kNR = 4;
constexpr bool kOffset = false;
#else
constexpr int kMR = 2, kNR = 4;
constexpr bool kOffset = false;
#endif

// Activation rows of one M block stay in L2 (1 MiB per core on Zen 4) while the weight
// panel of the current NR rows streams through L1.
constexpr int64_t kActBlockBytes = 768 * 1024;
// Row stride of the transposed outlier-weight panel (>= kNR).
constexpr int kPanel = 8;
static_assert(kNR <= kPanel);

// q = round-to-nearest-even(v · inv) in f32, inv = 127 / absmax in f32: the TS
// reference replays exactly these roundings, so integer results can be compared exactly.
inline int32_t quantize(float v, float inv) {
  const float r = std::nearbyint(v * inv);
  return int32_t(std::min(127.f, std::max(-127.f, r)));
}

inline size_t dtype_bytes(int dtype) { return dtype == 0 ? 4 : 2; }

// Kept out of line: inlined into the epilogue GCC no longer keeps the accumulators in
// registers.
template <int MR, int NR>
__attribute__((noinline)) void tile_dot(const uint8_t* const* xr, const int8_t* const* wr, int64_t K, int32_t (&out)[MR][NR],
                                        bool prefetch_next = false) {
#if defined(__AVX512VNNI__)
  if constexpr (MR <= 2) {
    // Decode (1–2 activation rows): the tile's weight rows one after another, so each
    // thread reads its weights as one sequential stream — this Zen 5 VM serves that
    // faster than NR interleaved rows (1b int8 decode step, in-process A/B: 26.2 vs
    // 30.8 ms) — with four partial sums per row and the next row in memory prefetched
    // line by line as this one is read (past the last row it touches nothing:
    // prefetches never fault).
    for (int j = 0; j < NR; ++j) {
      const int8_t* w = wr[j];
      const uintptr_t next = reinterpret_cast<uintptr_t>(w) + size_t(K);  // integer: may point past the weights
      __m512i a[MR][4];
      for (int i = 0; i < MR; ++i)
        for (int u = 0; u < 4; ++u) a[i][u] = _mm512_setzero_si512();
      int64_t k = 0;
      for (; k + 256 <= K; k += 256) {
        for (int b = 0; b < 256; b += 64) _mm_prefetch(reinterpret_cast<const char*>(next + size_t(k + b)), _MM_HINT_T0);
        for (int u = 0; u < 4; ++u) {
          const __m512i wv = _mm512_loadu_si512(w + k + 64 * u);
          for (int i = 0; i < MR; ++i) a[i][u] = _mm512_dpbusd_epi32(a[i][u], _mm512_loadu_si512(xr[i] + k + 64 * u), wv);
        }
      }
      for (; k < K; k += 64) {
        const __mmask64 wmask = K - k >= 64 ? ~__mmask64(0) : ~__mmask64(0) >> (64 - (K - k));
        _mm_prefetch(reinterpret_cast<const char*>(next + size_t(k)), _MM_HINT_T0);
        const __m512i wv = _mm512_maskz_loadu_epi8(wmask, w + k);
        for (int i = 0; i < MR; ++i) a[i][0] = _mm512_dpbusd_epi32(a[i][0], _mm512_loadu_si512(xr[i] + k), wv);
      }
      for (int i = 0; i < MR; ++i)
        out[i][j] = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a[i][0], a[i][1]), _mm512_add_epi32(a[i][2], a[i][3])));
    }
    return;
  }
  __m512i acc[MR][NR];
  _Pragma("GCC unroll 32")
  for (int i = 0; i < MR; ++i)
    _Pragma("GCC unroll 32")
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_si512();
  // Weight rows are not padded: the last partial step loads them masked (no fault
  // past the end, zeros in the unused lanes).
  for (int64_t k = 0; k < K; k += 64) {
    const __mmask64 wmask = K - k >= 64 ? ~__mmask64(0) : ~__mmask64(0) >> (64 - (K - k));
    __m512i xv[MR];
    _Pragma("GCC unroll 32")
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_si512(xr[i] + k);
    // The first row block over a weight panel fetches it from memory: the same line of
    // the next panel's rows (NR·K bytes on; rows are contiguous) is prefetched as this
    // one is read (K = N = 4096, in-process A/B: M = 4 515 → 433 µs, M = 8 667 → 504,
    // M = 16 791 → 701, M = 256 −3%). Past the last panel it touches nothing.
    if (prefetch_next)
      _Pragma("GCC unroll 32")
      for (int j = 0; j < NR; ++j)  // address arithmetic on integers: it may point past the weights
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(wr[j]) + size_t(NR) * K + size_t(k)), _MM_HINT_T0);
    _Pragma("GCC unroll 32")
    for (int j = 0; j < NR; ++j) {
      const __m512i wv = _mm512_maskz_loadu_epi8(wmask, wr[j] + k);
      _Pragma("GCC unroll 32")
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv[i], wv);
    }
  }
  _Pragma("GCC unroll 32")
  for (int i = 0; i < MR; ++i)
    _Pragma("GCC unroll 32")
    for (int j = 0; j < NR; ++j) out[i][j] = _mm512_reduce_add_epi32(acc[i][j]);
#elif defined(__AVX2__)
  __m256i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m256i xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr[i] + k));
    for (int j = 0; j < NR; ++j) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr[j] + k));
      const __m256i aw = _mm256_abs_epi8(wv);
      for (int i = 0; i < MR; ++i) {
        const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv[i], wv));
        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(p, ones));
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[i][j]), _mm256_extracti128_si256(acc[i][j], 1));
      const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
      int32_t t = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
      const int8_t* xs = reinterpret_cast<const int8_t*>(xr[i]);
      for (int64_t kk = k; kk < K; ++kk) t += int32_t(xs[kk]) * wr[j][kk];
      out[i][j] = t;
    }
#else
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i][j] = 0;
  for (int64_t k = 0; k < K; ++k)
    for (int i = 0; i < MR; ++i) {
      const int32_t xv = int8_t(xr[i][k]);
      for (int j = 0; j < NR; ++j) out[i][j] += xv * wr[j][k];
    }
#endif
}

// Σ_t xo[i][t] · wo[t][j] over the outlier columns, f32: the panel's weights at those
// columns are kept transposed ([t][8], j < NR used), so each column is one broadcast
// of x times one 8-lane vector — no horizontal sums, cost ∝ |O|.
using f32x8 = float __attribute__((vector_size(32)));

template <int MR>
inline void tile_outliers(const float* const* xo, const float* wo, int nout, f32x8 (&s)[MR]) {
  // Two accumulator sets (even / odd columns): MR chains alone would leave the FMA
  // units waiting on the 4-cycle latency.
  f32x8 odd[MR];
  for (int i = 0; i < MR; ++i) s[i] = odd[i] = f32x8{};
  int t = 0;
  for (; t + 2 <= nout; t += 2) {
    f32x8 w0, w1;
    std::memcpy(&w0, wo + size_t(t) * kPanel, sizeof w0);
    std::memcpy(&w1, wo + size_t(t + 1) * kPanel, sizeof w1);
    for (int i = 0; i < MR; ++i) {
      s[i] += xo[i][t] * w0;
      odd[i] += xo[i][t + 1] * w1;
    }
  }
  if (t < nout) {
    f32x8 w0;
    std::memcpy(&w0, wo + size_t(t) * kPanel, sizeof w0);
    for (int i = 0; i < MR; ++i) s[i] += xo[i][t] * w0;
  }
  for (int i = 0; i < MR; ++i) s[i] += odd[i];
}

// Decode (M <= kMR: one tile per panel): the outlier weights are gathered straight from
// the panel rows — vpgatherdd loads 4 bytes at each outlier column, the low byte is
// kept — and dotted with x[:, O]; no transposed panel is built. The gather reads up to
// 3 bytes past a row: the cpu allocator leaves 64 bytes of slack after every buffer.
#if defined(__AVX512F__)
constexpr bool kGatherOutliers = true;
template <int MR>
inline void tile_outliers_gather(const float* const* xo, const int8_t* const* wr, const int32_t* cols, int nout,
                                 f32x8 (&s)[MR]) {
  for (int j = 0; j < kNR; ++j) {
    __m512 acc[MR];
    for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
    for (int t = 0; t < nout; t += 16) {
      const __mmask16 mk = nout - t >= 16 ? __mmask16(0xffff) : __mmask16((1u << (nout - t)) - 1);
      const __m512i idx = _mm512_maskz_loadu_epi32(mk, cols + t);
      const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mk, idx, wr[j], 1);
      const __m512 wv = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(g, 24), 24));
      for (int i = 0; i < MR; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, xo[i] + t), wv, acc[i]);
    }
    for (int i = 0; i < MR; ++i) s[i][j] = _mm512_reduce_add_ps(acc[i]);
  }
}
#else
constexpr bool kGatherOutliers = false;
template <int MR>
inline void tile_outliers_gather(const float* const*, const int8_t* const*, const int32_t*, int, f32x8 (&)[MR]) {}
#endif

// For M >= kPanelRows the outlier product of a whole panel is taken at once, vectorized
// over 16 rows of x (xot is transposed): every lane is used, where the per-tile form
// above uses kNR of 8 — 2.7× fewer FMAs at M = 256. yo[j][m - mb] receives it.
constexpr int64_t kPanelRows = 16;
using f32x16 = float __attribute__((vector_size(64)));

void panel_outliers(const Int8Acts& x, int64_t mb, int64_t me, const float* wo, float* yo, int64_t ldy) {
  for (int64_t m = mb; m < me; m += 16) {  // xot rows are padded to a multiple of 16
    f32x16 acc[kNR] = {};
    for (int t = 0; t < x.nout; ++t) {
      f32x16 xv;
      std::memcpy(&xv, x.xot + size_t(t) * x.ldt + m, sizeof xv);
      for (int j = 0; j < kNR; ++j) acc[j] += xv * wo[size_t(t) * kPanel + j];
    }
    for (int j = 0; j < kNR; ++j) std::memcpy(yo + size_t(j) * ldy + (m - mb), &acc[j], sizeof acc[j]);
  }
}

// The outlier side of one weight panel (kNR rows): their weights at the outlier
// columns (wo) and, for M >= kPanelRows, the panel's whole outlier product (yo).
// Prepared after the panel's first tile, once its rows sit in L1: gathered before,
// each outlier column costs a cache miss per row.
struct PanelOutliers {
  const Int8Acts& x;
  const int8_t* const* wr;
  int64_t mb, me, ldy;
  bool by_panel;
  float* wo;
  float* yo;
  bool ready = false;

  void prepare() {
    if (ready) return;
    ready = true;
    // Dequantized up to the common sw/127 factor, applied with the int8 part.
    for (int t = 0; t < x.nout; ++t)
      for (int j = 0; j < kNR; ++j) wo[size_t(t) * kPanel + j] = float(wr[j][x.cols[t]]);
    if (by_panel) panel_outliers(x, mb, me, wo, yo, ldy);
  }
};

// One MR × NR block of y: int8 product, +128 compensation, dequantization, outlier
// product, bias, store. mr/nr ≤ MR/NR are the valid parts of a clamped edge tile.
template <int MR>
void gemm_tile(const Int8Acts& x, const Int8Weights& w, const float* bias, int ydtype, void* y, int64_t m, int mr,
               int64_t n, int nr, const int8_t* const* wr, PanelOutliers& panel) {
  const uint8_t* xr[MR];
  const float* xor_[MR];
  for (int i = 0; i < MR; ++i) {
    const int64_t row = m + std::min(i, mr - 1);
    xr[i] = x.q + size_t(row) * x.ld;
    xor_[i] = x.xo + size_t(row) * x.nout;
  }
  int32_t dot[MR][kNR];
  tile_dot<MR, kNR>(xr, wr, x.K, dot, m == panel.mb);
  f32x8 out[MR] = {};
  if (x.nout > 0 && kGatherOutliers && !panel.by_panel && panel.me - panel.mb <= kMR) {
    tile_outliers_gather<MR>(xor_, wr, x.cols, x.nout, out);
  } else if (x.nout > 0) {
    panel.prepare();
    if (panel.by_panel) {
      const float* yo = panel.yo + (m - panel.mb);
      for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j) out[i][j] = yo[size_t(j) * panel.ldy + i];
    } else {
      tile_outliers<MR>(xor_, panel.wo, x.nout, out);
    }
  }
  const int64_t N = w.N;
  for (int i = 0; i < mr; ++i) {
    const float ax = x.sx[m + i] * (1.f / 127.f);
    for (int j = 0; j < nr; ++j) {
      const int32_t d = kOffset ? dot[i][j] - 128 * w.rowsum[n + j] : dot[i][j];
      float v = (float(d) * ax + out[i][j]) * (w.scale[n + j] * (1.f / 127.f));
      if (bias) v += bias[n + j];
      const size_t at = size_t(m + i) * N + size_t(n + j);
      if (ydtype == 0)
        static_cast<float*>(y)[at] = v;
      else
#if defined(__F16C__)
        static_cast<uint16_t*>(y)[at] = _cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT);
#else
        static_cast<uint16_t*>(y)[at] = f32_to_f16(v);
#endif
    }
  }
}

// Row helpers of the activation passes. The AVX-512 copy handles 16 floats per step
// (GCC does not vectorize the float max reduction or the masked quantize by itself);
// every copy finishes the row with the scalar loop, which is the definition.
// Sets flags[i] |= 1 where threshold <= |row[i]| <= FLT_MAX.
inline void row_outlier_flags(const float* row, int64_t n, float threshold, uint8_t* flags) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 t = _mm512_set1_ps(threshold), big = _mm512_set1_ps(FLT_MAX);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(row + i));
    const __mmask16 hit = _mm512_cmp_ps_mask(v, t, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, big, _CMP_LE_OQ);
    __m128i* f = reinterpret_cast<__m128i*>(flags + i);
    _mm_storeu_si128(f, _mm_or_si128(_mm_loadu_si128(f), _mm_maskz_set1_epi8(hit, 1)));
  }
#endif
  for (; i < n; ++i) {
    const float v = std::fabs(row[i]);
    flags[i] |= uint8_t((v >= threshold) & (v <= FLT_MAX));
  }
}

// max |row[k]| over the columns with flags[k] == 0; false if the row holds NaN/±Inf.
inline bool row_absmax(const float* row, const uint8_t* flags, int64_t K, float* absmax) {
  int64_t k = 0;
  float am = 0;
  bool finite = true;
#if defined(__AVX512F__)
  const __m512 big = _mm512_set1_ps(FLT_MAX);
  __m512 vmax = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (; k + 16 <= K; k += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(row + k));
    const __mmask16 fin = _mm512_cmp_ps_mask(v, big, _CMP_LE_OQ);
    const __mmask16 keep = _mm_cmpeq_epi8_mask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(flags + k)),
                                               _mm_setzero_si128());
    bad |= __mmask16(~fin);
    vmax = _mm512_mask_max_ps(vmax, fin & keep, vmax, v);
  }
  am = _mm512_reduce_max_ps(vmax);
  finite = bad == 0;
#endif
  for (; k < K; ++k) {
    const float v = std::fabs(row[k]);
    finite &= v <= FLT_MAX;
    if (!flags[k] && v > am) am = v;
  }
  *absmax = am;
  return finite;
}

// q[k] = quantize(row[k], inv) + off, or off where flags[k] (bytes, wrapping).
inline void row_quantize(const float* row, const uint8_t* flags, int64_t K, float inv, uint8_t off, uint8_t* q) {
  int64_t k = 0;
#if defined(__AVX512F__)
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), voff = _mm512_set1_epi32(off);
  for (; k + 16 <= K; k += 16) {
    const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(row + k), vinv),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i v = _mm512_min_epi32(hi, _mm512_max_epi32(lo, _mm512_cvtps_epi32(r)));
    const __mmask16 keep = _mm_cmpeq_epi8_mask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(flags + k)),
                                               _mm_setzero_si128());
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k),
                     _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_maskz_mov_epi32(keep, v), voff)));
  }
#endif
  for (; k < K; ++k) q[k] = uint8_t((flags[k] ? 0 : quantize(row[k], inv)) + off);
}

}  // namespace

bool int8_gemm_wants_offset() { return kOffset; }

int64_t int8_quantize_weight_rows(int dtype, const void* w, int64_t K, int64_t n0, int64_t n1, int8_t* q, float* scale,
                                  int32_t* rowsum) {
  std::vector<float> row(static_cast<size_t>(K));
  int64_t bad = 0;
  for (int64_t n = n0; n < n1; ++n) {
    load_f32_n(dtype, static_cast<const char*>(w) + size_t(n) * K * dtype_bytes(dtype), row.data(), int(K));
    float am = 0;
    int64_t nonfinite = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::fabs(row[k]);
      nonfinite += !(v <= FLT_MAX);
      am = std::max(am, v);
    }
    int8_t* qr = q + size_t(n) * K;
    if (nonfinite) {
      bad += nonfinite;
      std::memset(qr, 0, size_t(K));
      scale[n] = std::numeric_limits<float>::quiet_NaN();
      rowsum[n] = 0;
      continue;
    }
    const float inv = am > 0 ? 127.f / am : 0.f;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int32_t v = quantize(row[k], inv);
      qr[k] = int8_t(v);
      sum += v;
    }
    scale[n] = am;
    rowsum[n] = sum;
  }
  return bad;
}

void int8_outlier_flags(int dtype, const void* x, int64_t M, int64_t K, float threshold, int64_t k0, int64_t k1,
                        uint8_t* flags) {
  const int64_t n = k1 - k0;
  std::vector<float> buf(static_cast<size_t>(n));
  std::memset(flags + k0, 0, size_t(n));
  for (int64_t m = 0; m < M; ++m) {
    load_f32_n(dtype, static_cast<const char*>(x) + size_t(m * K + k0) * dtype_bytes(dtype), buf.data(), int(n));
    row_outlier_flags(buf.data(), n, threshold, flags + k0);
  }
}

void int8_quantize_act_rows(int dtype, const void* x, const uint8_t* flags, bool offset128, int64_t m0, int64_t m1,
                            const Int8Acts& a) {
  const int64_t K = a.K;
  const uint8_t off = offset128 ? 128 : 0;
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t m = m0; m < m1; ++m) {
    load_f32_n(dtype, static_cast<const char*>(x) + size_t(m) * K * dtype_bytes(dtype), row.data(), int(K));
    float am = 0;
    const bool finite = row_absmax(row.data(), flags, K, &am);
    uint8_t* q = a.q + size_t(m) * a.ld;
    float* xo = a.xo + size_t(m) * a.nout;
    if (!finite) {
      // The row's output becomes NaN through its scale; q stays a valid integer so
      // the GEMM runs unchanged and no other row is touched.
      std::memset(q, off, size_t(K));
      std::memset(xo, 0, sizeof(float) * size_t(a.nout));
      for (int t = 0; t < a.nout; ++t) a.xot[size_t(t) * a.ldt + m] = 0.f;
      a.sx[m] = std::numeric_limits<float>::quiet_NaN();
    } else {
      const float inv = am > 0 ? 127.f / am : 0.f;
      row_quantize(row.data(), flags, K, inv, off, q);
      for (int t = 0; t < a.nout; ++t) xo[t] = a.xot[size_t(t) * a.ldt + m] = row[a.cols[t]];
      a.sx[m] = am;
    }
    std::memset(q + K, 0, size_t(a.ld - K));
  }
}

void int8_gemm(const Int8Acts& x, const Int8Weights& w, const float* bias, int ydtype, void* y, int64_t n0, int64_t n1) {
  const int64_t M = x.M, K = x.K;
  // A multiple of 16 (and so of kMR): panel_outliers reads xot in 16-row steps from mb.
  const int64_t mblock = std::max<int64_t>(16, kActBlockBytes / x.ld / 16 * 16);
  std::vector<float> wo(size_t(kPanel) * std::max(x.nout, 1), 0.f);
  const bool by_panel = x.nout > 0 && M >= kPanelRows;
  const int64_t ldy = (mblock + 15) / 16 * 16;
  std::vector<float> yo(by_panel ? size_t(kNR) * ldy : 0);
  for (int64_t mb = 0; mb < M; mb += mblock) {
    const int64_t me = std::min(M, mb + mblock);
    for (int64_t n = n0; n < n1; n += kNR) {
      const int nr = int(std::min<int64_t>(kNR, n1 - n));
      const int8_t* wr[kNR];
      for (int j = 0; j < kNR; ++j) wr[j] = w.q + size_t(n + std::min(j, nr - 1)) * K;
      PanelOutliers panel{x, wr, mb, me, ldy, by_panel, wo.data(), yo.data()};
      for (int64_t m = mb; m < me; m += kMR) {
        const int mr = int(std::min<int64_t>(kMR, me - m));
        // A short block (M < kMR, i.e. decode) uses a tile of exactly its rows (mr <= kMR:
        // where kMR = 2 the larger cases never occur, std::min keeps them compiling small).
        switch (mr) {
          case 1: gemm_tile<1>(x, w, bias, ydtype, y, m, 1, n, nr, wr, panel); break;
          case 2: gemm_tile<std::min(2, kMR)>(x, w, bias, ydtype, y, m, 2, n, nr, wr, panel); break;
          case 3: gemm_tile<std::min(3, kMR)>(x, w, bias, ydtype, y, m, 3, n, nr, wr, panel); break;
          default: gemm_tile<kMR>(x, w, bias, ydtype, y, m, mr, n, nr, wr, panel); break;
        }
      }
    }
  }
}

}  // namespace llmk::cpu::LLMK_ISA_NS
