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

// ---- Many dot products at once: W accumulators → one vector of their sums ------------
// A transpose-add tree: each step pairs vector i with vector i + n/2 and, in every
// segment of width w, adds the low and high halves of both (two two-input shuffles and
// one add), so n vectors of segments w wide become n/2 vectors of segments w/2 wide.
// After log2 W steps one vector is left, lane L holding the sum of accumulator own[L];
// a last shuffle puts accumulator i in lane i. W − 1 adds and 2W − 1 shuffles in all,
// against W·log2 W shuffle-add pairs for W separate horizontal sums.
struct LaneTree {
  static constexpr int kSteps = W == 16 ? 4 : W == 8 ? 3 : 2;
  int32_t lo[kSteps][W], hi[kSteps][W], fin[W];
};
constexpr LaneTree make_lane_tree() {
  LaneTree t{};
  int own[W][W] = {};  // own[i][s]: accumulator summed in segment s of vector i
  for (int i = 0; i < W; ++i) own[i][0] = i;
  for (int step = 0, n = W, w = W; step < LaneTree::kSteps; ++step, n /= 2, w /= 2) {
    for (int L = 0; L < W; ++L) {
      const int seg = L / w, in = L % w, h = w / 2;
      const int from_b = in >= h ? W : 0, lane = seg * w + (in >= h ? in - h : in);
      t.lo[step][L] = from_b + lane;
      t.hi[step][L] = from_b + lane + h;
    }
    int next[W][W] = {};
    for (int i = 0; i < n / 2; ++i)
      for (int s = 0; s < W / w; ++s) {
        next[i][2 * s] = own[i][s];
        next[i][2 * s + 1] = own[i + n / 2][s];
      }
    for (int i = 0; i < W; ++i)
      for (int s = 0; s < W; ++s) own[i][s] = next[i][s];
  }
  for (int L = 0; L < W; ++L) t.fin[own[0][L]] = L;
  return t;
}
inline constexpr LaneTree kLaneTree = make_lane_tree();
template <int N>
inline vi lane_mask(const int32_t (&m)[N]) {
  vi v;
  std::memcpy(&v, m, sizeof v);
  return v;
}
template <int Step>
inline void lane_tree_step(vf* a, int n) {
  const vi lo = lane_mask(kLaneTree.lo[Step]), hi = lane_mask(kLaneTree.hi[Step]);
  for (int i = 0; i < n / 2; ++i) a[i] = __builtin_shuffle(a[i], a[i + n / 2], lo) + __builtin_shuffle(a[i], a[i + n / 2], hi);
}
// Lane i of the result = Σ lanes of a[i]; a is consumed.
inline vf sum_lanes(vf* a) {
  lane_tree_step<0>(a, W);
  lane_tree_step<1>(a, W / 2);
  if constexpr (LaneTree::kSteps > 2) lane_tree_step<2>(a, W / 4);
  if constexpr (LaneTree::kSteps > 3) lane_tree_step<3>(a, W / 8);
  return __builtin_shuffle(a[0], lane_mask(kLaneTree.fin));
}

// Whether any lane of a comparison result is set.
inline bool any_lane(vi m) {
#if defined(__AVX512F__)
  return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
#elif defined(__AVX__)
  return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#else
  return _mm_movemask_ps(_mm_castsi128_ps((__m128i)m)) != 0;
#endif
}

// Reductions within groups of G consecutive lanes (G a power of two ≤ W), the result
// in every lane of the group: log2 G butterfly steps (lane L meets lane L xor s).
struct XorMasks {
  int32_t m[LaneTree::kSteps][W];  // lane L meets lane L xor 2^k, for 2^k < W
};
constexpr XorMasks make_xor_masks() {
  XorMasks x{};
  for (int k = 0; k < LaneTree::kSteps; ++k)
    for (int L = 0; L < W; ++L) x.m[k][L] = L ^ (1 << k);
  return x;
}
inline constexpr XorMasks kXorMasks = make_xor_masks();
template <int G>
inline vf group_max(vf v) {
  static_assert(G >= 1 && G <= W && (G & (G - 1)) == 0, "groups are a power of two lanes");
  for (int k = 0; (1 << k) < G; ++k) {
    const vf o = __builtin_shuffle(v, lane_mask(kXorMasks.m[k]));
    v = o > v ? o : v;
  }
  return v;
}
template <int G>
inline vf group_sum(vf v) {
  static_assert(G >= 1 && G <= W && (G & (G - 1)) == 0, "groups are a power of two lanes");
  for (int k = 0; (1 << k) < G; ++k) v += __builtin_shuffle(v, lane_mask(kXorMasks.m[k]));
  return v;
}

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
