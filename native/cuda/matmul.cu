// Dense y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias) on CUDA, f32 accumulation.
//   f16/bf16, M > 8 : tensor-core GEMM (ldmatrix + mma.sync m16n8k16, cp.async double buffer)
//   any dtype, M ≤ 8: GEMV, one warp per output column streams its w row once
//   f32, M > 8      : SIMT tiled GEMM (no f32 tensor-core path: TF32 would lose precision)
// check:cuda expects: mma.sync.aligned.m16n8k16 ldmatrix cp.async
#include "convert.cuh"
#include "fragments.cuh"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS {
namespace {

template <class T>
struct MmaTraits;
template <>
struct MmaTraits<__half> {
  static __device__ __forceinline__ void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_m16n8k16_f16f32(d, a, b, c);
  }
};
template <>
struct MmaTraits<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_m16n8k16_bf16f32(d, a, b, c);
  }
};

// Block tile 64 × 64 × 32 with 4 warps as 2 × 2, each warp 32 × 32 = 2 × 4 mma tiles:
// 8 mma per 4 ldmatrix per k16 step. Small enough (20 KiB smem, 2 stages) for several
// blocks per SM on decode-ish M, big enough to reuse each loaded tile 64 times.
constexpr int kBM = 64, kBN = 64, kBK = 32, kPitch = kBK + 8;  // +8 halves: 80-B rows, ldmatrix conflict-free

template <class T>
struct GemmSmem {
  T x[2][kBM][kPitch];
  T w[2][kBN][kPitch];
};

template <bool kAligned, class T>
__device__ __forceinline__ void gemm_load_tile(GemmSmem<T>& sm, int s, const T* x, const T* w, int M, int N, int K,
                                               int m0, int n0, int k0) {
  const int tid = threadIdx.x;
  if (kAligned) {
    // 64 rows × 4 chunks of 8 elements per operand = 256 chunks: 2 per thread each.
#pragma unroll
    for (int it = 0; it < 2; ++it) {
      const int c = tid + it * 128, r = c / 4, col = 8 * (c % 4);
      const bool kin = k0 + col < K;  // K % 8 == 0 here: a chunk is all in or all out
      const bool xin = m0 + r < M && kin, win = n0 + r < N && kin;
      cp_async_16_zfill(&sm.x[s][r][col], x + (size_t)(xin ? m0 + r : 0) * K + (xin ? k0 + col : 0), xin);
      cp_async_16_zfill(&sm.w[s][r][col], w + (size_t)(win ? n0 + r : 0) * K + (win ? k0 + col : 0), win);
    }
  } else {
    const T zero = from_f32<T>(0.f);
    for (int i = tid; i < kBM * kBK; i += 128) {
      const int r = i / kBK, c = i % kBK, k = k0 + c;
      sm.x[s][r][c] = (m0 + r < M && k < K) ? x[(size_t)(m0 + r) * K + k] : zero;
      sm.w[s][r][c] = (n0 + r < N && k < K) ? w[(size_t)(n0 + r) * K + k] : zero;
    }
  }
}

template <bool kAligned, class T>
__global__ void __launch_bounds__(128) gemm_mma_kernel(const T* x, const T* w, const T* bias, T* y, int M, int N, int K) {
  __shared__ __align__(16) GemmSmem<T> sm;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int KT = (K + kBK - 1) / kBK;
  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;

  gemm_load_tile<kAligned>(sm, 0, x, w, M, N, K, m0, n0, 0);
  cp_async_commit();
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt & 1;
    if (kt + 1 < KT) gemm_load_tile<kAligned>(sm, s ^ 1, x, w, M, N, K, m0, n0, (kt + 1) * kBK);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[2][4], b[4][2];
      warp_tile_fragments(reinterpret_cast<const unsigned char*>(&sm.x[s][wm][kk]),
                          reinterpret_cast<const unsigned char*>(&sm.w[s][wn][kk]), kPitch * int(sizeof(T)), a, b);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) MmaTraits<T>::mma(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // stage s is refilled by the next iteration's load
  }
  cp_async_wait_all();
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = m0 + wm + 16 * i + g + 8 * (r >> 1), n = n0 + wn + 8 * j + 2 * t + (r & 1);
        if (m < M && n < N) y[(size_t)m * N + n] = from_f32<T>(acc[i][j][r] + (bias ? to_f32(bias[n]) : 0.f));
      }
}

// GEMV: warp per output column n; lanes stride over K in 16-byte vectors when rows
// are aligned (w is the only large operand: read exactly once, coalesced).
template <class T, bool kVec>
__global__ void __launch_bounds__(128) gemv_kernel(const T* x, const T* w, const T* bias, T* y, int M, int N, int K) {
  constexpr int kMaxM = 8, kVecElems = 16 / sizeof(T);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * 4 + warp;
  if (n >= N) return;  // whole warp
  const T* wr = w + (size_t)n * K;
  float acc[kMaxM];
#pragma unroll
  for (int m = 0; m < kMaxM; ++m) acc[m] = 0.f;
  int k0 = 0;
  if (kVec) {
    const int kv = K / kVecElems * kVecElems;
    for (int k = lane * kVecElems; k < kv; k += 32 * kVecElems) {
      T wv[kVecElems];
      *reinterpret_cast<uint4*>(wv) = __ldg(reinterpret_cast<const uint4*>(wr + k));
#pragma unroll
      for (int m = 0; m < kMaxM; ++m) {
        if (m >= M) break;
        const T* xr = x + (size_t)m * K + k;
#pragma unroll
        for (int e = 0; e < kVecElems; ++e) acc[m] += to_f32(wv[e]) * to_f32(xr[e]);
      }
    }
    k0 = kv;
  }
  for (int k = k0 + lane; k < K; k += 32) {
    const float wk = to_f32(wr[k]);
#pragma unroll
    for (int m = 0; m < kMaxM; ++m) {
      if (m >= M) break;
      acc[m] += wk * to_f32(x[(size_t)m * K + k]);
    }
  }
#pragma unroll
  for (int m = 0; m < kMaxM; ++m) {
    float s = acc[m];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0 && m < M) y[(size_t)m * N + n] = from_f32<T>(s + (bias ? to_f32(bias[n]) : 0.f));
  }
}

// f32 SIMT GEMM: 64 × 64 tile, 256 threads with 4 × 4 outputs each, k-slabs of 16.
__global__ void __launch_bounds__(256) gemm_f32_kernel(const float* x, const float* w, const float* bias, float* y, int M,
                                                       int N, int K) {
  __shared__ float xs[16][64 + 1], ws[16][64 + 1];  // [k][m] / [k][n], +1 against bank conflicts
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += 16) {
    for (int i = threadIdx.x; i < 64 * 16; i += 256) {
      const int r = i / 16, c = i % 16;
      xs[c][r] = (m0 + r < M && k0 + c < K) ? x[(size_t)(m0 + r) * K + k0 + c] : 0.f;
      ws[c][r] = (n0 + r < N && k0 + c < K) ? w[(size_t)(n0 + r) * K + k0 + c] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[k][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[k][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < M && n < N) y[(size_t)m * N + n] = acc[i][j] + (bias ? bias[n] : 0.f);
    }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class T>
void launch_gemv(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y, cudaStream_t st) {
  const int M = int(x.dim(0)), K = int(x.dim(1)), N = int(w.dim(0));
  const bool vec = K % (16 / int(sizeof(T))) == 0 && aligned16(w.raw()) && aligned16(x.raw());
  const dim3 grid(unsigned((N + 3) / 4)), block(128);
  const T* b = bias ? bias->data<T>() : nullptr;
  if (vec)
    llmk_launch(gemv_kernel<T, true>, grid, block, 0, st, x.data<T>(), w.data<T>(), b, y.data<T>(), M, N, K);
  else
    llmk_launch(gemv_kernel<T, false>, grid, block, 0, st, x.data<T>(), w.data<T>(), b, y.data<T>(), M, N, K);
}

template <class T>
void launch_gemm_mma(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y, cudaStream_t st) {
  const int M = int(x.dim(0)), K = int(x.dim(1)), N = int(w.dim(0));
  const bool aligned = K % 8 == 0 && aligned16(x.raw()) && aligned16(w.raw());
  const dim3 grid(unsigned((N + kBN - 1) / kBN), unsigned((M + kBM - 1) / kBM)), block(128);
  const T* b = bias ? bias->data<T>() : nullptr;
  if (aligned)
    llmk_launch(gemm_mma_kernel<true, T>, grid, block, 0, st, x.data<T>(), w.data<T>(), b, y.data<T>(), M, N, K);
  else
    llmk_launch(gemm_mma_kernel<false, T>, grid, block, 0, st, x.data<T>(), w.data<T>(), b, y.data<T>(), M, N, K);
}

}  // namespace

void launch_matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y, cudaStream_t st) {
  const int M = int(x.dim(0)), K = int(x.dim(1)), N = int(w.dim(0));
  if (!M || !N) return;
  if (K == 0) {  // empty reduction: y = bias (or 0)
    if (bias)
      for (int m = 0; m < M; ++m)
        LLMK_CUDA_CHECK(cudaMemcpyAsync(y.data<char>() + size_t(m) * N * dtype_size(y.dtype), bias->raw(), bias->nbytes(),
                                        cudaMemcpyDeviceToDevice, st));
    else
      LLMK_CUDA_CHECK(cudaMemsetAsync(y.raw(), 0, y.nbytes(), st));
    return;
  }
  const bool small = M <= 8;
  switch (x.dtype) {
    case DType::F16: small ? launch_gemv<__half>(x, w, bias, y, st) : launch_gemm_mma<__half>(x, w, bias, y, st); break;
    case DType::BF16:
      small ? launch_gemv<__nv_bfloat16>(x, w, bias, y, st) : launch_gemm_mma<__nv_bfloat16>(x, w, bias, y, st);
      break;
    case DType::F32:
      if (small) {
        launch_gemv<float>(x, w, bias, y, st);
      } else {
        const dim3 grid(unsigned((N + 63) / 64), unsigned((M + 63) / 64)), block(256);
        llmk_launch(gemm_f32_kernel, grid, block, 0, st, x.data<float>(), w.data<float>(),
                    bias ? bias->data<float>() : nullptr, y.data<float>(), M, N, K);
      }
      break;
    default: fail(ErrorKind::TypeError, "matmul: unsupported dtype ", dtype_name(x.dtype));
  }
}

}  // namespace llmk::LLMK_DEVICE_NS
