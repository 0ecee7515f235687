// The FlashAttention-2 forward kernel for f16/bf16 (see attention.cu for the whole op):
// 4 warps × 16 query rows, K/V tiles through cp.async (double-buffered where shared
// memory allows), Q·Kᵀ and P·V on mma.sync m16n8k16 with f32 accumulation, online
// softmax in the exp2 domain (scale folded into log2 e), one normalization at the end.
// Included only by the generated instances (attention_fa_hdim*.cu), one per head-dim
// bucket, so each is compiled once.
#pragma once
#include "attention_fa.cuh"

namespace llmk::LLMK_DEVICE_NS::attn {

// DP: the instance's head dim; smaller D run zero-padded to it (shared-memory columns
// from D on are zeros), so every loop over the head dim has a compile-time trip count
// and no branch: ptxas can issue the ldmatrix loads of one step ahead of the mma of the
// previous one. Up to 128 the warp's Q fragments (DP / 4 registers) are loaded once
// from shared memory and kept in registers for every tile.
template <class T, int BKV, int DVC, int STAGES, int DP>
__global__ void __launch_bounds__(128) fa_mma_kernel(FaParams p) {
  constexpr int BQ = 64, NS = BKV / 8, NO = DVC / 8, QK_STEPS = DP / 16, pitch = DP + 8;
  constexpr bool QREG = DP <= 128;
  uint32_t qa[QREG ? QK_STEPS : 1][4];
  const int b = blockIdx.z / p.chunks, chunk = blockIdx.z % p.chunks, h = blockIdx.y, kvh = h / (p.Hq / p.Hkv);
  int qbase, Sq, kbase, Sk, q0 = blockIdx.x * BQ;
  const int* kpages = nullptr;
  if (p.block_table) {
    // A paged prefill tile: its n rows are the queries, the last row's keys the keys.
    if (!p.tile_done[blockIdx.x]) return;  // whole block: the decode kernel takes these rows
    const int n = imin(BQ, p.T - q0);
    qbase = q0;
    Sq = n;
    q0 = 0;
    kbase = 0;
    Sk = p.seq_lens[qbase + n - 1];
    kpages = p.block_table + (size_t)(qbase + n - 1) * p.max_pages;
  } else {
    seq_bounds(p.cu_q, b, p.Sq, &qbase, &Sq);
    seq_bounds(p.cu_k, b, p.Sk, &kbase, &Sk);
  }
  if (q0 >= Sq) return;  // whole block
  const int dv0 = chunk * DVC;
  T* Qs = dynamic_smem<T>();
  T* Ks = Qs + BQ * pitch;
  T* Vs = Ks + STAGES * BKV * pitch;
  const T* gq = static_cast<const T*>(p.q);
  const T* gk = static_cast<const T*>(p.k);
  const T* gv = static_cast<const T*>(p.v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int offset = Sk - Sq;  // bottom-right alignment
  int kend = Sk;
  if (p.causal) kend = imin(Sk, q0 + BQ - 1 + offset + 1);
  const int ntiles = kend > 0 ? (kend + BKV - 1) / BKV : 0;

  float o[NO][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, lr[2] = {0.f, 0.f};
#pragma unroll
  for (int i = 0; i < NO; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) o[i][r] = 0.f;

  load_tile<T, BQ, DP>(Qs, gq, p.Hq, h, p.D, qbase, q0, Sq);
  auto load_kv = [&](int stage, int j0) {
    load_tile<T, BKV, DP>(Ks + stage * BKV * pitch, gk, p.Hkv, kvh, p.D, kbase, j0, Sk, kpages, p.page_size);
    load_tile<T, BKV, DP>(Vs + stage * BKV * pitch, gv, p.Hkv, kvh, p.D, kbase, j0, Sk, kpages, p.page_size);
  };
  if (ntiles) load_kv(0, 0);
  cp_async_commit();
  const int row0 = q0 + 16 * warp + g;  // this thread's rows: row0 and row0 + 8
  for (int kt = 0; kt < ntiles; ++kt) {
    const int s = STAGES == 2 ? (kt & 1) : 0;
    if (STAGES == 2 && kt + 1 < ntiles) {
      load_kv(s ^ 1, (kt + 1) * BKV);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* K = Ks + s * BKV * pitch;
    const T* V = Vs + s * BKV * pitch;
    if (QREG && kt == 0) {  // the Q tile arrived with the first K/V tile
#pragma unroll
      for (int kq = 0; kq < (QREG ? QK_STEPS : 1); ++kq)
        ldmatrix_x4(qa[kq], Qs + (16 * warp + lane % 16) * pitch + 16 * kq + 8 * (lane / 16));
    }
    float sc[NS][4];
#pragma unroll
    for (int i = 0; i < NS; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) sc[i][r] = 0.f;
#pragma unroll
    for (int kq = 0; kq < QK_STEPS; ++kq) {
      const int ks = 16 * kq;
      uint32_t a[4];
      if constexpr (QREG) {
#pragma unroll
        for (int x = 0; x < 4; ++x) a[x] = qa[kq][x];
      } else {
        ldmatrix_x4(a, Qs + (16 * warp + lane % 16) * pitch + ks + 8 * (lane / 16));
      }
#pragma unroll
      for (int np = 0; np < NS / 2; ++np) {
        uint32_t r[4];
        ldmatrix_x4(r, K + (16 * np + (lane % 8) + 8 * (lane / 16)) * pitch + ks + 8 * ((lane / 8) % 2));
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        Mma<T>::run(sc[2 * np], a, b0);
        Mma<T>::run(sc[2 * np + 1], a, b1);
      }
    }
    // Mask, then the online softmax update of rows row0 (r = 0, 1) and row0 + 8 (r = 2, 3).
    // Only boundary tiles mask (uniform over the block): the one reaching past Sk and,
    // causal, those reaching past the first row's last key (q0 + offset).
#pragma unroll
    for (int i = 0; i < NS; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) sc[i][r] *= p.scale_log2;
    if ((kt + 1) * BKV > Sk || (p.causal && (kt + 1) * BKV - 1 > q0 + offset)) {
#pragma unroll
      for (int i = 0; i < NS; ++i)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int j = kt * BKV + 8 * i + 2 * t + (r & 1), row = row0 + 8 * (r >> 1);
          if (j >= Sk || (p.causal && j > row + offset)) sc[i][r] = -INFINITY;
        }
    }
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int i = 0; i < NS; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) mx[r >> 1] = fmaxf(mx[r >> 1], sc[i][r]);
    float alpha[2], ref[2];
#pragma unroll
    for (int x = 0; x < 2; ++x) {
      mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 1));
      mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 2));
      ref[x] = mx[x] == -INFINITY ? 0.f : mx[x];  // all masked so far: avoid inf − inf
      alpha[x] = exp2f(m[x] - ref[x]);
      m[x] = mx[x];
      l[x] *= alpha[x];
      lr[x] *= alpha[x];
    }
#pragma unroll
    for (int i = 0; i < NO; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) o[i][r] *= alpha[r >> 1];
#pragma unroll
    for (int i = 0; i < NS; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        // The output normalizer sums P rounded to the storage type — exactly the
        // weights P·V uses; the log-sum-exp keeps the unrounded sum.
        const float pe = exp2f(sc[i][r] - ref[r >> 1]);
        sc[i][r] = to_f32(from_f32<T>(pe));
        l[r >> 1] += pe;
        lr[r >> 1] += sc[i][r];
      }
    // P (C layout of Q·Kᵀ) is already the A layout of P·V: two n8 score tiles = one k16 step.
#pragma unroll
    for (int j = 0; j < BKV / 16; ++j) {
      const uint32_t a[4] = {Mma<T>::pack(sc[2 * j][0], sc[2 * j][1]), Mma<T>::pack(sc[2 * j][2], sc[2 * j][3]),
                             Mma<T>::pack(sc[2 * j + 1][0], sc[2 * j + 1][1]),
                             Mma<T>::pack(sc[2 * j + 1][2], sc[2 * j + 1][3])};
#pragma unroll
      for (int np = 0; np < NO / 2; ++np) {
        uint32_t r[4];
        ldmatrix_x4_trans(r, V + (16 * j + (lane % 8) + 8 * ((lane / 8) % 2)) * pitch + dv0 + 16 * np + 8 * (lane / 16));
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        Mma<T>::run(o[2 * np], a, b0);
        Mma<T>::run(o[2 * np + 1], a, b1);
      }
    }
    __syncthreads();  // this stage is refilled next
    if (STAGES == 1 && kt + 1 < ntiles) {
      load_kv(0, (kt + 1) * BKV);
      cp_async_commit();
    }
  }
  cp_async_wait_all();
#pragma unroll
  for (int x = 0; x < 2; ++x) {
    l[x] += __shfl_xor_sync(0xffffffffu, l[x], 1);
    l[x] += __shfl_xor_sync(0xffffffffu, l[x], 2);
    lr[x] += __shfl_xor_sync(0xffffffffu, lr[x], 1);
    lr[x] += __shfl_xor_sync(0xffffffffu, lr[x], 2);
  }
  T* go = static_cast<T*>(p.out);
  const float inv[2] = {lr[0] > 0.f ? 1.f / lr[0] : 0.f, lr[1] > 0.f ? 1.f / lr[1] : 0.f};
#pragma unroll
  for (int i = 0; i < NO; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = row0 + 8 * (r >> 1), d = dv0 + 8 * i + 2 * t + (r & 1);
      if (row < Sq && d < p.D) go[((size_t)(qbase + row) * p.Hq + h) * p.D + d] = from_f32<T>(o[i][r] * inv[r >> 1]);
    }
  if (p.lse && chunk == 0 && t == 0) {
#pragma unroll
    for (int x = 0; x < 2; ++x) {
      const int row = row0 + 8 * x;
      if (row >= Sq) continue;
      const float v = l[x] > 0.f ? (m[x] + log2f(l[x])) * kLn2 : -INFINITY;
      const size_t idx = p.lse_packed == 2 ? (size_t)(qbase + row) * p.Hq + h
                         : p.lse_packed ? (size_t)h * p.Tq + qbase + row
                                        : ((size_t)b * p.Hq + h) * Sq + row;
      p.lse[idx] = v;
    }
  }
}

template <class T, int BKV, int DVC, int STAGES, int DP>
void launch_fa_mma(const FaParams& p, int B, int max_sq, cudaStream_t st) {
  const size_t smem = size_t(64 + 2 * STAGES * BKV) * size_t(DP + 8) * sizeof(T);
  auto* kernel = fa_mma_kernel<T, BKV, DVC, STAGES, DP>;
  LLMK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(unsigned((max_sq + 63) / 64), unsigned(p.Hq), unsigned(B * p.chunks)), block(128);
  llmk_launch(kernel, grid, block, smem, st, p);
}

}  // namespace llmk::LLMK_DEVICE_NS::attn
