// FlashAttention on CUDA, shared by attention.cu and the generated head-dim instances
// (attention_fa_hdim*.cu): the kernel parameters and the helpers both sides use.
#pragma once
#include "convert.cuh"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS::attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

struct FaParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;          // null: not wanted
  const int* cu_q;     // device offsets (varlen) or null (dense)
  const int* cu_k;
  int Sq, Sk;          // dense lengths
  int Hq, Hkv, D, Dp;  // Dp = D rounded up to 16 (zero-padded in shared memory)
  float scale_log2;
  int causal;
  int lse_packed;      // lse layout: 0 dense [B, Hq, Sq], 1 packed [Hq, Tq]
  int Tq;
  int chunks;          // output-dim chunks per (batch, head): grid.z = B · chunks
  // Paged prefill tiles (lse_packed = 2: lse [T, Hq]): query rows are the T rows of a
  // pagedAttention call, 64 a block; K/V rows through the block table. Null otherwise.
  const int* block_table;
  const int* seq_lens;
  int T, page_size, max_pages, num_pages;
  int* tile_done;      // per 64-row tile: 1 when the block found a prefill chunk and wrote it
};


template <class T>
struct Mma;
template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    mma_m16n8k16_f16f32(d, a, b, d);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __half l = __float2half_rn(lo), h = __float2half_rn(hi);
    return uint32_t(__half_as_ushort(l)) | (uint32_t(__half_as_ushort(h)) << 16);
  }
};
template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    mma_m16n8k16_bf16f32(d, a, b, d);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __nv_bfloat16 l = __float2bfloat16_rn(lo), h = __float2bfloat16_rn(hi);
    return uint32_t(__bfloat16_as_ushort(l)) | (uint32_t(__bfloat16_as_ushort(h)) << 16);
  }
};

__device__ __forceinline__ void seq_bounds(const int* cu, int b, int dense_len, int* base, int* len) {
  if (cu) {
    *base = cu[b];
    *len = cu[b + 1] - cu[b];
  } else {
    *base = b * dense_len;
    *len = dense_len;
  }
}

// rows [r0, r0+nrows) of a [tokens, H, D] tensor (head h) into smem rows of `pitch`
// elements, columns [0, Dp): 16-byte cp.async chunks, zero-filled past the sequence or D.
// With `pages` (a block-table row), token j is slot pages[j / page_size] · page_size +
// j % page_size of a paged cache [slots, H, D].
template <class T>
__device__ __forceinline__ void load_rows(T* smem, int pitch, const T* g, int H, int h, int D, int Dp, int base,
                                          int r0, int len, int nrows, const int* pages = nullptr, int page_size = 1) {
  const int chunks = Dp / 8;
  for (int c = threadIdx.x; c < nrows * chunks; c += blockDim.x) {
    const int r = c / chunks, d = 8 * (c % chunks);
    const bool ok = r0 + r < len && d < D;
    const int j = ok ? r0 + r : 0;
    const size_t slot = pages ? (size_t)pages[j / page_size] * page_size + j % page_size : (size_t)(base + j);
    const T* src = g + (slot * H + h) * D + (ok ? d : 0);
    cp_async_16_zfill(smem + r * pitch + d, src, ok);
  }
}

// Launches fa_mma_kernel<T, BKV, DVC, STAGES, MAXDP> (attention_fa_kernel.cuh); instantiated
// once per head-dim bucket in the generated attention_fa_hdim*.cu, picked by launch_fa
// (attention_fa_dispatch.cuh).
template <class T, int BKV, int DVC, int STAGES, int MAXDP>
void launch_fa_mma(const FaParams& p, int B, int max_sq, cudaStream_t st);

}  // namespace llmk::LLMK_DEVICE_NS::attn
