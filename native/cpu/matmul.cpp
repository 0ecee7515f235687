// cpu matmul entry: picks the GEMV path for a few rows (decode) or the blocked GEMM,
// compiled for the ISA in use (cpu/isa/gemm.cpp).
#include <vector>

#include "cpu/convert.h"
#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/ops.h"

namespace llmk::cpu {

void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  if (M == 0 || N == 0) return;
  // The kernels add bias in f32; it is widened once here (N values).
  std::vector<float> bias_f32;
  if (bias) {
    bias_f32.resize(size_t(N));
    for (int64_t n = 0; n < N; ++n) bias_f32[n] = load_f32(bias->raw(), bias->dtype, n);
  }
  if (K == 0) {  // empty sum: y is the bias (or zeros)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) store_f32(y.raw(), y.dtype, m * N + n, bias ? bias_f32[n] : 0.f);
    return;
  }
  const MatmulParams p{x.raw(), w.raw(), bias ? bias_f32.data() : nullptr, y.raw(), M, N, K, x.dtype};
  const bool gemv = M <= kGemvMaxRows;
  switch (isa()) {
    case Isa::Avx512: return gemv ? isa_avx512::gemv(p) : isa_avx512::gemm(p);
    case Isa::Avx2: return gemv ? isa_avx2::gemv(p) : isa_avx2::gemm(p);
    case Isa::Scalar: return gemv ? isa_scalar::gemv(p) : isa_scalar::gemm(p);
  }
}

}  // namespace llmk::cpu
