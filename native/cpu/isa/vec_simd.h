// Portable f32 vectors for per-ISA kernels (include from native/cpu/isa/*.cpp only):
// GCC vector extensions W lanes wide for the -m flags of this copy (16 with AVX-512,
// 8 with AVX2, 4 otherwise), loads/stores, tree reductions and a vector exp2.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace llmk::cpu::LLMK_ISA_NS {

#if defined(__AVX512F__)
constexpr int W = 16;
#elif defined(__AVX2__)
constexpr int W = 8;
#else
constexpr int W = 4;
#endif
typedef float vf __attribute__((vector_size(W * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(W * sizeof(int32_t))));

inline vf ld(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void st(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// A broadcast (vf{} + x would cost a scalar add before it: x + 0 is not x for −0).
#if defined(__AVX512F__)
inline vf splat(float x) { return _mm512_set1_ps(x); }
#elif defined(__AVX__)
inline vf splat(float x) { return _mm256_set1_ps(x); }
#else
inline vf splat(float x) { return _mm_set1_ps(x); }
#endif

// Horizontal reductions as trees (a serial lane-by-lane chain costs ~16 dependent adds).
#if defined(__AVX512F__)
inline __m128 fold128(vf v) {
  const __m256 x = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  return _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
}
inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
inline float hmax(vf v) { return _mm512_reduce_max_ps(v); }
#elif defined(__AVX2__)
inline __m128 fold128(vf v) { return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); }
inline float hsum(vf v) {
  const __m128 x = fold128(v);
  const __m128 y = _mm_hadd_ps(x, x);
  return _mm_cvtss_f32(_mm_hadd_ps(y, y));
}
inline float hmax(vf v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
}
#else
inline float hsum(vf v) { return (v[0] + v[2]) + (v[1] + v[3]); }
inline float hmax(vf v) {
  const float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3];
  return a > b ? a : b;
}
#endif

// 2^x, lane-wise. x = n + f with n = round(x) and f ∈ [−0.5, 0.5]; 2^f by its Taylor
// series to degree 7 (relative error < 1e-8, below f32 rounding); 2^n built in the
// exponent field. x <= −127 (−inf included) gives exactly 0, x >= 127.5 gives +inf, NaN
// stays NaN.
inline vf exp2v(vf x) {
  x = x < -127.f ? splat(-127.f) : x;
  x = x > 128.f ? splat(128.f) : x;
  const vf r = (x + 12582912.f) - 12582912.f;  // round to nearest (1.5 · 2^23 trick)
  const vf f = x - r;
  vf p = splat(1.5252733804059841e-05f);
  p = p * f + 1.5403530393381609e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.6181291076284772e-03f;
  p = p * f + 5.5504108664821580e-02f;
  p = p * f + 2.4022650695910071e-01f;
  p = p * f + 6.9314718055994531e-01f;
  p = p * f + 1.0f;
  const vi bits = (__builtin_convertvector(r, vi) + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace llmk::cpu::LLMK_ISA_NS
