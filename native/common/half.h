// f16 / bf16 <-> f32 conversions usable from host code, CUDA device code and the
// simt emulator alike (plain bit manipulation, round-to-nearest-even). CPU kernels
// use F16C / AVX-512 instructions for bulk work; these are the scalar reference.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LLMK_HD __host__ __device__ __forceinline__
#else
#define LLMK_HD inline
#endif

namespace llmk {

LLMK_HD uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
LLMK_HD float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

LLMK_HD float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }
LLMK_HD uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

LLMK_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    // subnormal: value = man * 2^-24
    float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

LLMK_HD uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (u >= 0x477ff000u) return uint16_t(sign | 0x7c00u); // rounds to >= 65520: inf
  if (u < 0x38800000u) {                                  // below 2^-14: subnormal or 0
    if (u < 0x33000000u) return sign;                     // < 2^-25 rounds to 0
    const uint32_t exp = u >> 23, man = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exp;                    // 14..24 (+1 for 2^-24 units)
    uint32_t half = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1u), mid = 1u << (shift - 1u);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t r = u + 0xfffu + ((u >> 13) & 1u);  // round mantissa to 10 bits, RNE
  return uint16_t(sign | (((r >> 13) - (112u << 10)) & 0x7fffu));
}

}  // namespace llmk
