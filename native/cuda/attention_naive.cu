// The benchmark's baseline on CUDA: attention the straightforward way, the Sq×Sk scores
// materialized in memory. Three passes, each on tensor cores where FlashAttention uses
// them, so the comparison measures what the flash algorithm saves (the scores' round
// trips through memory and the extra passes), not a slow GEMM:
//   naive_scores_kernel   S = scale · Q·Kᵀ (f32, causal entries −inf), 64×64 tiles, mma
//   naive_softmax_kernel  P = 2^(S − row max) stored in the input type, and 1 / Σ P of
//                         the stored (rounded) values, as FlashAttention normalizes
//   naive_pv_kernel       O = P·V, 64 rows × up to 128 dims a block, mma
// f16/bf16 (f32 has no tensor-core path in either). Dense [B, S, H, D] layouts.
// check:cuda expects: mma.sync.aligned.m16n8k16 ldmatrix cp.async
#include "attention_fa.cuh"

namespace llmk::LLMK_DEVICE_NS {
namespace {

using namespace attn;

struct NaiveParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* s;  // [B·Hq, Sq, ldS] f32
  void* p;   // [B·Hq, Sq, ldS] of the input type, 0 past Sk
  float* inv;  // [B·Hq, Sq]: 1 / Σ P (0 for a row that sees no key)
  int B, Sq, Sk, Hq, Hkv, D, Dp, ldS;
  float scale_log2;
  int causal;
};

template <class T>
__global__ void __launch_bounds__(128) naive_scores_kernel(NaiveParams p) {
  const int bh = blockIdx.z, b = bh / p.Hq, h = bh % p.Hq, kvh = h / (p.Hq / p.Hkv);
  const int i0 = blockIdx.x * 64, j0 = blockIdx.y * 64, pitch = p.Dp + 8;
  T* Qs = dynamic_smem<T>();
  T* Ks = Qs + 64 * pitch;
  load_rows(Qs, pitch, static_cast<const T*>(p.q), p.Hq, h, p.D, p.Dp, b * p.Sq, i0, p.Sq, 64);
  load_rows(Ks, pitch, static_cast<const T*>(p.k), p.Hkv, kvh, p.D, p.Dp, b * p.Sk, j0, p.Sk, 64);
  cp_async_commit();
  cp_async_wait_all();
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  float sc[8][4] = {};
  for (int ks = 0; ks < p.Dp; ks += 16) {
    uint32_t a[4];
    ldmatrix_x4(a, Qs + (16 * warp + lane % 16) * pitch + ks + 8 * (lane / 16));
#pragma unroll
    for (int np = 0; np < 4; ++np) {
      uint32_t r[4];
      ldmatrix_x4(r, Ks + (16 * np + (lane % 8) + 8 * (lane / 16)) * pitch + ks + 8 * ((lane / 8) % 2));
      const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
      Mma<T>::run(sc[2 * np], a, b0);
      Mma<T>::run(sc[2 * np + 1], a, b1);
    }
  }
  const int offset = p.Sk - p.Sq;  // bottom-right causal alignment
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = i0 + 16 * warp + g + 8 * (r >> 1), j = j0 + 8 * i + 2 * t + (r & 1);
      if (row >= p.Sq || j >= p.Sk) continue;
      const bool masked = p.causal && j > row + offset;
      p.s[((size_t)bh * p.Sq + row) * p.ldS + j] = masked ? -INFINITY : sc[i][r] * p.scale_log2;
    }
}

// One warp a row: the max, then P = 2^(s − max) rounded to T (0 past Sk) and the
// reciprocal of the sum of the rounded values (0 for a row that sees no key).
template <class T>
__global__ void __launch_bounds__(128) naive_softmax_kernel(NaiveParams p) {
  const int row = blockIdx.x * 4 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= p.B * p.Hq * p.Sq) return;  // whole warp
  const float* s = p.s + (size_t)row * p.ldS;
  T* out = static_cast<T*>(p.p) + (size_t)row * p.ldS;
  float mx = -INFINITY;
  for (int j = lane; j < p.Sk; j += 32) mx = fmaxf(mx, s[j]);
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
  const float ref = mx == -INFINITY ? 0.f : mx;
  float sum = 0.f;
  for (int j = lane; j < p.ldS; j += 32) {
    const T e = from_f32<T>(j < p.Sk ? exp2f(s[j] - ref) : 0.f);
    out[j] = e;
    sum += to_f32(e);
  }
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) p.inv[row] = sum > 0.f ? 1.f / sum : 0.f;
}

template <class T, int DVC>
__global__ void __launch_bounds__(128) naive_pv_kernel(NaiveParams p, int chunks) {
  constexpr int NO = DVC / 8;
  const int b = blockIdx.z / chunks, chunk = blockIdx.z % chunks, h = blockIdx.y, kvh = h / (p.Hq / p.Hkv);
  const int bh = b * p.Hq + h, i0 = blockIdx.x * 64, dv0 = chunk * DVC;
  const int ppitch = 64 + 8, vpitch = p.Dp + 8;
  T* Ps = dynamic_smem<T>();
  T* Vs = Ps + 64 * ppitch;
  const T* gp = static_cast<const T*>(p.p) + (size_t)bh * p.Sq * p.ldS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  float o[NO][4] = {};
  for (int j0 = 0; j0 < p.Sk; j0 += 64) {
    // P rows [i0, i0 + 64), keys [j0, j0 + 64): 8 chunks of 16 bytes a row (ldS is a
    // multiple of 64, so whole tiles are in bounds; rows past Sq read as zeros).
    for (int c = threadIdx.x; c < 64 * 8; c += blockDim.x) {
      const int r = c / 8, col = 8 * (c % 8);
      const bool ok = i0 + r < p.Sq;
      cp_async_16_zfill(Ps + r * ppitch + col, gp + (size_t)(ok ? i0 + r : 0) * p.ldS + j0 + col, ok);
    }
    load_rows(Vs, vpitch, static_cast<const T*>(p.v), p.Hkv, kvh, p.D, p.Dp, b * p.Sk, j0, p.Sk, 64);
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 64; kk += 16) {
      uint32_t a[4];
      ldmatrix_x4(a, Ps + (16 * warp + lane % 16) * ppitch + kk + 8 * (lane / 16));
#pragma unroll
      for (int np = 0; np < NO / 2; ++np) {
        if (dv0 + 16 * np >= p.D) break;
        uint32_t r[4];
        ldmatrix_x4_trans(r, Vs + (kk + (lane % 8) + 8 * ((lane / 8) % 2)) * vpitch + dv0 + 16 * np + 8 * (lane / 16));
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        Mma<T>::run(o[2 * np], a, b0);
        Mma<T>::run(o[2 * np + 1], a, b1);
      }
    }
    __syncthreads();  // the tiles are refilled next
  }
  T* go = static_cast<T*>(p.out);
#pragma unroll
  for (int i = 0; i < NO; ++i)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = i0 + 16 * warp + g + 8 * (r >> 1), d = dv0 + 8 * i + 2 * t + (r & 1);
      if (row < p.Sq && d < p.D)
        go[((size_t)(b * p.Sq + row) * p.Hq + h) * p.D + d] = from_f32<T>(o[i][r] * p.inv[(size_t)bh * p.Sq + row]);
    }
}

template <class T>
void launch_naive(const NaiveParams& p, cudaStream_t st) {
  const size_t smem_s = size_t(128) * size_t(p.Dp + 8) * sizeof(T);
  LLMK_CUDA_CHECK(cudaFuncSetAttribute(naive_scores_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_s)));
  llmk_launch(naive_scores_kernel<T>, dim3(unsigned((p.Sq + 63) / 64), unsigned((p.Sk + 63) / 64), unsigned(p.B * p.Hq)),
              dim3(128), smem_s, st, p);
  llmk_launch(naive_softmax_kernel<T>, dim3(unsigned((p.B * p.Hq * p.Sq + 3) / 4)), dim3(128), 0, st, p);
  const int chunks = (p.D + 127) / 128;
  const size_t smem_pv = (size_t(64) * 72 + size_t(64) * size_t(p.Dp + 8)) * sizeof(T);
  auto* pv = naive_pv_kernel<T, 128>;
  LLMK_CUDA_CHECK(cudaFuncSetAttribute(pv, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_pv)));
  llmk_launch(pv, dim3(unsigned((p.Sq + 63) / 64), unsigned(p.Hq), unsigned(p.B * chunks)), dim3(128),
              smem_pv, st, p, chunks);
}

}  // namespace

size_t attention_naive_workspace(const Tensor& q, const Tensor& k) {
  const size_t B = size_t(q.dim(0)), Sq = size_t(q.dim(1)), Hq = size_t(q.dim(2)), ldS = size_t((k.dim(1) + 63) / 64 * 64);
  return B * Hq * Sq * (ldS * (sizeof(float) + dtype_size(q.dtype)) + sizeof(float));
}

void launch_attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& ap, const Tensor& out,
                            void* workspace, cudaStream_t st) {
  NaiveParams p{};
  p.q = q.raw();
  p.k = k.raw();
  p.v = v.raw();
  p.out = out.raw();
  p.B = int(q.dim(0));
  p.Sq = int(q.dim(1));
  p.Sk = int(k.dim(1));
  p.Hq = int(q.dim(2));
  p.Hkv = int(k.dim(2));
  p.D = int(q.dim(3));
  p.Dp = (p.D + 15) / 16 * 16;
  p.ldS = (p.Sk + 63) / 64 * 64;
  p.scale_log2 = ap.scale * kLog2e;
  p.causal = ap.causal;
  p.s = static_cast<float*>(workspace);
  p.p = p.s + size_t(p.B) * p.Hq * p.Sq * p.ldS;
  p.inv = reinterpret_cast<float*>(static_cast<char*>(p.p) + size_t(p.B) * p.Hq * p.Sq * p.ldS * dtype_size(q.dtype));
  if (p.B == 0 || p.Sq == 0 || p.Hq == 0) return;
  if (p.Sk == 0) {  // no key: every row is 0
    LLMK_CUDA_CHECK(cudaMemsetAsync(out.raw(), 0, out.nbytes(), st));
    return;
  }
  if (q.dtype == DType::F16) launch_naive<__half>(p, st);
  else launch_naive<__nv_bfloat16>(p, st);
}

}  // namespace llmk::LLMK_DEVICE_NS
