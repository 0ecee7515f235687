// Peak-throughput probes for the benchmark report (% of peak): tight loops with no
// memory traffic for compute, and a streaming read for bandwidth. Each function is
// run by every pool thread on its own; the caller times the whole pool.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace llmk::cpu::LLMK_ISA_NS {

// Enough independent accumulators to cover FMA latency (4 cycles) × 2 pipes with
// room to spare; fewer would measure latency instead of throughput.
constexpr int kAcc = 12;

// Runs `iters` rounds of kAcc independent vector FMAs; returns flops done (and the
// accumulators folded into *sink so the loop cannot be removed).
double peak_fma_f32(int64_t iters, float* sink) {
#if defined(__AVX512F__)
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return double(iters) * kAcc * 16 * 2;
#elif defined(__AVX2__)
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float lanes[8];
  __m256 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(lanes, s);
  *sink = lanes[0] + lanes[7];
  return double(iters) * kAcc * 8 * 2;
#else
  // Scalar build: 4-wide SSE multiply + add (no FMA without AVX2), the best the
  // scalar kernels can reach.
  __m128 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm_set1_ps(1.0f + i * 1e-3f);
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  float lanes[4];
  __m128 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm_add_ps(s, acc[i]);
  _mm_storeu_ps(lanes, s);
  *sink = lanes[0] + lanes[3];
  return double(iters) * kAcc * 4 * 2;
#endif
}

// bf16 dot-product throughput: vdpbf16ps (pairs of bf16 products added into f32 lanes,
// 32 multiply-adds per zmm) on avx512-bf16; without it bf16 math runs on f32 FMAs,
// whose peak this returns. Counts 2 flops per product.
double peak_bf16(int64_t iters, float* sink) {
#if defined(__AVX512BF16__)
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);  // 1, 2^-24
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return double(iters) * kAcc * 32 * 2;
#else
  return peak_fma_f32(iters, sink);
#endif
}

// int8 dot-product throughput: vpdpbusd (u8×s8 → i32, 4 products per lane) on
// avx512-vnni; maddubs + madd + add on avx2. Counts 2 ops (mul + add) per product.
double peak_int8(int64_t iters, int32_t* sink) {
#if defined(__AVX512VNNI__)
  __m512i acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  __m512i s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_epi32(s, acc[i]);
  *sink = _mm512_reduce_add_epi32(s);
  return double(iters) * kAcc * 64 * 2;
#elif defined(__AVX2__)
  __m256i acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i)
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
  __m256i s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm256_add_epi32(s, acc[i]);
  *sink = _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
  return double(iters) * kAcc * 32 * 2;
#else
  int32_t acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = i;
  volatile int8_t va = 3, vb = -2;  // volatile: keeps the compiler from folding the loop
  const int32_t a = va, b = vb;
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] += a * b + (acc[i] >> 30);
  int32_t s = 0;
  for (int i = 0; i < kAcc; ++i) s += acc[i];
  *sink = s;
  return double(iters) * kAcc * 2;
#endif
}

// Sums `n` floats from `p` with wide loads and several accumulators (so the adds
// never limit the load stream); returns the sum.
float peak_read(const float* p, size_t n) {
#if defined(__AVX512F__)
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#elif defined(__AVX2__)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  float s = 0;
  for (float l : lanes) s += l;
#else
  __m128 s0 = _mm_setzero_ps(), s1 = s0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 = _mm_add_ps(s0, _mm_loadu_ps(p + i));
    s1 = _mm_add_ps(s1, _mm_loadu_ps(p + i + 4));
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_add_ps(s0, s1));
  float s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace llmk::cpu::LLMK_ISA_NS
