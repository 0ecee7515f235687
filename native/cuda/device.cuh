// device.cuh — the CUDA portability layer. Every kernel in native/cuda/*.cu is
// written against this header only, so the same source builds with nvcc for real
// GPUs and with g++ -DLLMK_SIMT for the simt emulator (shared/SIMT.md).
//
// The API (identical on both sides):
//   namespace            LLMK_DEVICE_NS = cuda | simt; every .cu wraps its code in
//                        `namespace llmk::LLMK_DEVICE_NS { ... }` (one binary holds both)
//   LLMK_ARCH            800.. under nvcc device code (= __CUDA_ARCH__), 800 under simt
//   launch               llmk_launch(kernel, grid, block, smem_bytes, stream, args...)
//                        (checks the launch; throws llmk::Error on failure)
//   dynamic smem         dynamic_smem<T>()
//   mma (tensor cores)   mma_m16n8k16_f16f32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4])
//                        mma_m16n8k16_bf16f32(same)
//                        mma_m16n8k32_s8s32(int32_t d[4], const uint32_t a[4], const uint32_t b[2], const int32_t c[4])
//                        mma_sp_m16n8k32_f16f32<Sel>(float d[4], const uint32_t a[4], const uint32_t b[4],
//                                                    const float c[4], uint32_t e)   // ordered_metadata
//   ldmatrix             ldmatrix_x1/x2/x4(uint32_t* r, const void* smem_row_addr)
//                        ldmatrix_x1_trans/x2_trans/x4_trans(...)
//   cp.async             cp_async_16(void* smem, const void* gmem)          (16 B, both 16-B aligned)
//                        cp_async_16_zfill(void* smem, const void* gmem, bool valid)  (writes zeros when !valid)
//                        cp_async_commit(); cp_async_wait<N>(); cp_async_wait_all()
//   CUDA built-ins       threadIdx blockIdx blockDim gridDim warpSize __syncthreads __syncwarp
//                        __shfl_sync __shfl_xor_sync __shfl_down_sync __shfl_up_sync
//                        __ballot_sync __any_sync __all_sync atomicAdd atomicMax atomicCAS
//                        __expf exp2f __frcp_rn rsqrtf __fdividef __float_as_uint __uint_as_float
//                        __float_as_int __int_as_float __ldg __popc __clz __ffs __fmaf_rn
//                        __half/__nv_bfloat16 types and conversions (cuda_fp16.h, cuda_bf16.h)
//   runtime              the cuda* calls backend.cu uses (cudaMallocAsync, cudaFreeAsync,
//                        cudaMemcpyAsync, cudaMemsetAsync, streams, events, cudaGetLastError,
//                        cudaGetErrorString, cudaGetDeviceCount, cudaSetDevice,
//                        cudaGetDeviceProperties, cudaFuncSetAttribute); under simt they are
//                        macros onto llmk_simt:: so no symbol clashes with the real cudart
//   LLMK_CUDA_CHECK(call) throws llmk::Error naming the call and cudaGetErrorString
#pragma once

#if defined(LLMK_SIMT)
#define LLMK_DEVICE_NS simt
#include "simt/simt.h"
#elif defined(__CUDACC__)
#define LLMK_DEVICE_NS cuda
#include "device_nvcc.cuh"
#else
#error "native/cuda/*.cu compile with nvcc, or with g++ -x c++ -DLLMK_SIMT"
#endif
