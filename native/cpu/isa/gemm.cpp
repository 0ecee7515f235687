// Blocked, packed GEMM and a streaming GEMV, compiled once per ISA (LLMK_ISA_NS):
// avx512 works on zmm, avx2 on ymm, the scalar build on the x86-64 baseline (SSE2
// xmm, no FMA). All sums are f32; f16/bf16 operands are widened while packing (GEMM)
// or in registers (GEMV), and the output is rounded to the dtype once at the end —
// except bf16 GEMM in the avx512 build, which multiplies bf16 pairs on VDPBF16PS
// (microkernel<R, true>), and the output is still rounded once.
//
// GEMM follows the GotoBLAS/BLIS loop nest. Per thread (its own block of M x N):
//   jc: NC columns of w     -> the packed B block (KC x NC f32) lives in L2
//   pc: KC of the K dim     -> B block packed once, reused by every row panel
//   ir: MR rows of x        -> A micro-panel (MR x KC f32) packed just in time, in L1
//   jr: NR columns          -> microkernel: MR x NR accumulators in registers
// Packing also removes the 4 KiB-aliasing of rows that are K*4 bytes apart.
//
// GEMV (M <= kGemvMaxRows, decode): no packing; threads split N, each streams its
// rows of w exactly once, widening f16/bf16 in registers against x held in f32. For
// M = 12..16 it measured about even with the GEMM on one thread, so the GEMM keeps
// M > 8 (cpu/matmul.cpp decides).
//
// GCC 12's AVX-512 headers seed many intrinsics with _mm512_undefined_*() and then
// warn about it at -O3 (a known false positive of those headers, not of this file).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "common/half.h"
#include "cpu/gemm.h"
#include "cpu/threadpool.h"

namespace llmk::cpu::LLMK_ISA_NS {
namespace {

#if defined(__AVX512F__)
using vf = __m512;
constexpr int VL = 16;
// 12 x 32: 24 zmm accumulators cover FMA latency x 2 ports with room for 2 B
// vectors; the A value is an embedded-broadcast memory operand.
constexpr int MR = 12, NV = 2;
constexpr int kGemvAcc = 24;  // accumulators the GEMV may hold (of 32 zmm)
constexpr int kGemvRegs = 32;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vbcast(float a) { return _mm512_set1_ps(a); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline float vsum(vf v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline vf vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline vf vload_bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
inline void vstore_f16(uint16_t* p, vf v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// 16 x 16 in registers: 4x4 transposes inside each 128-bit lane, then of the lanes.
inline void transpose(vf r[16]) {
  vf t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {
    const vf* q = t + 4 * g;
    u[g * 4 + 0] = _mm512_shuffle_ps(q[0], q[2], 0x44);
    u[g * 4 + 1] = _mm512_shuffle_ps(q[0], q[2], 0xEE);
    u[g * 4 + 2] = _mm512_shuffle_ps(q[1], q[3], 0x44);
    u[g * 4 + 3] = _mm512_shuffle_ps(q[1], q[3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    const vf a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const vf e = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44), d = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(a, e, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(a, e, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(b, d, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(b, d, 0xDD);
  }
}
#elif defined(__AVX2__)
using vf = __m256;
constexpr int VL = 8;
// 6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
constexpr int MR = 6, NV = 2;
constexpr int kGemvAcc = 12;
constexpr int kGemvRegs = 16;  // M·R accumulators + R w vectors + one x vector must fit
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vbcast(float a) { return _mm256_set1_ps(a); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline float vsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline vf vload_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline vf vload_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline void vstore_f16(uint16_t* p, vf v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// 8 x 8 in registers: 4x4 transposes inside each 128-bit half, then swap halves.
inline void transpose(vf r[8]) {
  vf t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    const vf* q = t + 4 * g;
    u[g * 4 + 0] = _mm256_shuffle_ps(q[0], q[2], 0x44);
    u[g * 4 + 1] = _mm256_shuffle_ps(q[0], q[2], 0xEE);
    u[g * 4 + 2] = _mm256_shuffle_ps(q[1], q[3], 0x44);
    u[g * 4 + 3] = _mm256_shuffle_ps(q[1], q[3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}
#else
using vf = __m128;
constexpr int VL = 4;
// 4 x 8: 8 xmm accumulators of 16 registers; no FMA in the baseline ISA.
constexpr int MR = 4, NV = 2;
constexpr int kGemvAcc = 8;
constexpr int kGemvRegs = 16;
inline vf vzero() { return _mm_setzero_ps(); }
inline vf vbcast(float a) { return _mm_set1_ps(a); }
inline vf vload(const float* p) { return _mm_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
inline float vsum(vf v) {
  float t[4];
  _mm_storeu_ps(t, v);
  return (t[0] + t[1]) + (t[2] + t[3]);
}
inline vf vload_f16(const uint16_t* p) {
  alignas(16) float t[4];
  for (int i = 0; i < 4; ++i) t[i] = f16_to_f32(p[i]);
  return _mm_load_ps(t);
}
inline vf vload_bf16(const uint16_t* p) {
  alignas(16) float t[4];
  for (int i = 0; i < 4; ++i) t[i] = bf16_to_f32(p[i]);
  return _mm_load_ps(t);
}
inline void vstore_f16(uint16_t* p, vf v) {
  alignas(16) float t[4];
  _mm_store_ps(t, v);
  for (int i = 0; i < 4; ++i) p[i] = f32_to_f16(t[i]);
}
inline void transpose(vf r[4]) { _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]); }
#endif

constexpr int NR = NV * VL;
// KC x NR B micro-panel, MR x KC A micro-panel: KC = 256 keeps the A micro-panel
// (<= 12 KiB) in L1 next to the streamed B rows; NC = 512 makes the packed B block
// 512 KiB, so it and the prefetched source of the next block share L2 (1 MiB on Zen 4,
// 2 MiB here). Measured on one thread, f16 M=256 K=N=4096: NC 384..768 within noise,
// 1024 ~7% slower, 1536 ~15% slower; KC 192 or 384 slower than 256.
constexpr int64_t KC = 256;
constexpr int64_t NC = NR * (512 / NR);
// f16/bf16 outputs accumulate across KC blocks in an f32 tile of MC x NC per thread.
constexpr int64_t MC = 256;

// Widens n elements starting at element `off` to f32; f32 input is returned in place.
const float* row_f32(const void* base, DType t, int64_t off, int64_t n, float* buf) {
  if (t == DType::F32) return static_cast<const float*>(base) + off;
  const uint16_t* s = static_cast<const uint16_t*>(base) + off;
  int64_t i = 0;
  if (t == DType::F16)
    for (; i + VL <= n; i += VL) vstore(buf + i, vload_f16(s + i));
  else
    for (; i + VL <= n; i += VL) vstore(buf + i, vload_bf16(s + i));
  for (; i < n; ++i) buf[i] = t == DType::F16 ? f16_to_f32(s[i]) : bf16_to_f32(s[i]);
  return buf;
}

// Rounds n f32 values to the output dtype (RNE, like common/half.h).
void store_row(const float* src, void* dst, DType t, int64_t n) {
  if (t == DType::F32) {
    std::memcpy(dst, src, size_t(n) * 4);
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  if (t == DType::F16)
    for (; i + VL <= n; i += VL) vstore_f16(d + i, vload(src + i));
  for (; i < n; ++i) d[i] = t == DType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
}

// 64-byte aligned per-thread scratch that only grows (pool threads are persistent).
struct Scratch {
  std::vector<float> mem;
  float* get(size_t n) {
    if (mem.size() < n + 16) mem.resize(n + 16);
    const uintptr_t a = reinterpret_cast<uintptr_t>(mem.data());
    return mem.data() + ((64 - a % 64) % 64) / 4;
  }
};
struct ThreadScratch {
  Scratch a, b, c;
};
ThreadScratch& thread_scratch() {
  static thread_local ThreadScratch s;
  return s;
}

// Source element types, so loops are instantiated per dtype with no branch inside.
struct F32Src {
  using T = float;
  static vf load(const float* p) { return vload(p); }
  static float scalar(const float* p) { return *p; }
};
struct F16Src {
  using T = uint16_t;
  static vf load(const uint16_t* p) { return vload_f16(p); }
  static float scalar(const uint16_t* p) { return f16_to_f32(*p); }
};
struct BF16Src {
  using T = uint16_t;
  static vf load(const uint16_t* p) { return vload_bf16(p); }
  static float scalar(const uint16_t* p) { return bf16_to_f32(*p); }
};
template <class Fn>
void with_src(DType t, Fn&& fn) {
  if (t == DType::F32) fn(F32Src{});
  else if (t == DType::F16) fn(F16Src{});
  else fn(BF16Src{});
}

// Rows past the edge read from here (zero bits are 0 in every float dtype).
alignas(64) const float kZeroRow[KC] = {};

// Copies `rows` (<= VL) rows of `src` (row stride ld elements, from element `off`),
// k in [0, kb <= KC), into dst[k * dst_ld + i], widened to f32; rows >= `rows` are 0.
// Whole VL x VL blocks are transposed in registers (a strided scalar copy made
// packing about a third of the M=256 GEMM time); dst_ld may be < VL (the A panel):
// then each column store spills zeros into the next k's slot, rewritten right after.
void pack_transposed(const MatmulParams& p, const void* src, int64_t off, int64_t ld, int rows, int64_t kb,
                     float* dst, int64_t dst_ld) {
  with_src(p.dtype, [&](auto s) {
    using S = decltype(s);
    using T = typename S::T;
    const T* row[VL];
    for (int i = 0; i < VL; ++i)
      row[i] = i < rows ? static_cast<const T*>(src) + off + i * ld : reinterpret_cast<const T*>(kZeroRow);
    const int64_t kv = kb / VL * VL;
    for (int64_t k = 0; k < kv; k += VL) {
      vf r[VL];
      for (int i = 0; i < VL; ++i) r[i] = S::load(row[i] + k);
      transpose(r);
      for (int c = 0; c < VL; ++c) vstore(dst + (k + c) * dst_ld, r[c]);
    }
    for (int64_t k = kv; k < kb; ++k)
      for (int i = 0; i < std::min<int64_t>(VL, dst_ld); ++i) dst[k * dst_ld + i] = S::scalar(row[i] + k);
  });
}

// B block: rows [n0, n0+nb) x k [k0, k0+kb) of w into ceil(nb/NR) panels of kb x NR,
// padded with zero columns.
void pack_b(const MatmulParams& p, int64_t n0, int64_t nb, int64_t k0, int64_t kb, float* dst) {
  for (int64_t jp = 0; jp < nb; jp += NR)
    for (int v = 0; v < NV; ++v) {
      const int64_t row = jp + v * VL;
      const int rows = int(std::clamp<int64_t>(nb - row, 0, VL));
      pack_transposed(p, p.w, (n0 + row) * p.K + k0, p.K, rows, kb, dst + jp * kb + v * VL, NR);
    }
}

// A micro-panel: rows [m0, m0+mr) x k [k0, k0+kb) of x as kb x MR (k-major); needs
// VL - MR floats of slack after kb * MR.
void pack_a(const MatmulParams& p, int64_t m0, int mr, int64_t k0, int64_t kb, float* dst) {
  pack_transposed(p, p.x, m0 * p.K + k0, p.K, mr, kb, dst, MR);
}

// Lines of w the microkernel prefetches for the next B block, one every 8 k steps:
// spread out, so they never fill all of L1's miss buffers at once.
constexpr int kPrefetchEvery = 8;
struct PrefetchList {
  const char* line[KC / kPrefetchEvery];
  int n = 0;
};

// C[R x NR] (row stride ldc) = (first ? bias or 0 : C) + A·B over `steps` k steps,
// R <= MR rows. kPairs (bf16 on VDPBF16PS, below): a step is a k pair, A and B hold
// dwords of two bf16 each.
template <int R, bool kPairs>
void microkernel(int64_t steps, const float* A, const float* B, float* C, int64_t ldc, bool first, const float* bias,
                 const PrefetchList* pf) {
  // The C tile was last touched a whole B block ago: start pulling it in now so the
  // read-modify-write at the end does not stall.
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV * VL * 4; v += 64) _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc) + v, _MM_HINT_T0);
  vf acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = vzero();
  auto step = [&](int64_t k) __attribute__((always_inline)) {
#if defined(__AVX512BF16__)
    if constexpr (kPairs) {
      const int32_t* a32 = reinterpret_cast<const int32_t*>(A);
      __m512bh b[NV];
      for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_loadu_si512(B + k * NR + v * VL);
      for (int i = 0; i < R; ++i) {
        const __m512bh a = (__m512bh)_mm512_set1_epi32(a32[k * MR + i]);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, b[v]);
      }
      return;
    }
#endif
    vf b[NV];
    for (int v = 0; v < NV; ++v) b[v] = vload(B + k * NR + v * VL);
    for (int i = 0; i < R; ++i) {
      const vf a = vbcast(A[k * MR + i]);
      for (int v = 0; v < NV; ++v) acc[i][v] = vfma(a, b[v], acc[i][v]);
    }
  };
  int64_t k = 0;
  for (int j = 0; k + kPrefetchEvery <= steps; ++j) {
    if (pf && j < pf->n) _mm_prefetch(pf->line[j], _MM_HINT_T1);
    for (int u = 0; u < kPrefetchEvery; ++u, ++k) step(k);
  }
  for (; k < steps; ++k) step(k);
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) {
      float* c = C + i * ldc + v * VL;
      const vf base = !first ? vload(c) : bias ? vload(bias + v * VL) : vzero();
      vstore(c, base + acc[i][v]);
    }
}

template <bool kPairs, int... Rs>
constexpr auto kernel_table(std::integer_sequence<int, Rs...>) {
  using Fn = void (*)(int64_t, const float*, const float*, float*, int64_t, bool, const float*, const PrefetchList*);
  return std::array<Fn, sizeof...(Rs)>{&microkernel<Rs + 1, kPairs>...};
}
constexpr auto kKernels = kernel_table<false>(std::make_integer_sequence<int, MR>{});

#if defined(__AVX512BF16__)
// bf16 x bf16 on VDPBF16PS: 32 multiply-adds per instruction against 16 for an f32
// FMA, and nothing is widened. Both operands are packed as k pairs — one dword holds
// (v[k], v[k+1]) — so the panels hold kp = ceil(kb / 2) pair steps: B as kp x NR
// dwords, A as kp x MR (the A pair an embedded-broadcast dword). The products are
// exact in f32 and sum into f32 accumulators, as the f32 path does with the widened
// values; VDPBF16PS treats bf16 subnormals as 0.

// Rows (<= VL) of bf16 src (row stride ld elements, from element off), pair steps
// j < ceil(kb / 2), into dst[j * dst_ld + i]; past kb and past `rows` reads as 0. A
// pair is one dword, so whole 16 x 16 blocks of pairs transpose like floats (the
// shuffles move bits; the dst_ld < VL spill is as in pack_transposed).
void pack_pairs(const void* src, int64_t off, int64_t ld, int rows, int64_t kb, float* dst, int64_t dst_ld) {
  const uint16_t* row[VL];
  for (int i = 0; i < VL; ++i)
    row[i] = i < rows ? static_cast<const uint16_t*>(src) + off + i * ld : reinterpret_cast<const uint16_t*>(kZeroRow);
  const int64_t kp = (kb + 1) / 2, whole = kb / 2 / VL * VL;
  for (int64_t j = 0; j < whole; j += VL) {
    vf r[VL];
    for (int i = 0; i < VL; ++i) r[i] = _mm512_castsi512_ps(_mm512_loadu_si512(row[i] + 2 * j));
    transpose(r);
    for (int c = 0; c < VL; ++c) vstore(dst + (j + c) * dst_ld, r[c]);
  }
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  for (int64_t j = whole; j < kp; ++j)
    for (int i = 0; i < std::min<int64_t>(VL, dst_ld); ++i)
      d[j * dst_ld + i] = uint32_t(row[i][2 * j]) | (2 * j + 1 < kb ? uint32_t(row[i][2 * j + 1]) << 16 : 0u);
}

void pack_b_pairs(const MatmulParams& p, int64_t n0, int64_t nb, int64_t k0, int64_t kb, float* dst) {
  const int64_t kp = (kb + 1) / 2;
  for (int64_t jp = 0; jp < nb; jp += NR)
    for (int v = 0; v < NV; ++v) {
      const int64_t row = jp + v * VL;
      const int rows = int(std::clamp<int64_t>(nb - row, 0, VL));
      pack_pairs(p.w, (n0 + row) * p.K + k0, p.K, rows, kb, dst + jp * kp + v * VL, NR);
    }
}

void pack_a_pairs(const MatmulParams& p, int64_t m0, int mr, int64_t k0, int64_t kb, float* dst) {
  pack_pairs(p.x, m0 * p.K + k0, p.K, mr, kb, dst, MR);
}

constexpr auto kPairKernels = kernel_table<true>(std::make_integer_sequence<int, MR>{});
constexpr bool kHavePairs = true;
#else
constexpr auto kPairKernels = kKernels;  // never chosen: kHavePairs is false
constexpr bool kHavePairs = false;
void pack_b_pairs(const MatmulParams&, int64_t, int64_t, int64_t, int64_t, float*) {}
void pack_a_pairs(const MatmulParams&, int64_t, int, int64_t, int64_t, float*) {}
#endif
using KernelTable = decltype(kKernels);

// A tile of mr x nr (nr < NR at the right edge): computed whole into a local tile,
// then only the valid columns are merged into C.
void edge_tile(const KernelTable& kernels, int mr, int nr, int64_t kb, const float* A, const float* B, float* C,
               int64_t ldc, bool first, const float* bias) {
  alignas(64) float t[MR * NR];
  kernels[mr - 1](kb, A, B, t, NR, true, nullptr, nullptr);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j)
      C[i * ldc + j] = (first ? (bias ? bias[j] : 0.f) : C[i * ldc + j]) + t[i * NR + j];
}

// Splits nt threads into tm x tn over the MR x NR tile grid so the busiest thread
// has the fewest tiles (ties: more threads over N, which keeps x rows shared).
void split_threads(int64_t mt, int64_t ntl, int nt, int& tm, int& tn) {
  int64_t best = -1;
  for (int c = nt; c >= 1; --c) {
    if (nt % c) continue;
    const int r = nt / c;
    const int64_t cost = ((mt + r - 1) / r) * ((ntl + c - 1) / c);
    if (best < 0 || cost < best) best = cost, tm = r, tn = c;
  }
}

// Packing a B block reads w from DRAM (w is read once, so it is never cached): the
// source of the next block is prefetched into L2 a few lines per microkernel call,
// which hides that read behind the compute of the current block. Issued in one burst
// per call these stalled on full miss buffers (~6% of the f32 time), hence the list.
class NextBlockPrefetch {
 public:
  NextBlockPrefetch(const MatmulParams& p, int64_t n, int64_t nb, int64_t k, int64_t kb, int64_t calls)
      : base_(static_cast<const char*>(p.w)), es_(int64_t(dtype_size(p.dtype))), ld_(p.K * es_), n_(n), k_(k) {
    lines_per_row_ = (kb * es_ + 63) / 64;
    total_ = nb * lines_per_row_;
    per_call_ = calls > 0 ? (total_ + calls - 1) / calls : total_;
  }
  // The next lines for one microkernel call of kb K steps.
  void next(PrefetchList& pf, int64_t kb) {
    const int64_t e = std::min({total_, next_ + per_call_, next_ + kb / kPrefetchEvery});
    for (pf.n = 0; next_ < e; ++next_) {
      const int64_t r = next_ / lines_per_row_, l = next_ % lines_per_row_;
      pf.line[pf.n++] = base_ + (n_ + r) * ld_ + k_ * es_ + l * 64;
    }
  }

 private:
  const char* base_;
  int64_t es_, ld_, n_, k_, lines_per_row_ = 0, total_ = 0, per_call_ = 0, next_ = 0;
};

void gemm_block(const MatmulParams& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  ThreadScratch& s = thread_scratch();
  float* bp = s.b.get(size_t(KC) * NC);
  float* ap = s.a.get(size_t(KC) * MR + VL);
  const bool direct = p.dtype == DType::F32;  // accumulate straight into y
  const bool pairs = kHavePairs && p.dtype == DType::BF16;
  const KernelTable& kernels = pairs ? kPairKernels : kKernels;
  PrefetchList pf;
  const int64_t mstep = direct ? m1 - m0 : MC;
  float* cbuf = direct ? nullptr : s.c.get(size_t(MC) * NC);
  for (int64_t mc = m0; mc < m1; mc += mstep) {
    const int64_t mce = std::min(m1, mc + mstep);
    for (int64_t jc = n0; jc < n1; jc += NC) {
      const int64_t nb = std::min(NC, n1 - jc);
      float* c0 = direct ? static_cast<float*>(p.y) + mc * p.N + jc : cbuf;
      const int64_t ldc = direct ? p.N : NC;
      const float* bias = p.bias ? p.bias + jc : nullptr;
      for (int64_t pc = 0; pc < p.K; pc += KC) {
        const int64_t kb = std::min(KC, p.K - pc);
        const int64_t steps = pairs ? (kb + 1) / 2 : kb;  // microkernel steps (k pairs or k)
        const bool first = pc == 0;
        if (pairs)
          pack_b_pairs(p, jc, nb, pc, kb, bp);
        else
          pack_b(p, jc, nb, pc, kb, bp);
        // The block packed after this one: next K block, else next N block.
        const bool next_k = pc + KC < p.K;
        const int64_t njc = next_k ? jc : jc + NC, npc = next_k ? pc + KC : 0;
        const int64_t calls = (mce - mc + MR - 1) / MR * ((nb + NR - 1) / NR);
        NextBlockPrefetch prefetch(p, njc, njc < n1 ? std::min(NC, n1 - njc) : 0, npc, std::min(KC, p.K - npc), calls);
        for (int64_t ir = mc; ir < mce; ir += MR) {
          const int mr = int(std::min<int64_t>(MR, mce - ir));
          if (pairs)
            pack_a_pairs(p, ir, mr, pc, kb, ap);
          else
            pack_a(p, ir, mr, pc, kb, ap);
          const auto kernel = kernels[mr - 1];
          float* crow = c0 + (ir - mc) * ldc;
          for (int64_t jr = 0; jr < nb; jr += NR) {
            const int64_t nr = std::min<int64_t>(NR, nb - jr);
            const float* bj = bias ? bias + jr : nullptr;
            if (nr == NR) {
              prefetch.next(pf, steps);
              kernel(steps, ap, bp + jr * steps, crow + jr, ldc, first, bj, &pf);
            } else {
              edge_tile(kernels, mr, int(nr), steps, ap, bp + jr * steps, crow + jr, ldc, first, bj);
            }
          }
        }
      }
      if (!direct)
        for (int64_t m = mc; m < mce; ++m)
          store_row(cbuf + (m - mc) * NC, static_cast<char*>(p.y) + (m * p.N + jc) * dtype_size(p.dtype), p.dtype, nb);
    }
  }
}

// x rows per GEMV chunk: all M while the accumulators allow R ≥ 2 w rows per tile,
// else chunks of kGemvAcc / 3 rows (R = 3). Every w row re-reads a chunk's x from L2 (x
// is M·K·4 bytes, past L1 beyond a few rows), so one chunk of 7-8 rows at R = 1 on
// AVX2 read M·K·4 bytes of x per w row: Zen 3, 4096² f16 in cache, M = 8 took 3.4 ms
// against M = 4's 1.0; as 4 + 4 rows at R = 3 (the w rows reused from L1) 1.85 ms, and
// from DRAM (16384²) 64 -> 38 ms. At M = 5-6 chunks of 4 were ~8% slower from DRAM.
// Up to this many x rows the GEMV takes one w row a tile (see gemv_columns). On AVX2
// machines (Zen 3 measured) two rows at R = 1 were 1.5-2.2x slower than at R = 4, in
// cache and from DRAM (f16, alternating binaries: 2048² 0.37-0.39 vs 0.17 ms, 4096² 1.41
// vs 0.65-0.70 ms, 16384² 22.0-22.6 vs 12.5-15.9 ms): two FMA chains per w vector wait
// on latency, and the whole of x passes per w row.
#if defined(__AVX512F__)
constexpr int kGemvOneRow = 2;
#else
constexpr int kGemvOneRow = 1;
#endif

inline int64_t gemv_chunk(int64_t M) { return kGemvAcc / M >= 2 ? M : kGemvAcc / 3; }

// x for the GEMV in f32: row-major (for the K tail) and, for whole vectors of K,
// interleaved per chunk of gemv_chunk(M) rows as [K/VL][rows][VL], so the M vectors a
// k step needs are adjacent: one sequential stream instead of M rows K*4 bytes apart
// (same L1 sets; at M=8, K=4096 the row-major reads ran at half the speed).
struct GemvX {
  const float* rows;
  const float* inter;
};

// GEMV tile: rows [m0, m0+M) of y, columns [n, n+R). Each w vector is loaded (and
// widened) once into a register and used for all M rows of x.
template <class S, int M, int R>
void gemv_tile(const MatmulParams& p, const GemvX& x, int64_t m0, int64_t n) {
  using T = typename S::T;
  const int64_t K = p.K, kv = K / VL * VL;
  const T* w = static_cast<const T*>(p.w) + n * K;
  const float* xm = x.rows + m0 * K;
  const float* xi = x.inter + m0 * kv;
  vf acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = vzero();
  int64_t k0 = 0;
  if constexpr (M == 1 && R == 1) {
    // One row at a time (decode, see gemv_columns): four partial sums keep the FMA
    // chain from bounding the rate; the next row is prefetched line by line.
    vf a1 = vzero(), a2 = vzero(), a3 = vzero();
    const uintptr_t next = reinterpret_cast<uintptr_t>(w + K);  // integer: may point past the weights
    for (; k0 + 4 * VL <= kv; k0 += 4 * VL) {
      for (int64_t b = 0; b < int64_t(4 * VL * sizeof(T)); b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(next + size_t(k0) * sizeof(T) + size_t(b)), _MM_HINT_T0);
      acc[0][0] = vfma(vload(xi + k0), S::load(w + k0), acc[0][0]);
      a1 = vfma(vload(xi + k0 + VL), S::load(w + k0 + VL), a1);
      a2 = vfma(vload(xi + k0 + 2 * VL), S::load(w + k0 + 2 * VL), a2);
      a3 = vfma(vload(xi + k0 + 3 * VL), S::load(w + k0 + 3 * VL), a3);
    }
    acc[0][0] = (acc[0][0] + a1) + (a2 + a3);
  }
  for (int64_t k = k0; k < kv; k += VL) {
    vf wv[R];
    for (int r = 0; r < R; ++r) wv[r] = S::load(w + r * K + k);
    // Prefetch the next tile's rows (R·K elements on) line by line as these are read —
    // short rows restart the hardware prefetcher at every tile (K = N = 4096 f16,
    // in-process A/B: M = 3 1003 → 841 µs, M = 4 1043 → 850, M = 8 1936 → 1899). Past the last
    // row it touches nothing: prefetches never fault.
    if ((k * sizeof(T)) % 64 == 0)
      for (int r = 0; r < R; ++r)  // address arithmetic on integers: it may point past the weights
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w) + size_t((R + r) * K + k) * sizeof(T)), _MM_HINT_T0);
    for (int m = 0; m < M; ++m) {
      const vf xv = vload(xi + k * M + m * VL);
      for (int r = 0; r < R; ++r) acc[m][r] = vfma(xv, wv[r], acc[m][r]);
    }
  }
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) {
      float v = vsum(acc[m][r]);
      for (int64_t k = kv; k < K; ++k) v += xm[m * K + k] * S::scalar(w + r * K + k);
      if (p.bias) v += p.bias[n + r];
      store_row(&v, static_cast<char*>(p.y) + ((m0 + m) * p.N + n + r) * dtype_size(p.dtype), p.dtype, 1);
    }
}

template <class S, int R, int... Ms>
void gemv_tile_rows(int rows, const MatmulParams& p, const GemvX& x, int64_t m0, int64_t n,
                    std::integer_sequence<int, Ms...>) {
  ((rows == Ms + 1 ? gemv_tile<S, Ms + 1, R>(p, x, m0, n) : void()), ...);
}

// Columns [n0, n1) of y for all M rows. x is taken gemv_chunk(M) rows at a time, all
// chunks against the same R rows of w while those are still in L1, so w streams from
// memory once however many chunks there are. R: as many w rows as accumulators allow.
template <class S>
void gemv_columns(const MatmulParams& p, const GemvX& x, int64_t n0, int64_t n1) {
  const int64_t chunk = gemv_chunk(p.M);
  const int rows0 = int(std::min<int64_t>(p.M, chunk));
  // M <= kGemvOneRow streams one w row at a time: each thread then reads one sequential
  // stream, which the Zen 5 VM (AVX-512) served faster than R interleaved rows
  // (in-process A/B: 1b f16 decode step R = 1 45.3 ms, R = 2 53.5, R = 4 54.5;
  // [2, 2048] × [5632, 2048]ᵀ 48.6 vs 39.6 GB/s). From M = 4 on, a w vector feeding more
  // rows wins (M = 8: 17.3 GB/s with R = 3 vs 11.2 with one row).
  // R·rows0 accumulators + R w vectors + an x vector within the registers (M = 3 at R = 4
  // on AVX2 needed 17 of 16 ymm: 1.30 ms at 4096² in cache, 0.95 at R = 3).
  const int r_fit = std::min(kGemvAcc / rows0, (kGemvRegs - 1) / (rows0 + 1));
  const int r_full = rows0 <= kGemvOneRow ? 1 : std::clamp(r_fit, 1, 4);
  auto run = [&]<int R>(int64_t n) {
    for (int64_t m0 = 0; m0 < p.M; m0 += chunk)
      gemv_tile_rows<S, R>(int(std::min<int64_t>(chunk, p.M - m0)), p, x, m0, n,
                           std::make_integer_sequence<int, int(kGemvMaxRows)>{});
  };
  int64_t n = n0;
  for (; n + r_full <= n1; n += r_full) {
    switch (r_full) {
      case 4: run.template operator()<4>(n); break;
      case 3: run.template operator()<3>(n); break;
      case 2: run.template operator()<2>(n); break;
      default: run.template operator()<1>(n); break;
    }
  }
  for (; n < n1; ++n) run.template operator()<1>(n);
}

}  // namespace

void gemm(const MatmulParams& p) {
  const int64_t mt = (p.M + MR - 1) / MR, ntl = (p.N + NR - 1) / NR;
  ThreadPool& pool = cpu_pool();
  int tm = 1, tn = 1;
  // Below ~4 MFLOP the fork/join costs more than a second thread gains.
  const int nt = 2.0 * double(p.M) * double(p.N) * double(p.K) < 4e6 ? 1 : pool.size();
  split_threads(mt, ntl, nt, tm, tn);
  auto work = [&](int tid, int) {
    if (tid >= tm * tn) return;
    const int ti = tid / tn, tj = tid % tn;
    const int64_t m0 = std::min(p.M, mt * ti / tm * MR), m1 = std::min(p.M, mt * (ti + 1) / tm * MR);
    const int64_t n0 = std::min(p.N, ntl * tj / tn * NR), n1 = std::min(p.N, ntl * (tj + 1) / tn * NR);
    if (m0 < m1 && n0 < n1) gemm_block(p, m0, m1, n0, n1);
  };
  if (nt == 1)
    work(0, 1);
  else
    pool.run(work);
}

void gemv(const MatmulParams& p) {
  // x is small: widened once to f32 so the inner loop only converts w.
  static thread_local std::vector<float> xbuf, xinter;
  const float* x = static_cast<const float*>(p.x);
  if (p.dtype != DType::F32) {
    xbuf.resize(size_t(p.M * p.K));
    row_f32(p.x, p.dtype, 0, p.M * p.K, xbuf.data());
    x = xbuf.data();
  }
  const int64_t kv = p.K / VL * VL;
  xinter.resize(size_t(p.M * kv));
  const int64_t chunk = gemv_chunk(p.M);
  for (int64_t m0 = 0; m0 < p.M; m0 += chunk) {
    const int64_t mc = std::min(chunk, p.M - m0);
    float* dst = xinter.data() + m0 * kv;
    for (int64_t m = 0; m < mc; ++m)
      for (int64_t k = 0; k < kv; k += VL) vstore(dst + k * mc + m * VL, vload(x + (m0 + m) * p.K + k));
  }
  const GemvX xs{x, xinter.data()};
  // Each thread takes a contiguous range of w rows, at least ~64 KiB of weights.
  const int64_t row_bytes = p.K * int64_t(dtype_size(p.dtype));
  const int64_t grain = std::max<int64_t>(4, (64 << 10) / std::max<int64_t>(row_bytes, 1));
  with_src(p.dtype, [&](auto s) {
    using S = decltype(s);
    cpu_pool().parallel_for(p.N, grain, [&](int64_t b, int64_t e) { gemv_columns<S>(p, xs, b, e); });
  });
}

}  // namespace llmk::cpu::LLMK_ISA_NS
