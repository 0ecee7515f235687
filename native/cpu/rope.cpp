// RoPE on the cpu device: threads over tokens, the per-ISA row kernel from isa/rope.cpp.
#include <vector>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk::cpu {

#define LLMK_DECLARE_ROPE(NS)                                                                               \
  namespace NS {                                                                                            \
  void rope_token(int dtype, void* q_row, int hq, void* k_row, int hkv, int D, int32_t pos, const RopeConfig&, \
                  const RopeTable&, float* scratch);                                                        \
  }
LLMK_DECLARE_ROPE(isa_scalar)
LLMK_DECLARE_ROPE(isa_avx2)
LLMK_DECLARE_ROPE(isa_avx512)
#undef LLMK_DECLARE_ROPE

void rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg, const RopeTable& table) {
  const int64_t T = q.dim(0);
  const int hq = int(q.dim(1)), D = int(q.dim(2)), hkv = k ? int(k->dim(1)) : 0;
  const int32_t* pos = positions.data<int32_t>();
  for (int64_t t = 0; t < T; ++t)
    LLMK_CHECK(pos[t] >= 0, RangeError, "rope: expected non-negative positions but positions[", t, "] = ", pos[t]);
  const int dtype = q.dtype == DType::F32 ? 0 : q.dtype == DType::F16 ? 1 : 2;
  auto* fn = isa() == Isa::Avx512 ? isa_avx512::rope_token : isa() == Isa::Avx2 ? isa_avx2::rope_token
                                                                                 : isa_scalar::rope_token;
  const size_t es = dtype_size(q.dtype);
  const int64_t work_per_token = int64_t(hq + hkv) * D;
  cpu_pool().parallel_for(T, std::max<int64_t>(1, 16384 / std::max<int64_t>(work_per_token, 1)), [&](int64_t b, int64_t e) {
    std::vector<float> scratch(4 * size_t(cfg.rotary_dim) + 16);
    for (int64_t t = b; t < e; ++t) {
      char* qr = q.data<char>() + size_t(t) * hq * D * es;
      char* kr = k ? k->data<char>() + size_t(t) * hkv * D * es : nullptr;
      fn(dtype, qr, hq, kr, hkv, D, pos[t], cfg, table, scratch.data());
    }
  });
}

}  // namespace llmk::cpu
