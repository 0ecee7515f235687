// Dense f32/f16/bf16 matmul on the cpu: y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).
// The kernels (cpu/isa/gemm.cpp) are compiled once per ISA; cpu/matmul.cpp picks one.
#pragma once
#include <cstdint>

#include "llmk/tensor.h"

namespace llmk::cpu {

// Plain pointers + sizes, independent of Tensor: x, w, bias, y all of `dtype`.
struct MatmulParams {
  const void* x;     // [M, K]
  const void* w;     // [N, K]
  const float* bias; // [N] already in f32, or nullptr
  void* y;           // [M, N]
  int64_t M, N, K;
  DType dtype;
};

// M rows at or below this go to the GEMV path: it streams w once, with no packing.
constexpr int64_t kGemvMaxRows = 8;

#define LLMK_DECLARE_GEMM(ns)                 \
  namespace ns {                              \
  void gemm(const MatmulParams& p);           \
  void gemv(const MatmulParams& p);           \
  }
LLMK_DECLARE_GEMM(isa_scalar)
LLMK_DECLARE_GEMM(isa_avx2)
LLMK_DECLARE_GEMM(isa_avx512)
#undef LLMK_DECLARE_GEMM

}  // namespace llmk::cpu
