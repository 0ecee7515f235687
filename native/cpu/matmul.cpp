// PLACEHOLDER reference matmul (replaced by the blocked SIMD GEMM/GEMV).
#include "cpu/convert.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk::cpu {
void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  cpu_pool().parallel_for(N, 1, [&](int64_t b, int64_t e) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = b; n < e; ++n) {
        float s = 0;
        for (int64_t k = 0; k < K; ++k) s += load_f32(x.raw(), x.dtype, m * K + k) * load_f32(w.raw(), w.dtype, n * K + k);
        if (bias) s += load_f32(bias->raw(), bias->dtype, n);
        store_f32(y.raw(), y.dtype, m * N + n, s);
      }
  });
}
}  // namespace llmk::cpu
