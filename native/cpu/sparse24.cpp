// 2:4 sparsity on the cpu device: prune, compress, decompress (row-parallel scalar
// loops: load-time work) and the sparse matmul dispatched to the per-ISA kernel in
// isa/sparse24_gemm.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/sparse24.h"
#include "cpu/convert.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk::cpu {

#define LLMK_DECLARE_SPARSE24(NS)                                                                           \
  namespace NS {                                                                                            \
  void sparse24_gemm(const float* x, int64_t M, int64_t K, int vdtype, const void* values, const int32_t* meta, \
                     int64_t n0, int64_t n1, int64_t N, float* y);                                          \
  int64_t sparse24_xt_rows(int64_t M);                                                                      \
  int64_t sparse24_dot_max_rows();                                                                          \
  void sparse24_pack_xt(const float* x, int64_t M, int64_t K, int64_t mb, int64_t b, float* xt);           \
  void sparse24_gemm_xt(const float* xt, int64_t M, int64_t K, int vdtype, const void* values,              \
                        const int32_t* meta, int64_t n0, int64_t n1, float* yt);                            \
  }
LLMK_DECLARE_SPARSE24(isa_scalar)
LLMK_DECLARE_SPARSE24(isa_avx2)
LLMK_DECLARE_SPARSE24(isa_avx512)
#undef LLMK_DECLARE_SPARSE24

namespace {
// The per-ISA kernels of the ISA in use.
struct Sparse24Kernels {
  decltype(&isa_scalar::sparse24_gemm) dot;
  decltype(&isa_scalar::sparse24_xt_rows) xt_rows;
  int64_t dot_max_rows;  // x rows at or below this take the dot form, above the blocked form
  decltype(&isa_scalar::sparse24_pack_xt) pack_xt;
  decltype(&isa_scalar::sparse24_gemm_xt) blocked;
};
#define LLMK_SPARSE24_KERNELS(NS)                                                                       \
  Sparse24Kernels {                                                                                     \
    NS::sparse24_gemm, NS::sparse24_xt_rows, NS::sparse24_dot_max_rows(), NS::sparse24_pack_xt, \
        NS::sparse24_gemm_xt                                                                            \
  }
Sparse24Kernels sparse24_kernels() {
  switch (isa()) {
    case Isa::Avx512: return LLMK_SPARSE24_KERNELS(isa_avx512);
    case Isa::Avx2: return LLMK_SPARSE24_KERNELS(isa_avx2);
    case Isa::Scalar: break;
  }
  return LLMK_SPARSE24_KERNELS(isa_scalar);
}
#undef LLMK_SPARSE24_KERNELS
}  // namespace


void sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out) {
  const int64_t N = w.dim(0), K = w.dim(1);
  cpu_pool().parallel_for(N, 16, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      for (int64_t g = 0; g < K / 4; ++g) {
        float v[4], score[4];
        for (int j = 0; j < 4; ++j) {
          const int64_t k = 4 * g + j;
          v[j] = load_f32(w.raw(), w.dtype, n * K + k);
          score[j] = std::fabs(v[j]) * (norms ? load_f32(norms->raw(), norms->dtype, k) : 1.f);
        }
        // The two best scores win; on ties the lower index wins (deterministic).
        int best = 0;
        for (int j = 1; j < 4; ++j)
          if (score[j] > score[best]) best = j;
        int second = best == 0 ? 1 : 0;
        for (int j = 0; j < 4; ++j)
          if (j != best && score[j] > score[second]) second = j;
        for (int j = 0; j < 4; ++j)
          store_f32(out.raw(), out.dtype, n * K + 4 * g + j, (j == best || j == second) ? v[j] : 0.f);
      }
    }
  });
}

void sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta) {
  const int64_t N = w.dim(0), K = w.dim(1), G = K / 4, MW = sparse24_meta_words(K);
  const size_t es = dtype_size(w.dtype);
  // Report the first offending group in row-major order, whichever thread finds it.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      int nz = 0;
      for (int j = 0; j < 4; ++j) nz += load_f32(w.raw(), w.dtype, n * K + 4 * g + j) != 0.f;
      LLMK_CHECK(nz <= 2, RangeError, "sparse24.compress: expected at most 2 non-zeros in every group of 4 but row ",
                 n, " group ", g, " (columns ", 4 * g, "..", 4 * g + 3, ") has ", nz);
    }
  cpu_pool().parallel_for(N, 16, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      int32_t* mrow = meta.data<int32_t>() + n * MW;
      std::memset(mrow, 0, size_t(MW) * 4);
      for (int64_t g = 0; g < G; ++g) {
        uint32_t mask = 0;
        for (int j = 0; j < 4; ++j) mask |= uint32_t(load_f32(w.raw(), w.dtype, n * K + 4 * g + j) != 0.f) << j;
        int i0, i1;
        sparse24_pick(mask, &i0, &i1);
        // Copy the stored bits (not a converted float): the round trip is bit-exact.
        const char* src = w.data<char>() + size_t(n * K + 4 * g) * es;
        char* dst = values.data<char>() + size_t(n * (K / 2) + 2 * g) * es;
        std::memcpy(dst, src + i0 * es, es);
        std::memcpy(dst + es, src + i1 * es, es);
        mrow[g / 8] = int32_t(uint32_t(mrow[g / 8]) | sparse24_nibble(i0, i1) << (4 * (g % 8)));
      }
    }
  });
}

void sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out) {
  const int64_t N = out.dim(0), K = out.dim(1), G = K / 4, MW = sparse24_meta_words(K);
  const size_t es = dtype_size(out.dtype);
  cpu_pool().parallel_for(N, 16, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      char* orow = out.data<char>() + size_t(n * K) * es;
      std::memset(orow, 0, size_t(K) * es);
      const uint32_t* mrow = reinterpret_cast<const uint32_t*>(meta.data<int32_t>() + n * MW);
      for (int64_t g = 0; g < G; ++g) {
        const uint32_t nib = (mrow[g / 8] >> (4 * (g % 8))) & 0xfu;
        LLMK_CHECK(sparse24_nibble_legal(nib), RangeError, "sparse24.decompress: illegal metadata nibble 0x", std::hex,
                   nib, std::dec, " at row ", n, " group ", g);
        const char* src = values.data<char>() + size_t(n * (K / 2) + 2 * g) * es;
        std::memcpy(orow + size_t(4 * g + (nib & 3)) * es, src, es);
        std::memcpy(orow + size_t(4 * g + (nib >> 2)) * es, src + es, es);
      }
    }
  });
}

// x rows per pass of the blocked form: its f32 copy of x, xT and yT are O(rows·(K + N))
// whatever M is (a 4096-token prefill through K = N = 16384 held 768 MB of them at once
// before); each pass decodes the weights again, ~1-2% of a pass's time at 256 rows.
constexpr int64_t kBlockedRows = 256;

void sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias, const Tensor& y) {
  const int64_t M = x.dim(0), K = x.dim(1), N = values.dim(0);
  const int vd = values.dtype == DType::F32 ? 0 : values.dtype == DType::F16 ? 1 : 2;
  const float* bf = nullptr;
  std::vector<float> bias_f32;
  if (bias) {
    bias_f32.resize(size_t(N));
    for (int64_t n = 0; n < N; ++n) bias_f32[n] = load_f32(bias->raw(), bias->dtype, n);
    bf = bias_f32.data();
  }
  // Rows [m0, m0 + mc) of x in f32 (in place when x is f32).
  std::vector<float> xf;
  const auto x_f32 = [&](int64_t m0, int64_t mc) -> const float* {
    if (x.dtype == DType::F32) return x.data<float>() + m0 * K;
    xf.resize(size_t(mc * K));
    cpu_pool().parallel_for(mc, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b * K; i < e * K; ++i) xf[size_t(i)] = load_f32(x.raw(), x.dtype, m0 * K + i);
    });
    return xf.data();
  };
  const Sparse24Kernels kern = sparse24_kernels();
  if (M <= kern.dot_max_rows) {
    // Few rows (decode): each weight row streamed once against all x rows (dot form).
    const float* xp = x_f32(0, M);
    std::vector<float> yf(size_t(M * N));
    cpu_pool().parallel_for(N, 8, [&](int64_t b, int64_t e) {
      kern.dot(xp, M, K, vd, values.raw(), meta.data<int32_t>(), b, e, N, yf.data());
    });
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) store_f32(y.raw(), y.dtype, m * N + n, yf[m * N + n] + (bf ? bf[n] : 0.f));
    return;
  }
  // Many rows: x packed transposed in blocks, the product formed as yT (isa/sparse24_gemm.cpp),
  // kBlockedRows rows a pass.
  // 64-byte aligned: an xT row (MB floats, 64-256 bytes) then spans whole cache lines; at
  // malloc's 16-byte alignment half the microkernel's x loads split a line (one thread,
  // M=256, 4096² on Zen 3: 106 -> 86 ms).
  const int64_t rows_max = std::min(M, kBlockedRows), MB_max = kern.xt_rows(rows_max);
  const int64_t Mp_max = (rows_max + MB_max - 1) / MB_max * MB_max;  // no pass pads to more
  std::vector<float> xt_buf(size_t(Mp_max * K) + 16), yt_buf(size_t(N * Mp_max) + 16);
  const auto align64 = [](std::vector<float>& b) {
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(b.data()) + 63) & ~uintptr_t(63));
  };
  float* const xt = align64(xt_buf);
  float* const yt = align64(yt_buf);
  for (int64_t m0 = 0; m0 < M; m0 += kBlockedRows) {
    const int64_t mc = std::min(kBlockedRows, M - m0);
    const float* xp = x_f32(m0, mc);
    const int64_t MB = kern.xt_rows(mc);
    const int64_t mblocks = (mc + MB - 1) / MB, Mp = mblocks * MB;
    cpu_pool().parallel_for(mblocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) kern.pack_xt(xp, mc, K, MB, i, xt + i * K * MB);
    });
    cpu_pool().parallel_for(N, 16, [&](int64_t b, int64_t e) {
      kern.blocked(xt, mc, K, vd, values.raw(), meta.data<int32_t>(), b, e, yt);
    });
    cpu_pool().parallel_for(mc, 4, [&](int64_t b, int64_t e) {
      for (int64_t m = b; m < e; ++m)
        for (int64_t n = 0; n < N; ++n)
          store_f32(y.raw(), y.dtype, (m0 + m) * N + n, yt[n * Mp + m] + (bf ? bf[n] : 0.f));
    });
  }
}

}  // namespace llmk::cpu
