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

// The FlashAttention kernel's copy of rows r0 … r0 + NROWS − 1 of a sequence of `len`
// rows (token base + j, or through `pages`), head h of a [tokens, H, D] tensor, into
// shared memory rows DP + 8 apart, columns [0, DP), zero-filled past `len` or D. The
// shape is compile-time: each thread copies the 16-byte chunk tid % (DP/8) of rows
// tid / (DP/8), + 128 / (DP/8), ... (load_rows above spends a runtime division and two
// 64-bit multiplies on each copy, ~35 PTX instructions, which were more issue slots
// than the tile's mma and ldmatrix together). Paged rows look up their page per row
// (pages need not align with tiles); dense rows step one pointer, ~8 PTX a copy — one
// loop for both kept a 64-bit multiply and a branch in every copy (PTX).
template <class T, int NROWS, int DP>
__device__ __forceinline__ void load_tile(T* smem, const T* g, int H, int h, int D, int base, int r0, int len,
                                          const int* pages = nullptr, int page_size = 1) {
  constexpr int CH = DP / 8, RPP = 128 / CH, ITERS = (NROWS + RPP - 1) / RPP;
  const int tid = threadIdx.x;
  if (RPP * CH != 128 && tid >= RPP * CH) return;  // DP = 96: 120 of the 128 threads copy
  const int rt = tid / CH, d = 8 * (tid % CH), ld = H * D;
  const bool dok = d < D;
  const T* gd = g + h * D + (dok ? d : 0);
  T* s = smem + rt * (DP + 8) + d;
  if (pages) {
#pragma unroll
    for (int i = 0; i < ITERS; ++i) {
      const int r = rt + i * RPP, j = r0 + r;
      if (NROWS % RPP != 0 && r >= NROWS) break;
      const bool ok = dok && j < len;
      const int jj = ok ? j : 0;
      const long long slot = (long long)pages[jj / page_size] * page_size + jj % page_size;
      cp_async_16_zfill(s + i * RPP * (DP + 8), gd + slot * ld, ok);
    }
    return;
  }
  const T* src = gd + (long long)(base + r0 + rt) * ld;  // a row this thread copies, then RPP rows on
  const long long step = (long long)RPP * ld;
#pragma unroll
  for (int i = 0; i < ITERS; ++i, src += step) {
    const int r = rt + i * RPP;
    if (NROWS % RPP != 0 && r >= NROWS) break;
    const bool ok = dok && r0 + r < len;
    cp_async_16_zfill(s + i * RPP * (DP + 8), ok ? src : gd, ok);
  }
}

// Launches fa_mma_kernel<T, BKV, DVC, STAGES, DP> (attention_fa_kernel.cuh); instantiated
// once per head-dim bucket in the generated attention_fa_hdim*.cu, picked by launch_fa
// (attention_fa_dispatch.cuh).
template <class T, int BKV, int DVC, int STAGES, int DP>
void launch_fa_mma(const FaParams& p, int B, int max_sq, cudaStream_t st);

}  // namespace llmk::LLMK_DEVICE_NS::attn
