// LLM.int8() on the cpu: the per-ISA pieces (native/cpu/isa/int8_gemm.cpp, compiled
// once per ISA) and the plain structs they share with the driver (cpu/int8_matmul.cpp).
#pragma once
#include <cstdint>

namespace llmk::cpu {

// Activations quantized for one call, laid out as one ISA's GEMM wants them.
struct Int8Acts {
  int64_t M = 0, K = 0;
  int64_t ld = 0;        // row stride of q in bytes: K rounded up to 64 (zero padded)
  uint8_t* q = nullptr;  // [M, ld] xq as s8 bits, or xq + 128 (u8) for the VNNI kernel
  float* sx = nullptr;   // [M] max |x[m, k ∉ O]|; NaN for a row holding a non-finite value
  const int32_t* cols = nullptr;  // outlier columns, ascending
  int nout = 0;          // |O|
  float* xo = nullptr;   // [M, |O|] x[:, O] in f32 (rows with NaN/Inf: zeros)
  int64_t ldt = 0;       // row stride of xot: M rounded up to 16
  float* xot = nullptr;  // [|O|, ldt] x[:, O] transposed, zero padded
};

struct Int8Weights {
  int64_t N = 0, K = 0;
  const int8_t* q = nullptr;       // [N, K]
  const float* scale = nullptr;    // [N] sw = max |w[n,:]|
  const int32_t* rowsum = nullptr; // [N] Σ_k q[n,k] (the VNNI kernel's +128 compensation)
};

// dtype codes as in isa/convert_simd.h: 0 f32, 1 f16, 2 bf16.
#define LLMK_DECLARE_INT8(NS)                                                                                   \
  namespace NS {                                                                                                \
  /* Rows [n0, n1) of w: returns how many non-finite values were met (those rows get scale NaN). */            \
  int64_t int8_quantize_weight_rows(int dtype, const void* w, int64_t K, int64_t n0, int64_t n1, int8_t* q,       \
                                    float* scale, int32_t* rowsum);                                             \
  /* flags[k] = 1 where some row has a finite |x[m,k]| >= threshold, for k in [k0, k1). */                      \
  void int8_outlier_flags(int dtype, const void* x, int64_t M, int64_t K, float threshold, int64_t k0,           \
                          int64_t k1, uint8_t* flags);                                                          \
  /* Rows [m0, m1) of x into `acts` (cols / nout / ldt already set); flags as above. */                          \
  void int8_quantize_act_rows(int dtype, const void* x, const uint8_t* flags, bool offset128, int64_t m0,        \
                              int64_t m1, const Int8Acts& acts);                                                \
  /* y[:, n0:n1) (dtype 0 or 1) = the fused int8 product, dequantization, outliers and bias (f32, nullable). */ \
  void int8_gemm(const Int8Acts& x, const Int8Weights& w, const float* bias, int ydtype, void* y, int64_t n0,     \
                 int64_t n1);                                                                                   \
  /* Whether int8_gemm wants xq + 128 (u8) rather than xq (s8). */                                              \
  bool int8_gemm_wants_offset();                                                                                \
  }
LLMK_DECLARE_INT8(isa_scalar)
LLMK_DECLARE_INT8(isa_avx2)
LLMK_DECLARE_INT8(isa_avx512)
#undef LLMK_DECLARE_INT8

}  // namespace llmk::cpu
