// RoPE on the cpu device: threads over tokens, the per-ISA row kernel from isa/rope.cpp.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk::cpu {

#define LLMK_DECLARE_ROPE(NS)                                                                                   \
  namespace NS {                                                                                                \
  void rope_rows(int dtype, void* rows, int heads, int D, int32_t pos, const RopeConfig&, const RopeTable&,      \
                 float* scratch, bool fresh_table);                                                            \
  }
LLMK_DECLARE_ROPE(isa_scalar)
LLMK_DECLARE_ROPE(isa_avx2)
LLMK_DECLARE_ROPE(isa_avx512)
#undef LLMK_DECLARE_ROPE

namespace {

// Every slot in range before the first row is written: a bad call leaves the cache as it was.
void check_slots(const KvCacheWrite& cache, int64_t T, const char* op) {
  const int32_t* slots = cache.slots.data<int32_t>();
  const int64_t nslots = cache.k_cache.dim(0) * cache.k_cache.dim(1);
  for (int64_t t = 0; t < T; ++t)
    LLMK_CHECK(slots[t] >= 0 && slots[t] < nslots, RangeError, op, ": expected cache slots in [0, ", nslots,
               ") but slots[", t, "] = ", slots[t]);
}

}  // namespace

void rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg, const RopeTable& table,
          const KvCacheWrite* cache) {
  const int64_t T = q.dim(0);
  const int hq = int(q.dim(1)), D = int(q.dim(2)), hkv = k ? int(k->dim(1)) : 0;
  const int32_t* pos = positions.data<int32_t>();
  for (int64_t t = 0; t < T; ++t)
    LLMK_CHECK(pos[t] >= 0, RangeError, "rope: expected non-negative positions but positions[", t, "] = ", pos[t]);
  const int32_t* slots = cache ? cache->slots.data<int32_t>() : nullptr;
  if (cache) check_slots(*cache, T, "rope");
  const int dtype = q.dtype == DType::F32 ? 0 : q.dtype == DType::F16 ? 1 : 2;
  auto* rows = isa() == Isa::Avx512 ? isa_avx512::rope_rows : isa() == Isa::Avx2 ? isa_avx2::rope_rows
                                                                                 : isa_scalar::rope_rows;
  const size_t es = dtype_size(q.dtype), krow = size_t(hkv) * D * es;
  const int64_t work_per_token = int64_t(hq + hkv) * D;
  cpu_pool().parallel_for(T, std::max<int64_t>(1, 16384 / std::max<int64_t>(work_per_token, 1)), [&](int64_t b, int64_t e) {
    std::vector<float> scratch(4 * size_t(cfg.rotary_dim) + 16);
    for (int64_t t = b; t < e; ++t) {
      rows(dtype, q.data<char>() + size_t(t) * hq * D * es, hq, D, pos[t], cfg, table, scratch.data(), true);
      if (!k) continue;
      char* kdst = k->data<char>() + size_t(t) * krow;
      if (cache) {
        // Copy the row into its slot, then rotate it there (the row is in L1 by now).
        char* kslot = cache->k_cache.data<char>() + size_t(slots[t]) * krow;
        std::memcpy(kslot, kdst, krow);
        std::memcpy(cache->v_cache.data<char>() + size_t(slots[t]) * krow, cache->v.data<char>() + size_t(t) * krow,
                    krow);
        kdst = kslot;
      }
      rows(dtype, kdst, hkv, D, pos[t], cfg, table, scratch.data(), false);
    }
  });
}

void kv_cache_write(const Tensor& k, const KvCacheWrite& cache) {
  const int64_t T = k.dim(0);
  check_slots(cache, T, "writeKvCache");
  const int32_t* slots = cache.slots.data<int32_t>();
  const size_t row = size_t(k.dim(1)) * size_t(k.dim(2)) * dtype_size(k.dtype);
  const char* ks = k.data<char>();
  const char* vs = cache.v.data<char>();
  char* kc = cache.k_cache.data<char>();
  char* vc = cache.v_cache.data<char>();
  // Rows of a few KB each: threads only once there are tens of them to share.
  cpu_pool().parallel_for(T, std::max<int64_t>(1, int64_t(65536 / row)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      std::memcpy(kc + size_t(slots[t]) * row, ks + size_t(t) * row, row);
      std::memcpy(vc + size_t(slots[t]) * row, vs + size_t(t) * row, row);
    }
  });
}

}  // namespace llmk::cpu
