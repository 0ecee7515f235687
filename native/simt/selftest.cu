// Kernels that test the emulator itself (built for the simt device only; run by
// tests/simt/emulator.test.ts through the simtSelfTest binding). Fragments are packed
// straight from the PTX ISA layouts written out here, so a wrong emulated layout and a
// wrong test would have to agree by accident to pass.
#include <string>
#include <vector>

#include "device.cuh"

namespace llmk::simt::selftest {

// One warp: D[16x8] = A[16x16] · B[16x8] + C, A row-major, B given as Bt[n][k].
// mode 0: registers packed by hand; 1: A and B through ldmatrix; 2: B through ldmatrix.trans
// (from B row-major [k][n]); bf16 selects the bf16 mma.
__global__ void mma_f16(const uint16_t* A, const uint16_t* Bt, const uint16_t* Bkn, const float* C, float* D, int mode,
                        int bf16) {
  __shared__ __align__(16) uint16_t As[16][16];
  __shared__ __align__(16) uint16_t Bs[8][16];
  __shared__ __align__(16) uint16_t Bk[16][8];
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  for (int i = lane; i < 256; i += 32) As[i / 16][i % 16] = A[i];
  for (int i = lane; i < 128; i += 32) {
    Bs[i / 16][i % 16] = Bt[i];
    Bk[i / 8][i % 8] = Bkn[i];
  }
  __syncthreads();
  auto pack = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); };
  uint32_t a[4], b[2];
  float c[4], d[4];
  if (mode == 0) {
    a[0] = pack(As[g][2 * t], As[g][2 * t + 1]);
    a[1] = pack(As[g + 8][2 * t], As[g + 8][2 * t + 1]);
    a[2] = pack(As[g][2 * t + 8], As[g][2 * t + 9]);
    a[3] = pack(As[g + 8][2 * t + 8], As[g + 8][2 * t + 9]);
    b[0] = pack(Bs[g][2 * t], Bs[g][2 * t + 1]);
    b[1] = pack(Bs[g][2 * t + 8], Bs[g][2 * t + 9]);
  } else {
    ldmatrix_x4(a, &As[lane % 16][8 * (lane / 16)]);
    if (mode == 1) ldmatrix_x2(b, &Bs[lane % 8][8 * ((lane / 8) % 2)]);
    else ldmatrix_x2_trans(b, &Bk[lane % 16][0]);
  }
  for (int i = 0; i < 4; ++i) c[i] = C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
  if (bf16) mma_m16n8k16_bf16f32(d, a, b, c);
  else mma_m16n8k16_f16f32(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
}

// D[16x8] (s32) = A[16x32] (s8) · B[32x8] + C, B given as Bt[n][k].
__global__ void mma_s8(const int8_t* A, const int8_t* Bt, const int32_t* C, int32_t* D) {
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  auto pack4 = [](const int8_t* p) {
    return uint32_t(uint8_t(p[0])) | uint32_t(uint8_t(p[1])) << 8 | uint32_t(uint8_t(p[2])) << 16 |
           uint32_t(uint8_t(p[3])) << 24;
  };
  uint32_t a[4] = {pack4(A + g * 32 + 4 * t), pack4(A + (g + 8) * 32 + 4 * t), pack4(A + g * 32 + 16 + 4 * t),
                   pack4(A + (g + 8) * 32 + 16 + 4 * t)};
  uint32_t b[2] = {pack4(Bt + g * 32 + 4 * t), pack4(Bt + g * 32 + 16 + 4 * t)};
  int32_t c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
  mma_m16n8k32_s8s32(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
}

// D[16x8] = W[16x32] · B[32x8] with W 2:4-sparse: V [16][16] compressed values, meta one
// i32 word per row (group c at bits 4c, the public format), Bt[n][k]; sel 0 or 1.
__global__ void mma_sp(const uint16_t* V, const uint32_t* meta, const uint16_t* Bt, float* D, int sel) {
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  auto pack = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); };
  // A: reg0 = (row g, group t), reg1 = (row g+8, group t), reg2 = (row g, group 4+t), reg3 = (row g+8, group 4+t)
  uint32_t a[4] = {pack(V[g * 16 + 2 * t], V[g * 16 + 2 * t + 1]), pack(V[(g + 8) * 16 + 2 * t], V[(g + 8) * 16 + 2 * t + 1]),
                   pack(V[g * 16 + 8 + 2 * t], V[g * 16 + 9 + 2 * t]),
                   pack(V[(g + 8) * 16 + 8 + 2 * t], V[(g + 8) * 16 + 9 + 2 * t])};
  uint32_t b[4];
  for (int j = 0; j < 4; ++j) b[j] = pack(Bt[g * 32 + 8 * j + 2 * t], Bt[g * 32 + 8 * j + 2 * t + 1]);
  // e: lanes with t - 2·sel ∈ {0, 1} supply rows g (low half) and g+8 (high half),
  // groups 4t'..4t'+3 — the 16-bit half t' of each row's word.
  const int tp = (t - 2 * sel) & 1;
  const uint32_t e = ((meta[g] >> (16 * tp)) & 0xffffu) | (((meta[g + 8] >> (16 * tp)) & 0xffffu) << 16);
  float c[4] = {0.f, 0.f, 0.f, 0.f}, d[4];
  if (sel) mma_sp_m16n8k32_f16f32<1>(d, a, b, c, e);
  else mma_sp_m16n8k32_f16f32<0>(d, a, b, c, e);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
}

// Planted race: phase 2 writes s[tid] and reads s[tid+1] with no barrier between.
__global__ void race(int* out) {
  __shared__ int s[64];
  const int tid = threadIdx.x;
  s[tid] = -1;
  __syncthreads();
  s[tid] = tid + 1;
  out[tid] = s[(tid + 1) % 64];
}

// Reads the cp.async destination before and after the wait.
__global__ void cp_async_early_read(const int* src, int* out) {
  __shared__ __align__(16) int buf[4];
  if (threadIdx.x == 0) {
    for (int i = 0; i < 4; ++i) buf[i] = 0;
    cp_async_16(buf, src);
    cp_async_commit();
    out[0] = buf[0];  // bug under test: no wait yet
    cp_async_wait_all();
    out[1] = buf[0];
  }
}

// Half the block waits at a barrier the other half never reaches.
__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}

// Lanes 16..31 skip a full-mask shuffle.
__global__ void partial_shuffle(int* out) {
  int v = int(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void misaligned_ldmatrix(int* out) {
  __shared__ __align__(16) uint16_t s[16 * 16 + 8];
  for (int i = threadIdx.x; i < 16 * 16 + 8; i += 32) s[i] = uint16_t(i);
  __syncthreads();
  uint32_t r[4];
  ldmatrix_x4(r, &s[1 + 16 * (threadIdx.x % 16)]);  // 2-byte aligned rows
  out[threadIdx.x] = int(r[0]);
}

__global__ void misaligned_cp_async(const int* src, int* out) {
  __shared__ __align__(16) int buf[8];
  cp_async_16(buf, src + 1);  // global address 4 bytes past a 16-byte boundary
  cp_async_wait_all();
  out[threadIdx.x] = buf[0];
}

__global__ void uses_dynamic_smem(int* out) {
  int* s = dynamic_smem<int>();
  s[threadIdx.x] = int(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

__global__ void noop(int*) {}

}  // namespace llmk::simt::selftest

namespace llmk::simt {

// Runs the named self-test kernel on host buffers (simt "device" memory is host memory).
void run_selftest(const std::string& name, const std::vector<void*>& b, int arg0, int arg1) {
  using namespace selftest;
  if (name == "mma_f16")
    llmk_launch(mma_f16, dim3(1), dim3(32), 0, nullptr, static_cast<const uint16_t*>(b[0]),
                static_cast<const uint16_t*>(b[1]), static_cast<const uint16_t*>(b[2]), static_cast<const float*>(b[3]),
                static_cast<float*>(b[4]), arg0, arg1);
  else if (name == "mma_s8")
    llmk_launch(mma_s8, dim3(1), dim3(32), 0, nullptr, static_cast<const int8_t*>(b[0]), static_cast<const int8_t*>(b[1]),
                static_cast<const int32_t*>(b[2]), static_cast<int32_t*>(b[3]));
  else if (name == "mma_sp")
    llmk_launch(mma_sp, dim3(1), dim3(32), 0, nullptr, static_cast<const uint16_t*>(b[0]),
                static_cast<const uint32_t*>(b[1]), static_cast<const uint16_t*>(b[2]), static_cast<float*>(b[3]), arg0);
  else if (name == "race")
    llmk_launch(race, dim3(1), dim3(64), 0, nullptr, static_cast<int*>(b[0]));
  else if (name == "cp_async_early_read")
    llmk_launch(cp_async_early_read, dim3(1), dim3(32), 0, nullptr, static_cast<const int*>(b[0]), static_cast<int*>(b[1]));
  else if (name == "divergent_barrier")
    llmk_launch(divergent_barrier, dim3(1), dim3(32), 0, nullptr, static_cast<int*>(b[0]));
  else if (name == "partial_shuffle")
    llmk_launch(partial_shuffle, dim3(1), dim3(32), 0, nullptr, static_cast<int*>(b[0]));
  else if (name == "misaligned_ldmatrix")
    llmk_launch(misaligned_ldmatrix, dim3(1), dim3(32), 0, nullptr, static_cast<int*>(b[0]));
  else if (name == "misaligned_cp_async")
    llmk_launch(misaligned_cp_async, dim3(1), dim3(32), 0, nullptr, static_cast<const int*>(b[0]), static_cast<int*>(b[1]));
  else if (name == "dynamic_smem")  // arg0 = block size, arg1 = dynamic smem bytes
    llmk_launch(uses_dynamic_smem, dim3(1), dim3(unsigned(arg0)), size_t(arg1), nullptr, static_cast<int*>(b[0]));
  else if (name == "big_block")
    llmk_launch(noop, dim3(1), dim3(unsigned(arg0)), 0, nullptr, static_cast<int*>(b[0]));
  else
    fail(ErrorKind::TypeError, "Unknown simt self-test '", name, "'");
}

}  // namespace llmk::simt
