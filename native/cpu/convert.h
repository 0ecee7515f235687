// Scalar element access for any dtype, f32 math. Bulk SIMD paths live in cpu/isa/.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/half.h"
#include "llmk/tensor.h"

namespace llmk::cpu {

inline float load_f32(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::I8: return float(static_cast<const int8_t*>(p)[i]);
    case DType::I32: return float(static_cast<const int32_t*>(p)[i]);
  }
  return 0.f;
}

template <class I>
inline I saturate_int(double v) {
  constexpr double lo = double(std::numeric_limits<I>::min()), hi = double(std::numeric_limits<I>::max());
  if (std::isnan(v)) return 0;
  if (v <= lo) return std::numeric_limits<I>::min();
  if (v >= hi) return std::numeric_limits<I>::max();
  return I(std::nearbyint(v));
}

inline void store_f32(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = v; break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    case DType::I8: static_cast<int8_t*>(p)[i] = saturate_int<int8_t>(v); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = saturate_int<int32_t>(v); break;
  }
}

}  // namespace llmk::cpu
