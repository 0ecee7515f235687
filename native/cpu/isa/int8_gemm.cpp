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
#include <immintrin.h>

#include <algorithm>
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
constexpr int64_t kActBlockBytes = 384 * 1024;

// q = round-to-nearest-even(v · inv) in f32, inv = 127 / absmax in f32: the TS
// reference replays exactly these roundings, so integer results can be compared exactly.
inline int32_t quantize(float v, float inv) {
  const float r = std::nearbyint(v * inv);
  return int32_t(std::min(127.f, std::max(-127.f, r)));
}

inline size_t dtype_bytes(int dtype) { return dtype == 0 ? 4 : 2; }

// Σ_k x[i][k] · w[j][k] for an MR × NR tile; xr rows are zero padded to a multiple of 64.
template <int MR, int NR>
inline void tile_dot(const uint8_t* const* xr, const int8_t* const* wr, int64_t K, int32_t (&out)[MR][NR]) {
#if defined(__AVX512VNNI__)
  __m512i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_si512();
  // Weight rows are not padded: the last partial step loads them masked (no fault
  // past the end, zeros in the unused lanes).
  for (int64_t k = 0; k < K; k += 64) {
    const __mmask64 wmask = K - k >= 64 ? ~__mmask64(0) : ~__mmask64(0) >> (64 - (K - k));
    __m512i xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_si512(xr[i] + k);
    for (int j = 0; j < NR; ++j) {
      const __m512i wv = _mm512_maskz_loadu_epi8(wmask, wr[j] + k);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv[i], wv);
    }
  }
  for (int i = 0; i < MR; ++i)
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

// Σ_t xo[i][t] · wo[j][t] over the (16-padded) outlier columns, f32. 16 partial sums
// per product so the loop vectorizes without reassociating a scalar sum.
template <int MR, int NR>
inline void tile_outliers(const float* const* xo, const float* wo, int ldo, float (&s)[MR][NR]) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float part[16] = {};
      const float* wj = wo + size_t(j) * ldo;
      for (int t = 0; t < ldo; t += 16)
        for (int l = 0; l < 16; ++l) part[l] += xo[i][t + l] * wj[t + l];
      float sum = 0;
      for (int l = 0; l < 16; ++l) sum += part[l];
      s[i][j] = sum;
    }
}

// One MR × NR block of y: int8 product, +128 compensation, dequantization, outlier
// product, bias, store. mr/nr ≤ MR/NR are the valid parts of a clamped edge tile.
template <int MR>
void gemm_tile(const Int8Acts& x, const Int8Weights& w, const float* bias, int ydtype, void* y, int64_t m, int mr,
               int64_t n, int nr, const int8_t* const* wr, const float* wo) {
  const uint8_t* xr[MR];
  const float* xor_[MR];
  for (int i = 0; i < MR; ++i) {
    const int64_t row = m + std::min(i, mr - 1);
    xr[i] = x.q + size_t(row) * x.ld;
    xor_[i] = x.xo + size_t(row) * x.ldo;
  }
  int32_t dot[MR][kNR];
  tile_dot<MR, kNR>(xr, wr, x.K, dot);
  float out[MR][kNR] = {};
  if (x.nout > 0) tile_outliers<MR, kNR>(xor_, wo, x.ldo, out);
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
        static_cast<uint16_t*>(y)[at] = f32_to_f16(v);
    }
  }
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
    for (int64_t i = 0; i < n; ++i) {
      const float v = std::fabs(buf[i]);
      flags[k0 + i] |= uint8_t((v >= threshold) & (v <= FLT_MAX));
    }
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
    int nonfinite = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float v = std::fabs(row[k]);
      nonfinite |= !(v <= FLT_MAX);
      am = std::max(am, flags[k] ? 0.f : v);
    }
    uint8_t* q = a.q + size_t(m) * a.ld;
    float* xo = a.xo + size_t(m) * a.ldo;
    if (nonfinite) {
      // The row's output becomes NaN through its scale; q stays a valid integer so
      // the GEMM runs unchanged and no other row is touched.
      std::memset(q, off, size_t(K));
      std::memset(xo, 0, sizeof(float) * size_t(a.nout));
      a.sx[m] = std::numeric_limits<float>::quiet_NaN();
    } else {
      const float inv = am > 0 ? 127.f / am : 0.f;
      for (int64_t k = 0; k < K; ++k) q[k] = uint8_t((flags[k] ? 0 : quantize(row[k], inv)) + off);
      for (int t = 0; t < a.nout; ++t) xo[t] = row[a.cols[t]];
      a.sx[m] = am;
    }
    std::memset(q + K, 0, size_t(a.ld - K));
    std::fill(xo + a.nout, xo + a.ldo, 0.f);
  }
}

void int8_gemm(const Int8Acts& x, const Int8Weights& w, const float* bias, int ydtype, void* y, int64_t n0, int64_t n1) {
  const int64_t M = x.M, K = x.K;
  const int64_t mblock = std::max<int64_t>(kMR, kActBlockBytes / x.ld / kMR * kMR);
  std::vector<float> wo(size_t(kNR) * std::max(x.ldo, 1));
  for (int64_t mb = 0; mb < M; mb += mblock) {
    const int64_t me = std::min(M, mb + mblock);
    for (int64_t n = n0; n < n1; n += kNR) {
      const int nr = int(std::min<int64_t>(kNR, n1 - n));
      const int8_t* wr[kNR];
      for (int j = 0; j < kNR; ++j) wr[j] = w.q + size_t(n + std::min(j, nr - 1)) * K;
      // The panel's weights at the outlier columns, dequantized up to the common
      // sw/127 factor (applied with the int8 part in the epilogue).
      for (int j = 0; j < kNR && x.nout > 0; ++j) {
        float* wj = wo.data() + size_t(j) * x.ldo;
        for (int t = 0; t < x.nout; ++t) wj[t] = float(wr[j][x.cols[t]]);
        std::fill(wj + x.nout, wj + x.ldo, 0.f);
      }
      for (int64_t m = mb; m < me; m += kMR) {
        const int mr = int(std::min<int64_t>(kMR, me - m));
        // A short block (M < kMR, i.e. decode) uses a tile of exactly its rows.
        switch (mr) {
          case 1: gemm_tile<1>(x, w, bias, ydtype, y, m, 1, n, nr, wr, wo.data()); break;
          case 2: gemm_tile<std::min(2, kMR)>(x, w, bias, ydtype, y, m, 2, n, nr, wr, wo.data()); break;
          case 3: gemm_tile<std::min(3, kMR)>(x, w, bias, ydtype, y, m, 3, n, nr, wr, wo.data()); break;
          default: gemm_tile<kMR>(x, w, bias, ydtype, y, m, mr, n, nr, wr, wo.data()); break;
        }
      }
    }
  }
}

}  // namespace llmk::cpu::LLMK_ISA_NS
