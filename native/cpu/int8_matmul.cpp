// LLM.int8() on the cpu device: picks the ISA's kernels (isa/int8_gemm.cpp), runs
// the two light passes over x (outlier columns, then per-row quantization) and the
// fused GEMM, threads over N so each core streams its own slice of the weights.
#include <atomic>
#include <vector>

#include "cpu/convert.h"
#include "cpu/int8.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk::cpu {
namespace {

struct Int8Kernels {
  decltype(&isa_scalar::int8_quantize_weight_rows) quantize_weight_rows;
  decltype(&isa_scalar::int8_outlier_flags) outlier_flags;
  decltype(&isa_scalar::int8_quantize_act_rows) quantize_act_rows;
  decltype(&isa_scalar::int8_gemm) gemm;
  bool offset;
};

Int8Kernels kernels() {
#define LLMK_INT8_KERNELS(NS)                                                                                  \
  Int8Kernels {                                                                                                \
    NS::int8_quantize_weight_rows, NS::int8_outlier_flags, NS::int8_quantize_act_rows, NS::int8_gemm,          \
        NS::int8_gemm_wants_offset()                                                                           \
  }
  switch (isa()) {
    case Isa::Avx512: return LLMK_INT8_KERNELS(isa_avx512);
    case Isa::Avx2: return LLMK_INT8_KERNELS(isa_avx2);
    default: return LLMK_INT8_KERNELS(isa_scalar);
  }
#undef LLMK_INT8_KERNELS
}

int dtype_code(DType t) { return t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2; }

// Per-call scratch: quantized activations in the layout the chosen GEMM wants.
struct QuantizedActs {
  std::vector<uint8_t> flags, q;
  std::vector<int32_t> cols;
  std::vector<float> sx, xo, xot;
  Int8Acts acts;
};

void quantize_acts(const Int8Kernels& kern, const Tensor& x, float threshold, bool offset, QuantizedActs& s) {
  const int64_t M = x.dim(0), K = x.dim(1);
  const int dt = dtype_code(x.dtype);
  s.flags.assign(size_t(K), 0);
  if (threshold > 0) {
    // Threads over column ranges: each owns its flags, no merging needed.
    cpu_pool().parallel_for(K, std::max<int64_t>(64, (int64_t(1) << 16) / std::max<int64_t>(M, 1)),
                            [&](int64_t k0, int64_t k1) {
                              kern.outlier_flags(dt, x.raw(), M, K, threshold, k0, k1, s.flags.data());
                            });
  }
  for (int64_t k = 0; k < K; ++k)
    if (s.flags[k]) s.cols.push_back(int32_t(k));
  Int8Acts& a = s.acts;
  a.M = M;
  a.K = K;
  a.ld = (K + 63) / 64 * 64;
  a.nout = int(s.cols.size());
  s.q.resize(size_t(M) * a.ld);
  s.sx.resize(size_t(M));
  s.xo.resize(size_t(M) * a.nout);
  a.ldt = (M + 15) / 16 * 16;
  s.xot.assign(size_t(a.nout) * a.ldt, 0.f);
  a.q = s.q.data();
  a.sx = s.sx.data();
  a.cols = s.cols.data();
  a.xo = s.xo.data();
  a.xot = s.xot.data();
  cpu_pool().parallel_for(M, std::max<int64_t>(1, 32768 / std::max<int64_t>(K, 1)), [&](int64_t m0, int64_t m1) {
    kern.quantize_act_rows(dt, x.raw(), s.flags.data(), offset, m0, m1, s.acts);
  });
}

}  // namespace

void int8_quantize_weight(const Tensor& w, const Int8Weight& out) {
  const Int8Kernels kern = kernels();
  const int64_t N = w.dim(0), K = w.dim(1);
  std::atomic<int64_t> bad{0};
  cpu_pool().parallel_for(N, std::max<int64_t>(1, 65536 / std::max<int64_t>(K, 1)), [&](int64_t n0, int64_t n1) {
    bad += kern.quantize_weight_rows(dtype_code(w.dtype), w.raw(), K, n0, n1, out.q.data<int8_t>(),
                                     out.scale.data<float>(), out.rowsum.data<int32_t>());
  });
  LLMK_CHECK(bad.load() == 0, RangeError, "int8.quantizeWeight: expected finite values in w but it holds ", bad.load(),
             " NaN or infinite values");
}

void int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                        const Tensor& outlier_mask) {
  const Int8Kernels kern = kernels();
  QuantizedActs s;
  quantize_acts(kern, x, threshold, false, s);
  const int64_t M = x.dim(0), K = x.dim(1);
  for (int64_t m = 0; m < M; ++m)
    std::copy_n(s.q.data() + size_t(m) * s.acts.ld, K, q.data<uint8_t>() + size_t(m) * K);
  std::copy(s.sx.begin(), s.sx.end(), scale.data<float>());
  for (int64_t k = 0; k < K; ++k) outlier_mask.data<int32_t>()[k] = s.flags[k];
}

void int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias, const Tensor& y) {
  const Int8Kernels kern = kernels();
  const int64_t M = x.dim(0), K = x.dim(1), N = w.q.dim(0);
  if (M == 0 || N == 0) return;
  QuantizedActs s;
  quantize_acts(kern, x, threshold, kern.offset, s);
  std::vector<float> b;
  if (bias) {
    b.resize(size_t(N));
    for (int64_t n = 0; n < N; ++n) b[n] = load_f32(bias->raw(), bias->dtype, n);
  }
  const Int8Weights wt{N, K, w.q.data<int8_t>(), w.scale.data<float>(), w.rowsum.data<int32_t>()};
  // Columns per thread: at least 64 Ki multiply-adds (a few µs at M = 1). 1 Mi kept
  // every decode GEMV of a 512-wide model on one thread (N = 1408 at K = 512): the
  // small demo model decoded 530-850 tok/s, 900-1010 with this.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(M * std::max<int64_t>(K, 1), 1));
  cpu_pool().parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    kern.gemm(s.acts, wt, bias ? b.data() : nullptr, dtype_code(y.dtype), y.raw(), n0, n1);
  });
}

}  // namespace llmk::cpu
