// The small decoder ops on CUDA, one templated kernel per op over the storage type,
// f32 math. Semantics match native/cpu/elementwise.cpp exactly (argmax: first maximum,
// NaN wins; casts: round to nearest even, float -> int saturates, NaN -> 0).
// check:cuda expects: shfl.sync
#include <climits>

#include "convert.cuh"
#include "reduce.cuh"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(long long n) {
  long long b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 65535LL * 32 ? (b > 0 ? b : 1) : 65535LL * 32);  // grid-stride loops cover the rest
}

template <class T>
__global__ void binary_kernel(int op, const T* a, const T* b, T* y, long long n, long long bn) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float x = to_f32(a[i]), z = to_f32(b[i % bn]);
    y[i] = from_f32<T>(op == 0 ? x + z : x * z);
  }
}

template <class T>
__global__ void silu_mul_kernel(const T* g, const T* u, T* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float x = to_f32(g[i]);
    y[i] = from_f32<T>(x / (1.f + expf(-x)) * to_f32(u[i]));
  }
}

template <class T>
__global__ void rms_norm_kernel(const T* x, const T* w, T* y, int cols, float eps) {
  __shared__ float scratch[32];
  const T* xr = x + (long long)blockIdx.x * cols;
  T* yr = y + (long long)blockIdx.x * cols;
  float ss = 0.f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = to_f32(xr[i]);
    ss += v * v;
  }
  const float inv = rsqrtf(block_reduce(ss, SumF(), scratch) / float(cols) + eps);
  for (int i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = from_f32<T>(to_f32(xr[i]) * inv * to_f32(w[i]));
}

template <class T>
__global__ void softmax_kernel(const T* x, T* y, int cols) {
  __shared__ float scratch[32];
  const T* xr = x + (long long)blockIdx.x * cols;
  T* yr = y + (long long)blockIdx.x * cols;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) mx = fmaxf(mx, to_f32(xr[i]));
  mx = block_reduce(mx, MaxF(), scratch);
  if (mx == -INFINITY) mx = 0.f;
  float s = 0.f;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) s += expf(to_f32(xr[i]) - mx);
  const float inv = 1.f / block_reduce(s, SumF(), scratch);
  for (int i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = from_f32<T>(expf(to_f32(xr[i]) - mx) * inv);
}

// (value, index) pairs: larger value wins, NaN beats everything, ties -> lower index.
__device__ __forceinline__ bool argmax_better(float v, int i, float bv, int bi) {
  const bool vn = v != v, bn = bv != bv;
  if (vn || bn) return vn && (!bn || i < bi);
  return v > bv || (v == bv && i < bi);
}

template <class T>
__global__ void argmax_kernel(const T* x, int32_t* y, int cols) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const T* xr = x + (long long)blockIdx.x * cols;
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = to_f32(xr[i]);
    if (argmax_better(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, bv, o);
    const int i = __shfl_xor_sync(0xffffffffu, bi, o);
    if (argmax_better(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    sv[warp] = bv;
    si[warp] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w)
      if (argmax_better(sv[w], si[w], bv, bi)) {
        bv = sv[w];
        bi = si[w];
      }
    y[blockIdx.x] = bi == INT_MAX ? 0 : bi;
  }
}

template <class T>
__global__ void embedding_kernel(const T* table, const int32_t* ids, T* y, int rows, int cols, int* error) {
  const int t = blockIdx.x;
  const int id = ids[t];
  if (id < 0 || id >= rows) {
    if (threadIdx.x == 0) atomicMin(error, t);
    return;
  }
  for (int i = threadIdx.x; i < cols; i += blockDim.x) y[(long long)t * cols + i] = table[(long long)id * cols + i];
}

// Casts through f32 for float types; integers convert exactly where they can.
template <class T>
__device__ __forceinline__ double load_any(const T* p, long long i) {
  return double(to_f32(p[i]));
}
template <>
__device__ __forceinline__ double load_any<int8_t>(const int8_t* p, long long i) {
  return double(p[i]);
}
template <>
__device__ __forceinline__ double load_any<int32_t>(const int32_t* p, long long i) {
  return double(p[i]);
}
template <class T>
__device__ __forceinline__ void store_any(T* p, long long i, double v) {
  p[i] = from_f32<T>(float(v));
}
__device__ __forceinline__ double saturate(double v, double lo, double hi) {
  if (v != v) return 0.0;
  v = rint(v);
  return v < lo ? lo : v > hi ? hi : v;
}
template <>
__device__ __forceinline__ void store_any<int8_t>(int8_t* p, long long i, double v) {
  p[i] = int8_t(saturate(v, -128.0, 127.0));
}
template <>
__device__ __forceinline__ void store_any<int32_t>(int32_t* p, long long i, double v) {
  p[i] = int32_t(saturate(v, -2147483648.0, 2147483647.0));
}

template <class S, class D>
__global__ void cast_kernel(const S* x, D* y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    double v = load_any(x, i);
    // int32 -> float goes through f32 like the cpu path (exact below 2^24)
    store_any(y, i, v);
  }
}

template <class T>
__global__ void fill_kernel(T* y, long long n, double v) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    store_any(y, i, v);
}

// Calls f(T{}) with T the storage type of the dtype (a type tag for generic lambdas).
template <class F>
void with_float_type(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); break;
    case DType::F16: f(__half{}); break;
    case DType::BF16: f(__nv_bfloat16{}); break;
    default: fail(ErrorKind::TypeError, "expected a float dtype but received ", dtype_name(t));
  }
}
template <class F>
void with_any_type(DType t, F&& f) {
  switch (t) {
    case DType::I8: f(int8_t{}); break;
    case DType::I32: f(int32_t{}); break;
    default: with_float_type(t, f);
  }
}

template <class S>
void launch_cast_from(const Tensor& x, const Tensor& y, long long n, cudaStream_t st) {
  with_any_type(y.dtype, [&](auto tag_D) {
    using D = decltype(tag_D);
    llmk_launch(cast_kernel<S, D>, dim3(grid_for(n)), dim3(kThreads), 0, st, x.data<S>(), y.data<D>(), n);
  });
}

int row_threads(long long cols) { return cols >= 1024 ? 256 : cols >= 256 ? 128 : 64; }

}  // namespace

void launch_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y, cudaStream_t st) {
  const long long n = a.numel(), bn = b.numel();
  if (!n) return;
  with_float_type(a.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(binary_kernel<T>, dim3(grid_for(n)), dim3(kThreads), 0, st, op == BinaryOp::Add ? 0 : 1, a.data<T>(),
                b.data<T>(), y.data<T>(), n, bn);
  });
}

void launch_silu_mul(const Tensor& g, const Tensor& u, const Tensor& y, cudaStream_t st) {
  const long long n = g.numel();
  if (!n) return;
  with_float_type(g.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(silu_mul_kernel<T>, dim3(grid_for(n)), dim3(kThreads), 0, st, g.data<T>(), u.data<T>(), y.data<T>(), n);
  });
}

void launch_rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y, cudaStream_t st) {
  const long long cols = w.numel(), rows = x.numel() / cols;
  if (!rows) return;
  with_float_type(x.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(rms_norm_kernel<T>, dim3(unsigned(rows)), dim3(row_threads(cols)), 0, st, x.data<T>(), w.data<T>(),
                y.data<T>(), int(cols), eps);
  });
}

void launch_softmax(const Tensor& x, const Tensor& y, cudaStream_t st) {
  const long long cols = x.dim(-1), rows = cols ? x.numel() / cols : 0;
  if (!rows) return;
  with_float_type(x.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(softmax_kernel<T>, dim3(unsigned(rows)), dim3(row_threads(cols)), 0, st, x.data<T>(), y.data<T>(),
                int(cols));
  });
}

void launch_argmax(const Tensor& x, const Tensor& y, cudaStream_t st) {
  const long long cols = x.dim(-1), rows = cols ? x.numel() / cols : 0;
  if (!rows) return;
  with_float_type(x.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(argmax_kernel<T>, dim3(unsigned(rows)), dim3(row_threads(cols)), 0, st, x.data<T>(), y.data<int32_t>(),
                int(cols));
  });
}

void launch_embedding(const Tensor& table, const Tensor& ids, const Tensor& y, int* error, cudaStream_t st) {
  const long long tokens = ids.numel(), cols = table.dim(1);
  if (!tokens) return;
  with_float_type(table.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(embedding_kernel<T>, dim3(unsigned(tokens)), dim3(row_threads(cols)), 0, st, table.data<T>(),
                ids.data<int32_t>(), y.data<T>(), int(table.dim(0)), int(cols), error);
  });
}

void launch_cast(const Tensor& x, const Tensor& y, cudaStream_t st) {
  const long long n = x.numel();
  if (!n) return;
  if (x.dtype == y.dtype) {
    LLMK_CUDA_CHECK(cudaMemcpyAsync(y.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, st));
    return;
  }
  with_any_type(x.dtype, [&](auto tag_S) {
    using S = decltype(tag_S); launch_cast_from<S>(x, y, n, st); });
}

void launch_fill(const Tensor& y, double v, cudaStream_t st) {
  const long long n = y.numel();
  if (!n) return;
  with_any_type(y.dtype, [&](auto tag_T) {
    using T = decltype(tag_T);
    llmk_launch(fill_kernel<T>, dim3(grid_for(n)), dim3(kThreads), 0, st, y.data<T>(), n, v);
  });
}

}  // namespace llmk::LLMK_DEVICE_NS
