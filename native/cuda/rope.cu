// Fused rotary embedding: one block per token rotates every q head and then every k
// head (one launch, one pass over both); with a cache destination the rotated k rows
// and the v rows go straight to their paged-cache slots. The plain cache append
// (writeKvCache) is a slot check and a row copy. Both are all or nothing: a call with
// a bad position or slot anywhere leaves q, k and the caches as they were.
// check:cuda expects: ld.global
#include "common/rope.h"
#include "convert.cuh"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS {
namespace {

constexpr int kMaxPairs = 128;  // rotary_dim <= 256 (the largest head dim we support)
// Calls of up to this many tokens (decode steps) are checked by every rope block itself;
// larger ones (prefill) by one check launch first: a 64-token scan per block is ~nothing,
// a second launch per layer on the decode path is not.
constexpr int kScanTokens = 64;

// Token t of a call is bad if its position is negative (pos given) or its slot lies
// outside [0, nslots) (slots given).
__device__ __forceinline__ bool token_bad(const int32_t* pos, const int32_t* slots, long long nslots, int t) {
  if (pos && pos[t] < 0) return true;
  return slots && (slots[t] < 0 || slots[t] >= nslots);
}

// Passed by value (≈ 1.1 KiB, under the 4 KiB kernel-parameter limit): the f64
// frequency table rides along with the launch instead of needing a device buffer.
struct RopeParams {
  void* q;
  void* k;
  const void* v;
  const int32_t* pos;
  const int32_t* slots;  // null: rotate k in place
  void* k_cache;
  void* v_cache;
  int* error;            // atomicMin'd with the first bad token index
  long long nslots;
  int T, hq, hkv, D, rotary_dim, style;
  double cos_scale, sin_scale;  // attention factor; sin also carries the inverse sign
  double inv_freq[kMaxPairs];
};

template <class T>
__global__ void __launch_bounds__(256) rope_kernel(RopeParams p) {
  __shared__ float cs[kMaxPairs], sn[kMaxPairs];
  __shared__ int any_bad;
  // All or nothing (q and k rotate in place, cache rows are overwritten): a call with
  // a bad position or slot anywhere changes nothing, as on the cpu. Small calls: each
  // block checks every token; larger ones: tokens_check_kernel ran first.
  if (threadIdx.x == 0) any_bad = p.T > kScanTokens && *p.error != kNoError;
  __syncthreads();
  if (p.T <= kScanTokens)
    for (int u = threadIdx.x; u < p.T; u += blockDim.x)
      if (token_bad(p.pos, p.slots, p.nslots, u)) {
        atomicMin(p.error, u);
        any_bad = 1;
      }
  __syncthreads();
  if (any_bad) return;  // uniform per block, so the return cannot split a barrier
  const int t = blockIdx.x;
  const int pos = p.pos[t];
  const int slot = p.slots ? p.slots[t] : 0;
  const int half = p.rotary_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double s, c;
    rope_sincos(pos, p.inv_freq[i], &s, &c);
    cs[i] = float(c * p.cos_scale);
    sn[i] = float(s * p.sin_scale);
  }
  __syncthreads();
  T* q = static_cast<T*>(p.q) + size_t(t) * p.hq * p.D;
  T* k = p.k ? static_cast<T*>(p.k) + size_t(t) * p.hkv * p.D : nullptr;
  T* kdst = p.slots ? static_cast<T*>(p.k_cache) + size_t(slot) * p.hkv * p.D : k;
  const int pairs_q = p.hq * half, pairs = pairs_q + (k ? p.hkv * half : 0);
  const RopeStyle style = RopeStyle(p.style);
  // Consecutive threads take consecutive pairs of one head: coalesced loads.
  for (int j = threadIdx.x; j < pairs; j += blockDim.x) {
    const bool is_q = j < pairs_q;
    const int jj = is_q ? j : j - pairs_q, h = jj / half, i = jj % half;
    int i0, i1;
    rope_pair_index(style, i, p.rotary_dim, &i0, &i1);
    const T* src = (is_q ? q : k) + size_t(h) * p.D;
    T* dst = (is_q ? q : kdst) + size_t(h) * p.D;
    const float x0 = to_f32(src[i0]), x1 = to_f32(src[i1]);
    dst[i0] = from_f32<T>(x0 * cs[i] - x1 * sn[i]);
    dst[i1] = from_f32<T>(x1 * cs[i] + x0 * sn[i]);
  }
  if (p.slots) {
    // The cache rows also need k's pass-through dims and all of v.
    const T* v = static_cast<const T*>(p.v) + size_t(t) * p.hkv * p.D;
    T* vdst = static_cast<T*>(p.v_cache) + size_t(slot) * p.hkv * p.D;
    for (int e = threadIdx.x; e < p.hkv * p.D; e += blockDim.x) {
      vdst[e] = v[e];
      if (e % p.D >= p.rotary_dim) kdst[e] = k[e];
    }
  }
}

// The first bad token (see token_bad) into *error (atomicMin).
__global__ void __launch_bounds__(256) tokens_check_kernel(const int32_t* pos, const int32_t* slots, int T,
                                                           long long nslots, int* error) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t < T && token_bad(pos, slots, nslots, t)) atomicMin(error, t);
}
void launch_tokens_check(const int32_t* pos, const int32_t* slots, int T, long long nslots, int* error,
                         cudaStream_t stream) {
  llmk_launch(tokens_check_kernel, dim3(unsigned((T + 255) / 256)), dim3(256), 0, stream, pos, slots, T, nslots, error);
}

// One block per token copies its k and v rows (`units` U-sized words each) to the
// token's slot; nothing is written once the check above flagged any token, so a bad
// call leaves the cache as it was.
template <class U>
__global__ void __launch_bounds__(128) kv_write_kernel(const U* k, const U* v, const int32_t* slots, U* k_cache,
                                                       U* v_cache, int units, const int* error) {
  if (*error != kNoError) return;
  const int t = blockIdx.x;
  const size_t src = size_t(t) * units, dst = size_t(slots[t]) * units;
  for (int e = threadIdx.x; e < units; e += blockDim.x) {
    k_cache[dst + e] = k[src + e];
    v_cache[dst + e] = v[src + e];
  }
}

}  // namespace

void launch_rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg,
                 const RopeTable& table, const KvCacheWrite* cache, int* error_dev, cudaStream_t stream) {
  LLMK_CHECK(cfg.rotary_dim / 2 <= kMaxPairs, RangeError, "rope: rotary_dim ", cfg.rotary_dim, " exceeds ",
             2 * kMaxPairs);
  RopeParams p{};
  p.q = q.raw();
  p.k = k ? k->raw() : nullptr;
  p.pos = positions.data<int32_t>();
  if (cache) {
    p.v = cache->v.raw();
    p.slots = cache->slots.data<int32_t>();
    p.k_cache = cache->k_cache.raw();
    p.v_cache = cache->v_cache.raw();
    p.nslots = cache->k_cache.dim(0) * cache->k_cache.dim(1);
  }
  p.error = error_dev;
  p.T = int(q.dim(0));
  p.hq = int(q.dim(1));
  p.hkv = k ? int(k->dim(1)) : 0;
  p.D = int(q.dim(2));
  p.rotary_dim = cfg.rotary_dim;
  p.style = int(cfg.style);
  p.cos_scale = table.attn_scale;
  p.sin_scale = cfg.inverse ? -table.attn_scale : table.attn_scale;
  for (size_t i = 0; i < table.inv_freq.size(); ++i) p.inv_freq[i] = table.inv_freq[i];
  if (p.T == 0) return;
  if (p.T > kScanTokens) launch_tokens_check(p.pos, p.slots, p.T, p.nslots, error_dev, stream);
  // 128 threads: enough pairs in flight per token (Hq·D/2 ≥ 2048 for real models)
  // while many tokens' blocks share an SM.
  const dim3 grid(unsigned(p.T)), block(128);
  switch (q.dtype) {
    case DType::F32: llmk_launch(rope_kernel<float>, grid, block, 0, stream, p); break;
    case DType::F16: llmk_launch(rope_kernel<__half>, grid, block, 0, stream, p); break;
    case DType::BF16: llmk_launch(rope_kernel<__nv_bfloat16>, grid, block, 0, stream, p); break;
    default: fail(ErrorKind::TypeError, "rope: unsupported dtype ", dtype_name(q.dtype));
  }
}

void launch_kv_cache_write(const Tensor& k, const KvCacheWrite& cache, int* error_dev, cudaStream_t stream) {
  const int T = int(k.dim(0));
  if (T == 0) return;
  const size_t row = size_t(k.dim(1)) * size_t(k.dim(2)) * dtype_size(k.dtype);
  launch_tokens_check(nullptr, cache.slots.data<int32_t>(), T,
                      static_cast<long long>(cache.k_cache.dim(0) * cache.k_cache.dim(1)), error_dev, stream);
  // The widest word that divides the row and every base address (views may start anywhere).
  uintptr_t bits = row;
  for (const void* ptr : {k.raw(), cache.v.raw(), cache.k_cache.raw(), cache.v_cache.raw()})
    bits |= reinterpret_cast<uintptr_t>(ptr);
  const dim3 grid(static_cast<unsigned>(T)), block(128);
  const int32_t* slots = cache.slots.data<int32_t>();
  auto go = [&](auto word) {
    using U = decltype(word);
    llmk_launch(kv_write_kernel<U>, grid, block, 0, stream, static_cast<const U*>(k.raw()),
                static_cast<const U*>(cache.v.raw()), slots, static_cast<U*>(cache.k_cache.raw()),
                static_cast<U*>(cache.v_cache.raw()), int(row / sizeof(U)), static_cast<const int*>(error_dev));
  };
  if (bits % 16 == 0) go(uint4{});
  else if (bits % 4 == 0) go(uint32_t{});
  else go(uint16_t{});
}

}  // namespace llmk::LLMK_DEVICE_NS
