// Block-wide reductions for kernels: warp shuffles, then one shared slot per warp.
#pragma once
#include "device.cuh"

namespace llmk::LLMK_DEVICE_NS {

// Every thread of the block gets op over all threads' v. scratch holds blockDim.x / 32
// values and may be passed to the next reduction at once (the barrier on entry keeps a
// reduction from overwriting slots that threads still read from the one before).
template <class V, class Op>
__device__ V block_reduce(V v, Op op, V* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  V r = scratch[0];
  for (int i = 1; i < warps; ++i) r = op(r, scratch[i]);
  return r;
}

struct MaxF {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumF {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct OrI {
  __device__ int operator()(int a, int b) const { return a | b; }
};
struct SumI {
  __device__ int operator()(int a, int b) const { return a + b; }
};

}  // namespace llmk::LLMK_DEVICE_NS
