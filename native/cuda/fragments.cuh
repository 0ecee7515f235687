// Tensor-core fragment helpers shared by the GEMM-like kernels (dense f16/bf16 matmul,
// int8 matmul): the warp tile of 32 rows × 32 columns of one 16-byte-wide k step.
// Both operands sit in shared memory row-major with rows of `pitch` bytes; the step
// covers 16 bytes per row per k-chunk (16 halves for m16n8k16, 32 int8 for m16n8k32).
#pragma once
#include "device.cuh"

namespace llmk::LLMK_DEVICE_NS {

// a[i]: the A fragment of rows 16i..16i+15 (ldmatrix x4: matrices (rows 0-7, chunk 0),
// (rows 8-15, chunk 0), (rows 0-7, chunk 1), (rows 8-15, chunk 1)).
// b[j]: the B fragment of columns 8j..8j+7 of the [n][k] operand (one x4 loads two n8 tiles).
// `x` and `w` point at row 0, k-step start of the warp's tile.
__device__ __forceinline__ void warp_tile_fragments(const unsigned char* x, const unsigned char* w, int pitch,
                                                    uint32_t a[2][4], uint32_t b[4][2]) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < 2; ++i) ldmatrix_x4(a[i], x + (16 * i + lane % 16) * pitch + 16 * (lane / 16));
#pragma unroll
  for (int jj = 0; jj < 2; ++jj) {
    uint32_t r[4];
    ldmatrix_x4(r, w + (16 * jj + lane % 8 + 8 * (lane / 16)) * pitch + 16 * ((lane / 8) % 2));
    b[2 * jj][0] = r[0];
    b[2 * jj][1] = r[1];
    b[2 * jj + 1][0] = r[2];
    b[2 * jj + 1][1] = r[3];
  }
}

}  // namespace llmk::LLMK_DEVICE_NS
