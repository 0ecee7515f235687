// LLM.int8() on CUDA (definitions and rounding as the cpu kernels: cpu/isa/int8_gemm.cpp).
//   quantize_weight_kernel   block per weight row: absmax, q = RNE(w · 127/absmax), Σ q
//   outlier_flags_kernel     thread per column: some finite |x[m,k]| >= threshold
//   compact_kernel           one block: flags -> ascending column list + count (on device:
//                            the host never waits for |O|)
//   quantize_rows_kernel     block per row of x: absmax over non-outlier columns, s8 row
//                            (zero padded to ldq = K rounded up to 64), x[m, O] in f32
//   int8_gemm_kernel         M > 8: mma.sync m16n8k32 s8 (ldmatrix, cp.async double
//                            buffer), epilogue = dequantization + outlier product + bias
//   int8_gemv_kernel         M <= 8: warp per output column streams its int8 row once
// check:cuda expects: mma.sync.aligned.m16n8k32 ldmatrix cp.async
#include <algorithm>
#include <climits>
#include <type_traits>

#include "convert.cuh"
#include "reduce.cuh"
#include "fragments.cuh"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS {
namespace {

constexpr int kThreads = 256;
constexpr float kInv127 = 1.f / 127.f;

__device__ __forceinline__ bool is_finite_abs(float a) { return a <= 3.402823466e38f; }

// RNE of the f32 product v · inv (rintf rounds half to even), clamped: the same
// integers as the cpu kernels. A lone product is never contracted into an FMA.
__device__ __forceinline__ int quantize_value(float v, float inv) {
  return (int)fminf(127.f, fmaxf(-127.f, rintf(v * inv)));
}

// IEEE division (nvcc's default -prec-div=true), as on the cpu.
__device__ __forceinline__ float inv_scale(float absmax) { return absmax > 0.f ? 127.f / absmax : 0.f; }

template <class T>
__global__ void __launch_bounds__(kThreads) quantize_weight_kernel(const T* w, int K, int8_t* q, float* scale,
                                                                   int* rowsum, int* error) {
  __shared__ float shf[32];
  __shared__ int shi[32];
  const int n = blockIdx.x;
  const T* wr = w + (long long)n * K;
  float am = 0.f;
  int bad = 0;
  for (int k = threadIdx.x; k < K; k += kThreads) {
    const float a = fabsf(to_f32(wr[k]));
    bad |= !is_finite_abs(a);
    am = fmaxf(am, a);
  }
  am = block_reduce(am, MaxF(), shf);
  bad = block_reduce(bad, OrI(), shi);
  const float inv = bad ? 0.f : inv_scale(am);
  int sum = 0;
  for (int k = threadIdx.x; k < K; k += kThreads) {
    const int v = bad ? 0 : quantize_value(to_f32(wr[k]), inv);
    q[(long long)n * K + k] = (int8_t)v;
    sum += v;
  }
  sum = block_reduce(sum, SumI(), shi);
  if (threadIdx.x == 0) {
    scale[n] = bad ? __int_as_float(0x7fc00000) : am;
    rowsum[n] = sum;
    if (bad) atomicMin(error, n);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) outlier_flags_kernel(const T* x, int M, int K, float threshold, int* flags) {
  for (int k = blockIdx.x * kThreads + threadIdx.x; k < K; k += gridDim.x * kThreads) {
    int f = 0;
    for (int m = 0; m < M; ++m) {
      const float a = fabsf(to_f32(x[(long long)m * K + k]));
      f |= (a >= threshold) & is_finite_abs(a);
    }
    flags[k] = f;
  }
}

__global__ void __launch_bounds__(kThreads) compact_kernel(const int* flags, int K, int* cols, int* count) {
  __shared__ int warp_total[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int base = 0;
  for (int k0 = 0; k0 < K; k0 += kThreads) {
    const int k = k0 + threadIdx.x;
    const int f = k < K && flags[k];
    const unsigned ballot = __ballot_sync(0xffffffffu, f);
    if (lane == 0) warp_total[warp] = __popc(ballot);
    __syncthreads();
    int before = base, total = 0;
    for (int i = 0; i < kThreads / 32; ++i) {
      if (i < warp) before += warp_total[i];
      total += warp_total[i];
    }
    if (f) cols[before + __popc(ballot & ((1u << lane) - 1u))] = k;
    base += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) *count = base;
}

// xo (nullable): [M, ldo] x[m, O] in f32; a row with NaN/±Inf gets sx = NaN, q = 0, xo = 0.
template <class T>
__global__ void __launch_bounds__(kThreads) quantize_rows_kernel(const T* x, int K, const int* flags, const int* cols,
                                                                 const int* count, int8_t* q, int ldq, float* sx,
                                                                 float* xo, int ldo) {
  __shared__ float shf[32];
  __shared__ int shi[32];
  const int m = blockIdx.x;
  const T* xr = x + (long long)m * K;
  float am = 0.f;
  int bad = 0;
  for (int k = threadIdx.x; k < K; k += kThreads) {
    const float a = fabsf(to_f32(xr[k]));
    bad |= !is_finite_abs(a);
    if (!flags[k]) am = fmaxf(am, a);
  }
  am = block_reduce(am, MaxF(), shf);
  bad = block_reduce(bad, OrI(), shi);
  const float inv = inv_scale(am);
  for (int k = threadIdx.x; k < ldq; k += kThreads)
    q[(long long)m * ldq + k] = (int8_t)(k < K && !bad && !flags[k] ? quantize_value(to_f32(xr[k]), inv) : 0);
  if (threadIdx.x == 0) sx[m] = bad ? __int_as_float(0x7fc00000) : am;
  if (xo) {
    const int nout = *count;
    for (int t = threadIdx.x; t < nout; t += kThreads) xo[(long long)m * ldo + t] = bad ? 0.f : to_f32(xr[cols[t]]);
  }
}

// Everything the fused epilogue needs besides the int32 dot.
template <class T>
struct Epilogue {
  const float* sx;     // [M]
  const float* sw;     // [N]
  const T* bias;       // [N] or null
  const float* xo;     // [M, ldo]
  int ldo;
  const int* cols;     // outlier columns
  const int* count;    // |O|
  T* y;                // [M, N]
  __device__ __forceinline__ void store(int m, int n, int N, int dot, float outlier) const {
    const float v = (float(dot) * (sx[m] * kInv127) + outlier) * (sw[n] * kInv127);
    y[(long long)m * N + n] = from_f32<T>(bias ? v + to_f32(bias[n]) : v);
  }
};

// Block tile 64 × 64 × 64 bytes with 4 warps as 2 × 2, each warp 32 × 32 = 2 × 4 mma
// tiles: 8 mma m16n8k32 per 4 ldmatrix_x4 per 32-byte k step. 80-byte smem rows keep
// ldmatrix conflict-free (8 rows hit 8 distinct 16-byte bank groups).
constexpr int kBM = 64, kBN = 64, kBK = 64, kPitch = kBK + 16;
constexpr int kOC = 16;  // outlier columns staged per epilogue step

struct Int8Smem {
  int8_t x[2][kBM][kPitch];
  int8_t w[2][kBN][kPitch];
};
static_assert(2 * kBM * kOC * sizeof(float) <= sizeof(Int8Smem), "outlier staging reuses the operand tiles");

// x rows are padded to ldq (a multiple of kBK, zero filled): always whole 16-byte chunks.
// w rows are [N, K] as stored: cp.async when K % 16 == 0, else byte loads.
template <bool kWAligned>
__device__ __forceinline__ void int8_load_tile(Int8Smem& sm, int s, const int8_t* xq, int ldq, const int8_t* w, int M,
                                               int N, int K, int m0, int n0, int k0) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int it = 0; it < 2; ++it) {
    const int c = tid + it * 128, r = c / 4, col = 16 * (c % 4);
    const bool xin = m0 + r < M;
    cp_async_16_zfill(&sm.x[s][r][col], xq + (long long)(xin ? m0 + r : 0) * ldq + k0 + col, xin);
    if (kWAligned) {
      const bool win = n0 + r < N && k0 + col < K;
      cp_async_16_zfill(&sm.w[s][r][col], w + (long long)(win ? n0 + r : 0) * K + (win ? k0 + col : 0), win);
    }
  }
  if (!kWAligned)
    for (int i = tid; i < kBN * kBK; i += 128) {
      const int r = i / kBK, c = i % kBK, k = k0 + c;
      sm.w[s][r][c] = (n0 + r < N && k < K) ? w[(long long)(n0 + r) * K + k] : (int8_t)0;
    }
}

template <class T, bool kWAligned>
__global__ void __launch_bounds__(128) int8_gemm_kernel(const int8_t* xq, int ldq, const int8_t* w, Epilogue<T> ep,
                                                        int M, int N, int K) {
  __shared__ __align__(16) Int8Smem sm;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t4 = lane & 3;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int KT = ldq / kBK;
  int acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;

  int8_load_tile<kWAligned>(sm, 0, xq, ldq, w, M, N, K, m0, n0, 0);
  cp_async_commit();
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt & 1;
    if (kt + 1 < KT) int8_load_tile<kWAligned>(sm, s ^ 1, xq, ldq, w, M, N, K, m0, n0, (kt + 1) * kBK);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 32) {
      // 16-byte chunks = 16 int8 k values: a0..a3 of m16n8k32, b0 b1 of two n8 tiles per x4.
      uint32_t a[2][4], b[4][2];
      warp_tile_fragments(reinterpret_cast<const unsigned char*>(&sm.x[s][wm][kk]),
                          reinterpret_cast<const unsigned char*>(&sm.w[s][wn][kk]), kPitch, a, b);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_m16n8k32_s8s32(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // stage s is refilled by the next iteration's load
  }
  cp_async_wait_all();

  // Outlier product x[m, O] · q[n, O]ᵀ for this block, kOC columns at a time staged
  // in the (now free) operand tiles; accumulated in the mma accumulator layout.
  float out[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) out[i][j][r] = 0.f;
  const int nout = *ep.count;
  float* xs = reinterpret_cast<float*>(&sm);  // [kBM][kOC]
  float* ws = xs + kBM * kOC;                 // [kBN][kOC]
  for (int t0 = 0; t0 < nout; t0 += kOC) {
    __syncthreads();
    for (int i = threadIdx.x; i < kBM * kOC; i += 128) {
      const int r = i / kOC, t = t0 + i % kOC;
      xs[i] = (t < nout && m0 + r < M) ? ep.xo[(long long)(m0 + r) * ep.ldo + t] : 0.f;
      ws[i] = (t < nout && n0 + r < N) ? float(w[(long long)(n0 + r) * K + ep.cols[t]]) : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int c = 0; c < kOC; ++c)
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int r = 0; r < 4; ++r)
            out[i][j][r] += xs[(wm + 16 * i + g + 8 * (r >> 1)) * kOC + c] * ws[(wn + 8 * j + 2 * t4 + (r & 1)) * kOC + c];
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int m = m0 + wm + 16 * i + g + 8 * (r >> 1), n = n0 + wn + 8 * j + 2 * t4 + (r & 1);
        if (m < M && n < N) ep.store(m, n, N, acc[i][j][r], out[i][j][r]);
      }
}

__device__ __forceinline__ int dot4_s8(int a, int b) {
  int s = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) s += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
  return s;
}

// GEMV (decode, M <= 8): warp per output column n, 4 per block; lanes stride over K in
// 16-byte vectors of w (when K % 16 == 0), so each int8 weight row is read once,
// coalesced; the few x rows come from L1/L2. Outlier columns: lanes over t.
constexpr int kGemvMaxM = 8;

template <class T, bool kVec>
__global__ void __launch_bounds__(128) int8_gemv_kernel(const int8_t* xq, int ldq, const int8_t* w, Epilogue<T> ep,
                                                        int M, int N, int K) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * 4 + warp;
  if (n >= N) return;  // whole warp
  const int8_t* wr = w + (long long)n * K;
  int acc[kGemvMaxM];
  float out[kGemvMaxM];
#pragma unroll
  for (int m = 0; m < kGemvMaxM; ++m) {
    acc[m] = 0;
    out[m] = 0.f;
  }
  int k0 = 0;
  if (kVec) {
    const int kv = K / 16 * 16;
    for (int k = lane * 16; k < kv; k += 32 * 16) {
      const int4 wv = __ldg(reinterpret_cast<const int4*>(wr + k));
#pragma unroll
      for (int m = 0; m < kGemvMaxM; ++m) {
        if (m >= M) break;
        const int4 xv = *reinterpret_cast<const int4*>(xq + (long long)m * ldq + k);
        acc[m] += dot4_s8(wv.x, xv.x) + dot4_s8(wv.y, xv.y) + dot4_s8(wv.z, xv.z) + dot4_s8(wv.w, xv.w);
      }
    }
    k0 = kv;
  }
  for (int k = k0 + lane; k < K; k += 32) {
    const int wk = wr[k];
#pragma unroll
    for (int m = 0; m < kGemvMaxM; ++m)
      if (m < M) acc[m] += wk * xq[(long long)m * ldq + k];
  }
  const int nout = *ep.count;
  for (int t = lane; t < nout; t += 32) {
    const float wt = float(wr[ep.cols[t]]);
#pragma unroll
    for (int m = 0; m < kGemvMaxM; ++m) {
      if (m >= M) break;
      out[m] += ep.xo[(long long)m * ep.ldo + t] * wt;
    }
  }
#pragma unroll
  for (int m = 0; m < kGemvMaxM; ++m) {
    for (int o = 16; o > 0; o >>= 1) {
      acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
      out[m] += __shfl_xor_sync(0xffffffffu, out[m], o);
    }
  }
  if (lane == 0)
#pragma unroll
    for (int m = 0; m < kGemvMaxM; ++m) {
      if (m >= M) break;
      ep.store(m, n, N, acc[m], out[m]);
    }
}

int blocks_for(long long n) { return (int)std::min<long long>((n + kThreads - 1) / kThreads, 4096); }

// Outlier columns, scales and s8 rows of x (the activation side of every int8 op).
template <class T>
void quantize_acts(const Tensor& x, float threshold, int* flags, int* cols, int* count, int8_t* q, int ldq, float* sx,
                   float* xo, int ldo, cudaStream_t st) {
  const int M = (int)x.dim(0), K = (int)x.dim(1);
  if (threshold > 0.f)
    llmk_launch(outlier_flags_kernel<T>, dim3(blocks_for(K)), dim3(kThreads), 0, st, x.data<T>(), M, K, threshold,
                flags);
  else
    LLMK_CUDA_CHECK(cudaMemsetAsync(flags, 0, sizeof(int) * (size_t)K, st));
  llmk_launch(compact_kernel, dim3(1), dim3(kThreads), 0, st, (const int*)flags, K, cols, count);
  if (M > 0)
    llmk_launch(quantize_rows_kernel<T>, dim3(M), dim3(kThreads), 0, st, x.data<T>(), K, (const int*)flags,
                (const int*)cols, (const int*)count, q, ldq, sx, xo, ldo);
}

// Stream-ordered scratch: freed after the kernels that use it, without a host wait.
struct Scratch {
  cudaStream_t st;
  void* p = nullptr;
  Scratch(size_t bytes, cudaStream_t s) : st(s) { LLMK_CUDA_CHECK(cudaMallocAsync(&p, bytes ? bytes : 1, st)); }
  ~Scratch() { cudaFreeAsync(p, st); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

template <class T>
void int8_matmul_typed(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias, const Tensor& y,
                       cudaStream_t st) {
  const int M = (int)x.dim(0), K = (int)x.dim(1), N = (int)w.q.dim(0);
  if (M == 0 || N == 0) return;
  const int ldq = (K + kBK - 1) / kBK * kBK, ldo = K;  // |O| <= K is known only on the device
  const size_t o_flags = 0, o_cols = align256(sizeof(int) * K), o_count = o_cols + align256(sizeof(int) * K),
               o_q = o_count + 256, o_sx = o_q + align256((size_t)M * ldq), o_xo = o_sx + align256(sizeof(float) * M),
               total = o_xo + sizeof(float) * (size_t)M * ldo;
  Scratch s(total, st);
  char* base = static_cast<char*>(s.p);
  int* flags = reinterpret_cast<int*>(base + o_flags);
  int* cols = reinterpret_cast<int*>(base + o_cols);
  int* count = reinterpret_cast<int*>(base + o_count);
  int8_t* q = reinterpret_cast<int8_t*>(base + o_q);
  float* sx = reinterpret_cast<float*>(base + o_sx);
  float* xo = reinterpret_cast<float*>(base + o_xo);
  quantize_acts<T>(x, threshold, flags, cols, count, q, ldq, sx, xo, ldo, st);
  const Epilogue<T> ep{sx, w.scale.data<float>(), bias ? bias->data<T>() : nullptr, xo, ldo, cols, count, y.data<T>()};
  const int8_t* wq = w.q.data<int8_t>();
  const bool aligned = K % 16 == 0;
  if (M <= kGemvMaxM) {
    const dim3 grid((N + 3) / 4);
    if (aligned)
      llmk_launch(int8_gemv_kernel<T, true>, grid, dim3(128), 0, st, (const int8_t*)q, ldq, wq, ep, M, N, K);
    else
      llmk_launch(int8_gemv_kernel<T, false>, grid, dim3(128), 0, st, (const int8_t*)q, ldq, wq, ep, M, N, K);
  } else {
    const dim3 grid((N + kBN - 1) / kBN, (M + kBM - 1) / kBM);
    if (aligned)
      llmk_launch(int8_gemm_kernel<T, true>, grid, dim3(128), 0, st, (const int8_t*)q, ldq, wq, ep, M, N, K);
    else
      llmk_launch(int8_gemm_kernel<T, false>, grid, dim3(128), 0, st, (const int8_t*)q, ldq, wq, ep, M, N, K);
  }
}

}  // namespace

void launch_int8_quantize_weight(const Tensor& w, const Int8Weight& out, int* error, cudaStream_t st) {
  const int N = (int)w.dim(0), K = (int)w.dim(1);
  if (N == 0) return;
  auto go = [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    llmk_launch(quantize_weight_kernel<T>, dim3(N), dim3(kThreads), 0, st, w.data<T>(), K, out.q.data<int8_t>(),
                out.scale.data<float>(), out.rowsum.data<int32_t>(), error);
  };
  if (w.dtype == DType::F32)
    go((float*)nullptr);
  else if (w.dtype == DType::F16)
    go((__half*)nullptr);
  else
    go((__nv_bfloat16*)nullptr);
}

void launch_int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                               const Tensor& outlier_mask, cudaStream_t st) {
  const int K = (int)x.dim(1);
  Scratch s(align256(sizeof(int) * K) + 256, st);
  int* cols = static_cast<int*>(s.p);
  int* count = reinterpret_cast<int*>(static_cast<char*>(s.p) + align256(sizeof(int) * K));
  if (x.dtype == DType::F32)
    quantize_acts<float>(x, threshold, outlier_mask.data<int32_t>(), cols, count, q.data<int8_t>(), K,
                         scale.data<float>(), nullptr, 0, st);
  else
    quantize_acts<__half>(x, threshold, outlier_mask.data<int32_t>(), cols, count, q.data<int8_t>(), K,
                          scale.data<float>(), nullptr, 0, st);
}

void launch_int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias, const Tensor& y,
                        cudaStream_t st) {
  if (x.dtype == DType::F32)
    int8_matmul_typed<float>(x, w, threshold, bias, y, st);
  else
    int8_matmul_typed<__half>(x, w, threshold, bias, y, st);
}

}  // namespace llmk::LLMK_DEVICE_NS
