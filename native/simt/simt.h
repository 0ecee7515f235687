// simt.h — the simt device: runs native/cuda/*.cu on the CPU (shared/SIMT.md).
//
// Every CUDA thread is a fiber; all fibers of a block run on one OS thread (so
// `__shared__` = static thread_local is per block), blocks of a launch are spread over
// a persistent pool of OS threads. Barriers and warp collectives are scheduling points:
// a fiber parks, the block's scheduler runs every other ready fiber, then releases a
// barrier once everyone it names has arrived. Tensor-core instructions are emulated
// per the PTX fragment layouts; cp.async copies are deferred to the matching wait, so a
// kernel that reads too early sees stale data, exactly the bug a GPU would hide
// sometimes and show other times.
//
// Limits enforced like a GPU (sm_90): ≤ 1024 threads a block (x, y ≤ 1024, z ≤ 64),
// dynamic shared memory ≤ 48 KiB unless raised with cudaFuncSetAttribute
// (cudaFuncAttributeMaxDynamicSharedMemorySize), and never above 227 KiB; ldmatrix
// rows and cp.async addresses 16-byte aligned. Violations, divergent barriers and
// mismatched warp masks abort the launch with an llmk::Error naming the block.
//
// Schedules: LLMK_SIMT_SCHEDULE=forward|reverse|random (or set_schedule() at run time)
// changes the order in which a block's ready fibers run between barriers.
#pragma once

#if defined(__CUDACC__) || defined(__CUDA_ARCH__)
#error "simt.h is for the host compiler only (g++ -DLLMK_SIMT)"
#endif

// Keyword macros must precede any CUDA header: crt/host_defines.h defines these only
// when they are not defined yet, and an empty __shared__ would silently give every
// thread a private array.
#undef __global__
#undef __device__
#undef __host__
#undef __constant__
#undef __shared__
#define __global__
#define __device__
#define __host__
#define __constant__ static
#define __shared__ static thread_local

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#undef __forceinline__
#define __forceinline__ inline __attribute__((always_inline))
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "llmk/status.h"

#define LLMK_ARCH 800

// CUDA built-ins, per OS thread; the scheduler rewrites threadIdx at every switch.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

namespace llmk_simt {

enum Schedule : int { kForward = 0, kReverse = 1, kRandom = 2 };
// Returns the schedule now in force; set_schedule(-1) only reads it.
int set_schedule(int s);
const char* schedule_name(int s);

// Kernel-side entry points (simt.cpp).
[[noreturn]] void die(const std::string& msg);  // aborts the current block's launch
void block_barrier(const char* file, int line);
void warp_barrier();
int lane_id();
int warp_id();
void* dynamic_smem_base();

// One warp collective: each participating lane deposits `in`, all wait, then each
// computes its own result with `get(lane)` reading any lane's deposit, then all wait
// again so the slot can be reused. `once` (if any) runs on the first lane out of the
// barrier, for work shared by the warp (an mma product).
struct WarpSlot;
WarpSlot& warp_slot();
void* slot_lane(WarpSlot& s, int lane);
bool* slot_done_flag(WarpSlot& s);
void* slot_scratch(WarpSlot& s);
constexpr size_t kSlotBytes = 64;
constexpr size_t kScratchBytes = 32 * 4 * 8;
void collective_enter(unsigned mask);
void collective_leave();

template <class In, class F>
inline void collective(unsigned mask, const In& in, F&& compute) {
  static_assert(sizeof(In) <= kSlotBytes && std::is_trivially_copyable<In>::value, "collective operand too large");
  WarpSlot& s = warp_slot();
  std::memcpy(slot_lane(s, lane_id()), &in, sizeof(In));
  *slot_done_flag(s) = false;
  collective_enter(mask);
  auto get = [&s](int l) {
    In v;
    std::memcpy(&v, slot_lane(s, l), sizeof(In));
    return v;
  };
  compute(lane_id(), get, s);
  collective_leave();
}

// cp.async bookkeeping (per fiber).
void cp_async_record(void* dst, const void* src, bool zfill);
void cp_async_commit();
void cp_async_wait(int keep_pending);

// Fake CUDA runtime (the backend's cuda* calls are macros onto these).
cudaError_t rt_malloc(void** p, size_t n);
cudaError_t rt_malloc_async(void** p, size_t n, cudaStream_t);
cudaError_t rt_free(void* p);
cudaError_t rt_free_async(void* p, cudaStream_t);
cudaError_t rt_memcpy(void* d, const void* s, size_t n, cudaMemcpyKind);
cudaError_t rt_memcpy_async(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t);
cudaError_t rt_memset_async(void* d, int v, size_t n, cudaStream_t);
cudaError_t rt_stream_create(cudaStream_t* s, unsigned flags = 0);
cudaError_t rt_stream_destroy(cudaStream_t s);
cudaError_t rt_stream_synchronize(cudaStream_t s);
cudaError_t rt_device_synchronize();
cudaError_t rt_get_last_error();
const char* rt_get_error_string(cudaError_t e);
cudaError_t rt_get_device_count(int* n);
cudaError_t rt_set_device(int d);
cudaError_t rt_get_device_properties(cudaDeviceProp* p, int d);
cudaError_t rt_device_get_default_mem_pool(cudaMemPool_t* pool, int d);
cudaError_t rt_mem_pool_set_attribute(cudaMemPool_t pool, cudaMemPoolAttr a, void* v);
cudaError_t rt_func_set_attribute(const void* func, cudaFuncAttribute a, int v);
cudaError_t rt_event_create(cudaEvent_t* e);
cudaError_t rt_event_record(cudaEvent_t e, cudaStream_t s);
cudaError_t rt_event_synchronize(cudaEvent_t e);
cudaError_t rt_event_elapsed_time(float* ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t rt_event_destroy(cudaEvent_t e);

// Runs body(block) for every block of the grid on the pool; throws llmk::Error when a
// block failed. max_dyn_smem: the limit for this kernel (48 KiB or its opt-in).
struct LaunchBody {
  virtual void run_thread() = 0;  // called on a fiber: one CUDA thread
  virtual ~LaunchBody() = default;
};
void launch(LaunchBody& body, const void* kernel, dim3 grid, dim3 block, size_t smem);

template <class... P>
struct KernelLaunch final : LaunchBody {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> args;
  template <class... A>
  KernelLaunch(void (*k)(P...), A&&... a) : kernel(k), args(std::forward<A>(a)...) {}
  void run_thread() override { std::apply(kernel, args); }
};

inline float h2f(uint32_t reg, int hi) {
  __half_raw r;
  r.x = uint16_t(hi ? reg >> 16 : reg & 0xffffu);
  return __half2float(__half(r));
}
inline float bf2f(uint32_t reg, int hi) {
  const uint32_t bits = (hi ? reg >> 16 : reg & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The metadata-to-lane mapping of mma.sp::ordered_metadata m16n8k32 (SIMT.md: the
// least certain layout — from compiler lowering code, not the ISA text). For row r
// (0..15) and group c (0..7) of the logical 16×32 A tile: the lane that supplies its
// nibble and the bit offset inside that lane's e register.
inline void sp_meta_source(int r, int c, int sel, int* lane, int* bit) {
  const int t = c / 4 + 2 * sel;
  *lane = 4 * (r % 8) + t;
  *bit = (r < 8 ? 0 : 16) + 4 * (c % 4);
}

}  // namespace llmk_simt

// ---- kernel API --------------------------------------------------------------------

#define __syncthreads() ::llmk_simt::block_barrier(__FILE__, __LINE__)

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  llmk_simt::collective(mask, 0, [](int, auto, llmk_simt::WarpSlot&) {});
}

template <class T>
inline T llmk_shfl_impl(unsigned mask, T v, int mode, int arg, int width) {
  T out{};
  llmk_simt::collective(mask, v, [&](int lane, auto get, llmk_simt::WarpSlot&) {
    const int base = lane & ~(width - 1), pos = lane & (width - 1);
    int src = lane;
    if (mode == 0) src = base + (arg & (width - 1));               // idx
    else if (mode == 1) src = (lane ^ arg) < base + width ? lane ^ arg : lane;  // xor
    else if (mode == 2) src = pos + arg < width ? lane + arg : lane;  // down
    else src = pos >= arg ? lane - arg : lane;                        // up
    out = get(src);
  });
  return out;
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) { return llmk_shfl_impl(mask, v, 0, src, width); }
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) { return llmk_shfl_impl(mask, v, 1, m, width); }
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) { return llmk_shfl_impl(mask, v, 2, int(d), width); }
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) { return llmk_shfl_impl(mask, v, 3, int(d), width); }

inline unsigned __ballot_sync(unsigned mask, int pred) {
  unsigned out = 0;
  llmk_simt::collective(mask, int(pred != 0), [&](int, auto get, llmk_simt::WarpSlot&) {
    for (int l = 0; l < 32; ++l)
      if ((mask >> l) & 1u) out |= unsigned(get(l) != 0) << l;
  });
  return out;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) {
  return __ballot_sync(mask, pred) == (mask & __ballot_sync(mask, 1));
}

// Atomics: blocks of one launch run on several OS threads.
template <class T>
inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T>
inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T>
inline T atomicCAS(T* p, T expected, T desired) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
  return expected;
}
template <class T>
inline T atomicMin(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v < old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v > old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

// Device math and bit intrinsics (host versions with the same results or better).
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline float __frcp_rn(float x) { return 1.f / x; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : x > 1.f ? 1.f : x; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __ffs(unsigned x) { return __builtin_ffs(int(x)); }
template <class T>
inline T __ldg(const T* p) { return *p; }

// ---- tensor cores ---------------------------------------------------------------------

namespace llmk_simt {
struct MmaOps {
  uint32_t a[4], b[4];
  float c[4];
  uint32_t e;
};
struct MmaOpsI {
  uint32_t a[4], b[2];
  int32_t c[4];
};
// m16n8k16 f16/bf16: result of every lane computed once per warp into scratch.
template <bool kBf16>
inline void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  MmaOps op{};
  std::memcpy(op.a, a, 16);
  std::memcpy(op.b, b, 8);
  std::memcpy(op.c, c, 16);
  collective(0xffffffffu, op, [&](int lane, auto get, WarpSlot& s) {
    float* out = static_cast<float*>(slot_scratch(s));  // [32 lanes][4]
    if (!*slot_done_flag(s)) {
      float A[16][16], B[16][8], C[16][8];
      for (int l = 0; l < 32; ++l) {
        const MmaOps o = get(l);
        const int g = l >> 2, t = l & 3;
        auto cv = [&](uint32_t reg, int hi) { return kBf16 ? bf2f(reg, hi) : h2f(reg, hi); };
        for (int i = 0; i < 8; ++i) {
          const int row = g + 8 * ((i >> 1) & 1), col = 2 * t + (i & 1) + 8 * (i >= 4);
          A[row][col] = cv(o.a[i >> 1], i & 1);
        }
        for (int i = 0; i < 4; ++i) B[2 * t + (i & 1) + 8 * (i >= 2)][g] = cv(o.b[i >> 1], i & 1);
        for (int i = 0; i < 4; ++i) C[g + 8 * (i >= 2)][2 * t + (i & 1)] = o.c[i];
      }
      for (int l = 0; l < 32; ++l) {
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; ++i) {
          const int row = g + 8 * (i >= 2), col = 2 * t + (i & 1);
          float acc = C[row][col];
          for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
          out[l * 4 + i] = acc;
        }
      }
      *slot_done_flag(s) = true;
    }
    for (int i = 0; i < 4; ++i) d[i] = out[lane * 4 + i];
  });
}
}  // namespace llmk_simt

inline void mma_m16n8k16_f16f32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  llmk_simt::mma_16816<false>(d, a, b, c);
}
inline void mma_m16n8k16_bf16f32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  llmk_simt::mma_16816<true>(d, a, b, c);
}

inline void mma_m16n8k32_s8s32(int32_t d[4], const uint32_t a[4], const uint32_t b[2], const int32_t c[4]) {
  llmk_simt::MmaOpsI op{};
  std::memcpy(op.a, a, 16);
  std::memcpy(op.b, b, 8);
  std::memcpy(op.c, c, 16);
  llmk_simt::collective(0xffffffffu, op, [&](int lane, auto get, llmk_simt::WarpSlot& s) {
    int32_t* out = static_cast<int32_t*>(llmk_simt::slot_scratch(s));
    if (!*llmk_simt::slot_done_flag(s)) {
      int32_t A[16][32], B[32][8], C[16][8];
      for (int l = 0; l < 32; ++l) {
        const llmk_simt::MmaOpsI o = get(l);
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 16; ++i) {
          const int row = g + 8 * ((i >> 2) & 1), col = 4 * t + (i & 3) + 16 * (i >= 8);
          A[row][col] = int8_t(o.a[i >> 2] >> (8 * (i & 3)));
        }
        for (int i = 0; i < 8; ++i) B[4 * t + (i & 3) + 16 * (i >= 4)][g] = int8_t(o.b[i >> 2] >> (8 * (i & 3)));
        for (int i = 0; i < 4; ++i) C[g + 8 * (i >= 2)][2 * t + (i & 1)] = o.c[i];
      }
      for (int l = 0; l < 32; ++l) {
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; ++i) {
          const int row = g + 8 * (i >= 2), col = 2 * t + (i & 1);
          int32_t acc = C[row][col];
          for (int k = 0; k < 32; ++k) acc += A[row][k] * B[k][col];
          out[l * 4 + i] = acc;
        }
      }
      *llmk_simt::slot_done_flag(s) = true;
    }
    for (int i = 0; i < 4; ++i) d[i] = out[lane * 4 + i];
  });
}

template <int Sel>
inline void mma_sp_m16n8k32_f16f32(float d[4], const uint32_t a[4], const uint32_t b[4], const float c[4], uint32_t e) {
  static_assert(Sel == 0 || Sel == 1, "sparsity selector is 0 or 1");
  llmk_simt::MmaOps op{};
  std::memcpy(op.a, a, 16);
  std::memcpy(op.b, b, 16);
  std::memcpy(op.c, c, 16);
  op.e = e;
  bool bad = false;
  int bad_r = 0, bad_c = 0;
  uint32_t bad_nib = 0;
  llmk_simt::collective(0xffffffffu, op, [&](int lane, auto get, llmk_simt::WarpSlot& s) {
    float* out = static_cast<float*>(llmk_simt::slot_scratch(s));
    if (!*llmk_simt::slot_done_flag(s)) {
      float V[16][8][2], B[32][8], C[16][8], A[16][32] = {};
      uint32_t E[32];
      for (int l = 0; l < 32; ++l) {
        const llmk_simt::MmaOps o = get(l);
        const int g = l >> 2, t = l & 3;
        E[l] = o.e;
        // compressed values: reg0 (g, group t), reg1 (g+8, group t), reg2 (g, group 4+t), reg3 (g+8, group 4+t)
        for (int r = 0; r < 4; ++r) {
          const int row = g + 8 * (r & 1), grp = t + 4 * (r >> 1);
          V[row][grp][0] = llmk_simt::h2f(o.a[r], 0);
          V[row][grp][1] = llmk_simt::h2f(o.a[r], 1);
        }
        for (int i = 0; i < 8; ++i) B[2 * t + (i & 1) + 8 * (i >> 1)][g] = llmk_simt::h2f(o.b[i >> 1], i & 1);
        for (int i = 0; i < 4; ++i) C[g + 8 * (i >= 2)][2 * t + (i & 1)] = o.c[i];
      }
      for (int r = 0; r < 16; ++r)
        for (int grp = 0; grp < 8; ++grp) {
          int src, bit;
          llmk_simt::sp_meta_source(r, grp, Sel, &src, &bit);
          const uint32_t nib = (E[src] >> bit) & 0xfu;
          const int i0 = int(nib & 3u), i1 = int(nib >> 2);
          if (i0 >= i1 && !bad) {
            bad = true;
            bad_r = r;
            bad_c = grp;
            bad_nib = nib;
          }
          A[r][4 * grp + i0] += V[r][grp][0];
          A[r][4 * grp + i1] += V[r][grp][1];
        }
      for (int l = 0; l < 32; ++l) {
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; ++i) {
          const int row = g + 8 * (i >= 2), col = 2 * t + (i & 1);
          float acc = C[row][col];
          for (int k = 0; k < 32; ++k) acc += A[row][k] * B[k][col];
          out[l * 4 + i] = acc;
        }
      }
      *llmk_simt::slot_done_flag(s) = true;
    }
    for (int i = 0; i < 4; ++i) d[i] = out[lane * 4 + i];
  });
  if (bad)
    llmk_simt::die(llmk::cat("mma.sp: illegal metadata nibble 0x", std::hex, bad_nib, std::dec, " for row ", bad_r,
                             " group ", bad_c, " (legal: 0x4 0x8 0x9 0xC 0xD 0xE)"));
}

// ---- ldmatrix -------------------------------------------------------------------------

namespace llmk_simt {
template <int N, bool kTrans>
inline void ldmatrix(uint32_t* r, const void* p) {
  const int lane = lane_id();
  if (lane < 8 * N && (reinterpret_cast<uintptr_t>(p) & 15u))
    die(llmk::cat("ldmatrix: row address ", p, " of lane ", lane, " is not 16-byte aligned"));
  collective(0xffffffffu, p, [&](int l, auto get, WarpSlot&) {
    for (int j = 0; j < N; ++j) {
      if (!kTrans) {
        std::memcpy(&r[j], static_cast<const char*>(get(8 * j + (l >> 2))) + 4 * (l & 3), 4);
      } else {
        uint16_t lo, hi;
        const char* row0 = static_cast<const char*>(get(8 * j + 2 * (l & 3)));
        const char* row1 = static_cast<const char*>(get(8 * j + 2 * (l & 3) + 1));
        std::memcpy(&lo, row0 + 2 * (l >> 2), 2);
        std::memcpy(&hi, row1 + 2 * (l >> 2), 2);
        r[j] = uint32_t(lo) | (uint32_t(hi) << 16);
      }
    }
  });
}
}  // namespace llmk_simt

inline void ldmatrix_x1(uint32_t r[1], const void* p) { llmk_simt::ldmatrix<1, false>(r, p); }
inline void ldmatrix_x2(uint32_t r[2], const void* p) { llmk_simt::ldmatrix<2, false>(r, p); }
inline void ldmatrix_x4(uint32_t r[4], const void* p) { llmk_simt::ldmatrix<4, false>(r, p); }
inline void ldmatrix_x1_trans(uint32_t r[1], const void* p) { llmk_simt::ldmatrix<1, true>(r, p); }
inline void ldmatrix_x2_trans(uint32_t r[2], const void* p) { llmk_simt::ldmatrix<2, true>(r, p); }
inline void ldmatrix_x4_trans(uint32_t r[4], const void* p) { llmk_simt::ldmatrix<4, true>(r, p); }

// ---- cp.async -------------------------------------------------------------------------

inline void cp_async_16(void* smem, const void* gmem) { llmk_simt::cp_async_record(smem, gmem, false); }
inline void cp_async_16_zfill(void* smem, const void* gmem, bool valid) {
  llmk_simt::cp_async_record(smem, gmem, !valid);
}
inline void cp_async_commit() { llmk_simt::cp_async_commit(); }
template <int N>
inline void cp_async_wait() {
  llmk_simt::cp_async_wait(N);
}
inline void cp_async_wait_all() {
  llmk_simt::cp_async_commit();
  llmk_simt::cp_async_wait(0);
}

template <class T>
inline T* dynamic_smem() {
  return static_cast<T*>(llmk_simt::dynamic_smem_base());
}

// ---- launch and runtime ------------------------------------------------------------------

template <class... P, class... A>
inline void llmk_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t, A&&... args) {
  llmk_simt::KernelLaunch<P...> body(kernel, std::forward<A>(args)...);
  llmk_simt::launch(body, reinterpret_cast<const void*>(kernel), grid, block, smem);
}

#define LLMK_CUDA_CHECK(call)                                                                         \
  do {                                                                                                \
    const cudaError_t llmk_err_ = (call);                                                             \
    if (llmk_err_ != cudaSuccess)                                                                     \
      ::llmk::fail(::llmk::ErrorKind::Error, "CUDA error in ", #call, ": ", cudaGetErrorString(llmk_err_)); \
  } while (0)

// The runtime calls of backend.cu, renamed so nothing clashes with the real cudart
// that the cuda backend links into the same binary.
#define cudaMalloc(p, n) ::llmk_simt::rt_malloc(reinterpret_cast<void**>(p), n)
#define cudaMallocAsync(p, n, s) ::llmk_simt::rt_malloc_async(reinterpret_cast<void**>(p), n, s)
#define cudaFree ::llmk_simt::rt_free
#define cudaFreeAsync ::llmk_simt::rt_free_async
#define cudaMemcpy ::llmk_simt::rt_memcpy
#define cudaMemcpyAsync ::llmk_simt::rt_memcpy_async
#define cudaMemsetAsync ::llmk_simt::rt_memset_async
#define cudaStreamCreate ::llmk_simt::rt_stream_create
#define cudaStreamCreateWithFlags ::llmk_simt::rt_stream_create
#define cudaStreamDestroy ::llmk_simt::rt_stream_destroy
#define cudaStreamSynchronize ::llmk_simt::rt_stream_synchronize
#define cudaDeviceSynchronize ::llmk_simt::rt_device_synchronize
#define cudaGetLastError ::llmk_simt::rt_get_last_error
#define cudaGetErrorString ::llmk_simt::rt_get_error_string
#define cudaGetDeviceCount ::llmk_simt::rt_get_device_count
#define cudaSetDevice ::llmk_simt::rt_set_device
#define cudaGetDeviceProperties ::llmk_simt::rt_get_device_properties
#define cudaDeviceGetDefaultMemPool ::llmk_simt::rt_device_get_default_mem_pool
#define cudaMemPoolSetAttribute ::llmk_simt::rt_mem_pool_set_attribute
#define cudaFuncSetAttribute(f, a, v) ::llmk_simt::rt_func_set_attribute(reinterpret_cast<const void*>(f), a, v)
#define cudaEventCreate ::llmk_simt::rt_event_create
#define cudaEventRecord ::llmk_simt::rt_event_record
#define cudaEventSynchronize ::llmk_simt::rt_event_synchronize
#define cudaEventElapsedTime ::llmk_simt::rt_event_elapsed_time
#define cudaEventDestroy ::llmk_simt::rt_event_destroy
