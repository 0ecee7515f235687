// The nvcc side of device.cuh: inline-PTX wrappers for the tensor-core and async-copy
// instructions our kernels use, the launch helper and error checks. Every function
// here has a twin with the same signature in native/simt/simt.h.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "llmk/status.h"

#if defined(__CUDA_ARCH__)
#define LLMK_ARCH __CUDA_ARCH__
#else
#define LLMK_ARCH 0
#endif

#define LLMK_CUDA_CHECK(call)                                                                         \
  do {                                                                                                \
    const cudaError_t llmk_err_ = (call);                                                             \
    if (llmk_err_ != cudaSuccess)                                                                     \
      ::llmk::fail(::llmk::ErrorKind::Error, "CUDA error in ", #call, ": ", cudaGetErrorString(llmk_err_)); \
  } while (0)

// ---- tensor cores (Ampere mma.sync; runs on sm_80 .. sm_120) -----------------------

__device__ __forceinline__ void mma_m16n8k16_f16f32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                    const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}

__device__ __forceinline__ void mma_m16n8k16_bf16f32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                     const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}

__device__ __forceinline__ void mma_m16n8k32_s8s32(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
                                                   const int32_t c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]),
        "r"(c[3]));
}

// Sparse A (2:4, the weights), metadata e per SIMT.md; Sel is the PTX sparsity selector.
template <int Sel>
__device__ __forceinline__ void mma_sp_m16n8k32_f16f32(float d[4], const uint32_t a[4], const uint32_t b[4],
                                                       const float c[4], uint32_t e) {
  asm volatile(
      "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9,%10,%11}, {%12,%13,%14,%15}, %16, %17;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "f"(c[0]),
        "f"(c[1]), "f"(c[2]), "f"(c[3]), "r"(e), "n"(Sel));
}

// ---- ldmatrix ----------------------------------------------------------------------

__device__ __forceinline__ unsigned llmk_smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldmatrix_x1(uint32_t r[1], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(llmk_smem_addr(p)) : "memory");
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(llmk_smem_addr(p)) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(llmk_smem_addr(p)) : "memory");
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t r[1], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0]) : "r"(llmk_smem_addr(p)) : "memory");
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(llmk_smem_addr(p)) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(llmk_smem_addr(p)) : "memory");
}

// ---- cp.async (16-byte, L2-only .cg) ------------------------------------------------

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(llmk_smem_addr(smem)), "l"(gmem) : "memory");
}
// src-size 0 when !valid: the 16 bytes are zero-filled and nothing is read.
__device__ __forceinline__ void cp_async_16_zfill(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(llmk_smem_addr(smem)), "l"(gmem),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// ---- launch ---------------------------------------------------------------------------

template <class T>
__device__ __forceinline__ T* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char llmk_dynamic_smem[];
  return reinterpret_cast<T*>(llmk_dynamic_smem);
}

// One launch entry (no <<<>>> in kernel files, so the simt build parses them too).
template <class... P, class... A>
inline void llmk_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A&&... args) {
  kernel<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) ::llmk::fail(::llmk::ErrorKind::Error, "CUDA kernel launch failed: ", cudaGetErrorString(e));
}
