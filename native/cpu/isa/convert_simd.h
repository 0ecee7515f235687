// Bulk f16/bf16 <-> f32 conversion for per-ISA kernels (include from native/cpu/isa/*.cpp
// only: what it compiles to depends on the -m flags of that copy). F16C / AVX-512
// convert 8 or 16 halves per instruction; bf16 is a 16-bit shift with RNE rounding.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common/half.h"

namespace llmk::cpu::LLMK_ISA_NS {

inline void f16_to_f32_n(const uint16_t* src, float* dst, int n) {
  int i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

inline void f32_to_f16_n(const float* src, uint16_t* dst, int n) {
  int i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

// The shift loops vectorize as written; NaN handling matches common/half.h.
inline void bf16_to_f32_n(const uint16_t* src, float* dst, int n) {
  for (int i = 0; i < n; ++i) dst[i] = bits_f32(uint32_t(src[i]) << 16);
}
inline void f32_to_bf16_n(const float* src, uint16_t* dst, int n) {
  for (int i = 0; i < n; ++i) {
    const uint32_t u = f32_bits(src[i]);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    dst[i] = (u & 0x7fffffffu) > 0x7f800000u ? uint16_t((u >> 16) | 0x40u) : uint16_t(r);
  }
}

// dtype codes: 0 f32, 1 f16, 2 bf16
inline void load_f32_n(int dtype, const void* src, float* dst, int n) {
  if (dtype == 0) {
    const float* s = static_cast<const float*>(src);
    for (int i = 0; i < n; ++i) dst[i] = s[i];
  } else if (dtype == 1) {
    f16_to_f32_n(static_cast<const uint16_t*>(src), dst, n);
  } else {
    bf16_to_f32_n(static_cast<const uint16_t*>(src), dst, n);
  }
}
inline void store_f32_n(int dtype, const float* src, void* dst, int n) {
  if (dtype == 0) {
    float* d = static_cast<float*>(dst);
    for (int i = 0; i < n; ++i) d[i] = src[i];
  } else if (dtype == 1) {
    f32_to_f16_n(src, static_cast<uint16_t*>(dst), n);
  } else {
    f32_to_bf16_n(src, static_cast<uint16_t*>(dst), n);
  }
}

}  // namespace llmk::cpu::LLMK_ISA_NS
