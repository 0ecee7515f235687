// 2:4 structured sparsity on CUDA: prune / compress / decompress (one thread per
// group or metadata word: load-time work), a tensor-core GEMM for f16 with M > 8
// (mma.sp, the weight as the sparse A operand: yᵀ = W·xᵀ) and a warp-per-row kernel
// for everything else (M ≤ 8 decode, f32, bf16) that streams the compressed weight once.
//
// The public metadata format (common/sparse24.h) is already register-ready: one i32
// word holds the 8 groups (32 logical k) of a row, i.e. one mma.sp k-tile, and the
// e operand of a lane is two 16-bit halves of the words of rows g and g+8.
// check:cuda expects: mma.sp::ordered_metadata ldmatrix cp.async
#include <climits>

#include "common/sparse24.h"
#include "convert.cuh"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS {
namespace {

// ---- load-time kernels ----------------------------------------------------------

template <class T>
__global__ void sparse24_prune_kernel(const T* w, const T* norms, T* out, long long groups, int K) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= groups) return;
  const long long base = i * 4;
  const int k0 = int(base % K);
  // Fully unrolled with running maxima: no dynamic register indexing (local memory).
  float sc[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) sc[j] = fabsf(to_f32(w[base + j])) * (norms ? to_f32(norms[k0 + j]) : 1.f);
  int best = 0;
  float bs = sc[0];
#pragma unroll
  for (int j = 1; j < 4; ++j)
    if (sc[j] > bs) {
      bs = sc[j];
      best = j;
    }
  int second = best == 0 ? 1 : 0;
  float ss = best == 0 ? sc[1] : sc[0];
#pragma unroll
  for (int j = 0; j < 4; ++j)
    if (j != best && sc[j] > ss) {
      ss = sc[j];
      second = j;
    }
#pragma unroll
  for (int j = 0; j < 4; ++j) out[base + j] = (j == best || j == second) ? w[base + j] : from_f32<T>(0.f);
}

// One thread per metadata word (8 groups of one row). A group with more than two
// non-zeros records 2·(row·G + group) + (nz − 3) in *error (atomicMin: the first wins).
template <class T>
__global__ void sparse24_compress_kernel(const T* w, T* values, uint32_t* meta, int N, int K, int* error) {
  const int MW = sparse24_meta_words(K), G = K / 4;
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= (long long)N * MW) return;
  const int n = int(i / MW), word = int(i % MW);
  uint32_t bits = 0;
  for (int c = 0; c < 8; ++c) {
    const int g = word * 8 + c;
    if (g >= G) break;
    const T* src = w + (long long)n * K + 4 * g;
    uint32_t mask = 0;
    int nz = 0;
    for (int j = 0; j < 4; ++j) {
      const bool z = to_f32(src[j]) == 0.f;
      mask |= uint32_t(!z) << j;
      nz += !z;
    }
    if (nz > 2) {
      atomicMin(error, int(2 * ((long long)n * G + g) + (nz - 3)));
      return;
    }
    int i0, i1;
    sparse24_pick(mask, &i0, &i1);
    values[(long long)n * (K / 2) + 2 * g] = src[i0];
    values[(long long)n * (K / 2) + 2 * g + 1] = src[i1];
    bits |= sparse24_nibble(i0, i1) << (4 * c);
  }
  meta[i] = bits;
}

template <class T>
__global__ void sparse24_decompress_kernel(const T* values, const uint32_t* meta, T* out, int N, int K, int* error) {
  const int MW = sparse24_meta_words(K), G = K / 4;
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= (long long)N * MW) return;
  const int n = int(i / MW), word = int(i % MW);
  const uint32_t bits = meta[i];
  for (int c = 0; c < 8; ++c) {
    const int g = word * 8 + c;
    if (g >= G) break;
    const uint32_t nib = (bits >> (4 * c)) & 0xfu;
    T* dst = out + (long long)n * K + 4 * g;
    for (int j = 0; j < 4; ++j) dst[j] = from_f32<T>(0.f);
    if (!sparse24_nibble_legal(nib)) {
      atomicMin(error, int((long long)n * G + g));
      continue;
    }
    dst[nib & 3] = values[(long long)n * (K / 2) + 2 * g];
    dst[nib >> 2] = values[(long long)n * (K / 2) + 2 * g + 1];
  }
}

// ---- warp-per-row product (M ≤ 8, f32, bf16) ------------------------------------

// Each lane takes whole metadata words (8 groups = 16 kept weights, 32 logical k) of
// the row: the compressed row is read once, coalesced across the warp; x rows come
// through L1 (every warp of the block reads the same x).
template <class T>
__global__ void __launch_bounds__(128) sparse24_rows_kernel(const T* x, const T* values, const uint32_t* meta,
                                                            const T* bias, T* y, int M, int N, int K) {
  constexpr int kRowsPerPass = 8;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * (blockDim.x / 32) + warp;
  if (n >= N) return;  // whole warp: no collective below is split
  const int MW = sparse24_meta_words(K), G = K / 4;
  const T* vrow = values + (long long)n * (K / 2);
  const uint32_t* mrow = meta + (long long)n * MW;
  for (int m0 = 0; m0 < M; m0 += kRowsPerPass) {
    const int mr = M - m0 < kRowsPerPass ? M - m0 : kRowsPerPass;
    float acc[kRowsPerPass];
    for (int r = 0; r < kRowsPerPass; ++r) acc[r] = 0.f;
    for (int word = lane; word < MW; word += 32) {
      const uint32_t bits = __ldg(mrow + word);
      for (int c = 0; c < 8; ++c) {
        const int g = word * 8 + c;
        if (g >= G) break;
        const uint32_t nib = (bits >> (4 * c)) & 0xfu;
        const float a = to_f32(vrow[2 * g]), b = to_f32(vrow[2 * g + 1]);
        const int k0 = 4 * g + int(nib & 3), k1 = 4 * g + int(nib >> 2);
        for (int r = 0; r < kRowsPerPass; ++r)
          if (r < mr) {
            const T* xr = x + (long long)(m0 + r) * K;
            acc[r] += a * to_f32(xr[k0]) + b * to_f32(xr[k1]);
          }
      }
    }
    for (int r = 0; r < kRowsPerPass; ++r) {
      float s = acc[r];
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if (lane == 0 && r < mr) y[(long long)(m0 + r) * N + n] = from_f32<T>(s + (bias ? to_f32(bias[n]) : 0.f));
    }
  }
}

// ---- tensor-core GEMM: f16, M > 8 -------------------------------------------------

// Block tile 64 (n) × 32 (m) × 32 (logical k): 4 warps as 2 (n) × 2 (m), each warp 32 × 16
// = 2 × 2 mma.sp tiles of 16 × 8 — enough mma per ldmatrix to keep the tensor core fed
// while the tile stays small enough for decode-sized M. Two cp.async stages overlap the
// next tile's loads with this tile's math.
constexpr int kBN = 64, kBM = 32, kBK = 32;
constexpr int kVPitch = kBK / 2 + 8;  // halves per smem row: 16 values + 8 pad (48 B, 16-B aligned, conflict-free)
constexpr int kXPitch = kBK + 8;      // 32 x values + 8 pad (80 B)

struct Sp24Smem {
  __half v[2][kBN][kVPitch];
  __half x[2][kBM][kXPitch];
};

// Loads one k-tile of values (kBN rows × 16) and x (kBM rows × 32) into stage `s`.
// Aligned: 16-byte cp.async with zero fill past the edges. Otherwise (K % 32 != 0 or
// unaligned rows) plain element loads with bounds checks.
template <bool kAligned>
__device__ __forceinline__ void sp24_load_tile(Sp24Smem& sm, int s, const __half* x, const __half* values, int M,
                                               int N, int K, int m0, int n0, int kt) {
  const int tid = threadIdx.x;
  const int k0 = kt * kBK;
  if (kAligned) {
    // values: 64 rows × 2 chunks of 8 halves = 128 chunks, one per thread
    {
      const int r = tid / 2, c = tid % 2;
      const bool ok = n0 + r < N;
      const __half* src = values + (long long)(ok ? n0 + r : 0) * (K / 2) + k0 / 2 + 8 * c;
      cp_async_16_zfill(&sm.v[s][r][8 * c], src, ok);
    }
    // x: 32 rows × 4 chunks = 128 chunks
    {
      const int r = tid / 4, c = tid % 4;
      const bool ok = m0 + r < M;
      const __half* src = x + (long long)(ok ? m0 + r : 0) * K + k0 + 8 * c;
      cp_async_16_zfill(&sm.x[s][r][8 * c], src, ok);
    }
  } else {
    // 128 threads: value tile = 64 rows × 16 (thread → half a row), x tile = 32 rows ×
    // 32 (thread → a quarter row); 8 elements each, bounds-checked one by one.
    const __half zero = __float2half_rn(0.f);
    {
      const int r = tid / 2, c0 = 8 * (tid % 2), n = n0 + r;
      const __half* src = values + (size_t)(n < N ? n : 0) * (K / 2);
#pragma unroll
      for (int c = c0; c < c0 + 8; ++c) {
        const int kv = k0 / 2 + c;
        sm.v[s][r][c] = (n < N && kv < K / 2) ? src[kv] : zero;
      }
    }
    {
      const int r = tid / 4, c0 = 8 * (tid % 4), m = m0 + r;
      const __half* src = x + (size_t)(m < M ? m : 0) * K;
#pragma unroll
      for (int c = c0; c < c0 + 8; ++c) sm.x[s][r][c] = (m < M && k0 + c < K) ? src[k0 + c] : zero;
    }
  }
}

template <bool kAligned>
__global__ void __launch_bounds__(128) sparse24_mma_kernel(const __half* x, const __half* values, const uint32_t* meta,
                                                           const __half* bias, __half* y, int M, int N, int K) {
  __shared__ __align__(16) Sp24Smem sm;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int n0 = blockIdx.x * kBN, m0 = blockIdx.y * kBM;
  const int wn = (warp % 2) * 32, wm = (warp / 2) * 16;
  const int MW = sparse24_meta_words(K), KT = (K + kBK - 1) / kBK;
  float acc[2][2][4];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;

  sp24_load_tile<kAligned>(sm, 0, x, values, M, N, K, m0, n0, 0);
  cp_async_commit();
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt & 1;
    if (kt + 1 < KT) sp24_load_tile<kAligned>(sm, s ^ 1, x, values, M, N, K, m0, n0, kt + 1);
    cp_async_commit();
    cp_async_wait<1>();  // this tile's group has landed; the next may still be in flight
    __syncthreads();
    // Metadata straight from global (one word per row and k-tile, L1-resident): rows
    // g and g+8 of each 16-row subtile, the half selected by t (sel = 0: t ∈ {0, 1}).
    // Groups past K (a partial last tile) have zero values but nibble 0x0, which
    // mma.sp leaves undefined: give them the legal 0x4.
    const int groups_left = K / 4 - kt * 8;
    const uint32_t pad = groups_left >= 8 ? 0u : 0x44444444u & ~((1u << (4 * groups_left)) - 1u);
    uint32_t e[2];
    for (int i = 0; i < 2; ++i) {
      const int ra = n0 + wn + 16 * i + g, rb = ra + 8;
      // Rows past N carry zero values: any legal nibble pattern (0x4 = indices 0, 1) works.
      const uint32_t wa = ra < N ? __ldg(meta + (long long)ra * MW + kt) | pad : 0x44444444u;
      const uint32_t wb = rb < N ? __ldg(meta + (long long)rb * MW + kt) | pad : 0x44444444u;
      const int half = t & 1;
      e[i] = ((wa >> (16 * half)) & 0xffffu) | (((wb >> (16 * half)) & 0xffffu) << 16);
    }
    uint32_t a[2][4], b[2][4];
    for (int i = 0; i < 2; ++i) ldmatrix_x4(a[i], &sm.v[s][wn + 16 * i + (lane % 16)][8 * (lane / 16)]);
    for (int j = 0; j < 2; ++j) ldmatrix_x4(b[j], &sm.x[s][wm + 8 * j + (lane % 8)][8 * (lane / 8)]);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) mma_sp_m16n8k32_f16f32<0>(acc[i][j], a[i], b[j], acc[i][j], e[i]);
    __syncthreads();  // stage s is overwritten by the load issued next iteration
  }
  cp_async_wait_all();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int r = 0; r < 4; ++r) {
        const int n = n0 + wn + 16 * i + g + 8 * (r >> 1), m = m0 + wm + 8 * j + 2 * t + (r & 1);
        if (n < N && m < M)
          y[(long long)m * N + n] = __float2half_rn(acc[i][j][r] + (bias ? __half2float(bias[n]) : 0.f));
      }
}

unsigned blocks_for(long long n, int per) { return unsigned((n + per - 1) / per); }

}  // namespace

// ---- launchers (called by the backend) ----------------------------------------------

void launch_sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out, cudaStream_t st) {
  const long long groups = w.numel() / 4;
  if (!groups) return;
  const int K = int(w.dim(1));
  const dim3 grid(blocks_for(groups, 256)), block(256);
  switch (w.dtype) {
    case DType::F32:
      llmk_launch(sparse24_prune_kernel<float>, grid, block, 0, st, w.data<float>(), norms ? norms->data<float>() : nullptr,
                  out.data<float>(), groups, K);
      break;
    case DType::F16:
      llmk_launch(sparse24_prune_kernel<__half>, grid, block, 0, st, w.data<__half>(),
                  norms ? norms->data<__half>() : nullptr, out.data<__half>(), groups, K);
      break;
    default:
      llmk_launch(sparse24_prune_kernel<__nv_bfloat16>, grid, block, 0, st, w.data<__nv_bfloat16>(),
                  norms ? norms->data<__nv_bfloat16>() : nullptr, out.data<__nv_bfloat16>(), groups, K);
  }
}

void launch_sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta, int* error, cudaStream_t st) {
  const int N = int(w.dim(0)), K = int(w.dim(1));
  const long long words = (long long)N * sparse24_meta_words(K);
  if (!words) return;
  const dim3 grid(blocks_for(words, 128)), block(128);
  uint32_t* m = reinterpret_cast<uint32_t*>(meta.data<int32_t>());
  switch (w.dtype) {
    case DType::F32:
      llmk_launch(sparse24_compress_kernel<float>, grid, block, 0, st, w.data<float>(), values.data<float>(), m, N, K, error);
      break;
    case DType::F16:
      llmk_launch(sparse24_compress_kernel<__half>, grid, block, 0, st, w.data<__half>(), values.data<__half>(), m, N, K,
                  error);
      break;
    default:
      llmk_launch(sparse24_compress_kernel<__nv_bfloat16>, grid, block, 0, st, w.data<__nv_bfloat16>(),
                  values.data<__nv_bfloat16>(), m, N, K, error);
  }
}

void launch_sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out, int* error,
                                cudaStream_t st) {
  const int N = int(out.dim(0)), K = int(out.dim(1));
  const long long words = (long long)N * sparse24_meta_words(K);
  if (!words) return;
  const dim3 grid(blocks_for(words, 128)), block(128);
  const uint32_t* m = reinterpret_cast<const uint32_t*>(meta.data<int32_t>());
  switch (out.dtype) {
    case DType::F32:
      llmk_launch(sparse24_decompress_kernel<float>, grid, block, 0, st, values.data<float>(), m, out.data<float>(), N, K,
                  error);
      break;
    case DType::F16:
      llmk_launch(sparse24_decompress_kernel<__half>, grid, block, 0, st, values.data<__half>(), m, out.data<__half>(), N,
                  K, error);
      break;
    default:
      llmk_launch(sparse24_decompress_kernel<__nv_bfloat16>, grid, block, 0, st, values.data<__nv_bfloat16>(), m,
                  out.data<__nv_bfloat16>(), N, K, error);
  }
}

void launch_sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias,
                            const Tensor& y, cudaStream_t st) {
  const int M = int(x.dim(0)), K = int(x.dim(1)), N = int(values.dim(0));
  if (!M || !N) return;
  const uint32_t* m = reinterpret_cast<const uint32_t*>(meta.data<int32_t>());
  if (x.dtype == DType::F16 && M > 8) {
    // cp.async needs 16-byte aligned rows: x rows are 2K bytes, value rows K bytes.
    const bool aligned = K % kBK == 0 && (reinterpret_cast<uintptr_t>(x.raw()) % 16) == 0 &&
                         (reinterpret_cast<uintptr_t>(values.raw()) % 16) == 0;
    const dim3 grid(blocks_for(N, kBN), blocks_for(M, kBM)), block(128);
    const __half* b = bias ? bias->data<__half>() : nullptr;
    if (aligned)
      llmk_launch(sparse24_mma_kernel<true>, grid, block, 0, st, x.data<__half>(), values.data<__half>(), m, b,
                  y.data<__half>(), M, N, K);
    else
      llmk_launch(sparse24_mma_kernel<false>, grid, block, 0, st, x.data<__half>(), values.data<__half>(), m, b,
                  y.data<__half>(), M, N, K);
    return;
  }
  const dim3 grid(blocks_for(N, 4)), block(128);
  switch (x.dtype) {
    case DType::F32:
      llmk_launch(sparse24_rows_kernel<float>, grid, block, 0, st, x.data<float>(), values.data<float>(), m,
                  bias ? bias->data<float>() : nullptr, y.data<float>(), M, N, K);
      break;
    case DType::F16:
      llmk_launch(sparse24_rows_kernel<__half>, grid, block, 0, st, x.data<__half>(), values.data<__half>(), m,
                  bias ? bias->data<__half>() : nullptr, y.data<__half>(), M, N, K);
      break;
    default:
      llmk_launch(sparse24_rows_kernel<__nv_bfloat16>, grid, block, 0, st, x.data<__nv_bfloat16>(),
                  values.data<__nv_bfloat16>(), m, bias ? bias->data<__nv_bfloat16>() : nullptr,
                  y.data<__nv_bfloat16>(), M, N, K);
  }
}

}  // namespace llmk::LLMK_DEVICE_NS
