// y = x · Wᵀ with W in 2:4 compressed form (common/sparse24.h), compiled once per ISA,
// in two forms (cpu/sparse24.cpp picks by the number of x rows M):
// - dot form (sparse24_gemm, few rows): the weights are read once in compressed form
//   (values + metadata: 9/16 of dense f16 bytes) and expanded in registers: on AVX-512
//   one metadata word (8 groups) becomes a 16-lane index vector that gathers the
//   matching x elements from two zmm registers (vpermt2ps), then one FMA per 16 kept
//   weights; on AVX2 one x row selects its x elements the same way from two ymm (two
//   vpermps and a blend per 8 kept weights), and 2-8 rows expand the weights to dense
//   vectors once (a table per metadata byte, one vpermps per 8 dense weights) and run
//   plain FMAs against x.
// - blocked form (sparse24_gemm_xt, many rows): vectorized over m against transposed x,
//   one FMA per kept weight per vector of outputs (see "Many x rows" below).
#include <immintrin.h>

#include <cstdint>

#include <algorithm>
#include <utility>
#include <vector>

#include "common/sparse24.h"
#include "cpu/isa/convert_simd.h"
#include "cpu/isa/vec_simd.h"

namespace llmk::cpu::LLMK_ISA_NS {

namespace {

// x rows per pass of the dot form, each weight row decoded once for all of them: 8 on
// AVX2 (the expand form's 8 accumulators + 2 dense vectors), 4 elsewhere.
// kDotMaxRows: x rows at or below this take the dot form; above, the blocked form with
// half a dense GEMM's FMAs. Zen 3 (AVX2), 4096² f16, 2 threads, ms dot/blocked: M=7
// 3.0-3.6/4.2-5.3, M=8 3.5-4.3/4.1-5.3, M=10 4.1-4.8/4.1-4.5, M=16 5.2-6.0/4.2-4.7 (the
// blocked form pads M to 16 there). Elsewhere the earlier limit, unmeasured on AVX-512
// (its blocks pad to 32).
#if defined(__AVX2__) && !defined(__AVX512F__)
constexpr int kRows = 8;
constexpr int64_t kDotMaxRows = 8;
#else
constexpr int kRows = 4;
constexpr int64_t kDotMaxRows = 6;
#endif

inline float value_at(int vdtype, const void* v, int64_t i) {
  if (vdtype == 0) return static_cast<const float*>(v)[i];
  const uint16_t h = static_cast<const uint16_t*>(v)[i];
  return vdtype == 1 ? f16_to_f32(h) : bf16_to_f32(h);
}

// Scalar groups [g0, g1) of one weight row for rows m0..m0+mr of x.
inline void groups_scalar(const float* x, int64_t K, int mr, int vdtype, const void* vrow, const uint32_t* mrow,
                          int64_t g0, int64_t g1, float* acc) {
  for (int64_t g = g0; g < g1; ++g) {
    const uint32_t nib = (mrow[g / 8] >> (4 * (g % 8))) & 0xfu;
    const float a = value_at(vdtype, vrow, 2 * g), b = value_at(vdtype, vrow, 2 * g + 1);
    const int64_t k0 = 4 * g + (nib & 3), k1 = 4 * g + (nib >> 2);
    for (int r = 0; r < mr; ++r) acc[r] += a * x[r * K + k0] + b * x[r * K + k1];
  }
}

#if defined(__AVX512F__)
inline __m512 load_values16(int vdtype, const char* p) {
  if (vdtype == 0) return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if (vdtype == 1) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Lane l takes value 2·grp + j of an 8-group chunk: x index 4·grp + nibble bits 2j.
inline __m512i chunk_indices(uint32_t word) {
  const __m512i shifts = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i base = _mm512_set_epi32(28, 28, 24, 24, 20, 20, 16, 16, 12, 12, 8, 8, 4, 4, 0, 0);
  return _mm512_add_epi32(_mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(int(word)), shifts), _mm512_set1_epi32(3)),
                          base);
}

// MR x rows (compile-time, so the accumulators stay in registers) against one weight
// row; two chunks per step with separate accumulators hide the FMA latency when MR is 1.
template <int MR>
int64_t dot_rows(int vdtype, const float* x, int64_t K, const char* vrow, const uint32_t* mrow, int64_t G, float* acc) {
  const size_t es = vdtype == 0 ? 4 : 2;
  __m512 a0[MR], a1[MR];
  for (int r = 0; r < MR; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  int64_t g = 0;
  for (; g + 16 <= G; g += 16) {
    // The weights are read once: fetch ahead of the stream (values 2 KiB, metadata 256 B).
    _mm_prefetch(vrow + (2 * g + 1024) * es, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(mrow + g / 8) + 256, _MM_HINT_T0);
    const __m512i i0 = chunk_indices(mrow[g / 8]), i1 = chunk_indices(mrow[g / 8 + 1]);
    const __m512 v0 = load_values16(vdtype, vrow + 2 * g * es), v1 = load_values16(vdtype, vrow + (2 * g + 16) * es);
    for (int r = 0; r < MR; ++r) {
      const float* xr = x + r * K + 4 * g;
      a0[r] = _mm512_fmadd_ps(v0, _mm512_permutex2var_ps(_mm512_loadu_ps(xr), i0, _mm512_loadu_ps(xr + 16)), a0[r]);
      a1[r] = _mm512_fmadd_ps(v1, _mm512_permutex2var_ps(_mm512_loadu_ps(xr + 32), i1, _mm512_loadu_ps(xr + 48)), a1[r]);
    }
  }
  for (; g + 8 <= G; g += 8) {
    const __m512i i0 = chunk_indices(mrow[g / 8]);
    const __m512 v0 = load_values16(vdtype, vrow + 2 * g * es);
    for (int r = 0; r < MR; ++r) {
      const float* xr = x + r * K + 4 * g;
      a0[r] = _mm512_fmadd_ps(v0, _mm512_permutex2var_ps(_mm512_loadu_ps(xr), i0, _mm512_loadu_ps(xr + 16)), a0[r]);
    }
  }
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
  return g;
}

#elif defined(__AVX2__)
// AVX2 has no two-register permute. Two forms share the chunk decoding helpers:
// - one x row: the x elements the kept weights meet are selected (dot_select1);
// - 2-8 x rows: the weights are expanded to dense vectors once for all rows
//   (dot_rows), so the shuffles do not grow with M.
// Prefetch distance in value bytes: 1024, 4096 and 8192 measured the same (M=1, 16384^2).
constexpr int kPrefetchValues = 1024;
inline __m256 load_values8(int vdtype, const char* p) {
  if (vdtype == 0) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (vdtype == 1) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Lane l takes value 2·grp + j of a 4-group chunk (metadata bits 2l, 2l+1 of `bits`):
// x element 4·grp + the nibble's 2-bit index, i.e. 4·(grp % 2) + index within its ymm.
inline __m256i chunk_indices(uint32_t bits) {
  const __m256i shifts = _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0);
  const __m256i base = _mm256_set_epi32(4, 4, 0, 0, 4, 4, 0, 0);
  return _mm256_add_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(int(bits)), shifts), _mm256_set1_epi32(3)),
                          base);
}

inline __m256 select8(const float* x, __m256i idx) {
  return _mm256_blend_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(x), idx),
                         _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + 8), idx), 0xf0);
}

// One x row: a chunk of 4 groups (8 kept weights, 16 x elements in two ymm) selects its
// x elements with one vpermps per register (the index's low 3 bits address each) and a
// blend (lanes 0-3 from the first, 4-7 from the second), then one FMA per 8 kept
// weights, where the expand form needs two. (A gather instead ran at ~4 GB/s of weights
// on Zen 3.) 8 groups (one metadata word) a step in two chunks with separate
// accumulators (FMA latency).
template <int VD>
int64_t dot_select1(const float* x, const char* vrow, const uint32_t* mrow, int64_t G, float* acc) {
  constexpr size_t es = VD == 0 ? 4 : 2;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t g = 0;
  for (; g + 8 <= G; g += 8) {
    _mm_prefetch(vrow + (2 * g + kPrefetchValues) * es, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(mrow + g / 8) + kPrefetchValues / 4, _MM_HINT_T0);
    const uint32_t word = mrow[g / 8];
    const __m256i i0 = chunk_indices(word & 0xffffu), i1 = chunk_indices(word >> 16);
    a0 = _mm256_fmadd_ps(load_values8(VD, vrow + 2 * g * es), select8(x + 4 * g, i0), a0);
    a1 = _mm256_fmadd_ps(load_values8(VD, vrow + (2 * g + 8) * es), select8(x + 4 * g + 16, i1), a1);
  }
  for (; g + 4 <= G; g += 4) {
    const __m256i i0 = chunk_indices((mrow[g / 8] >> (4 * (g % 8))) & 0xffffu);
    a0 = _mm256_fmadd_ps(load_values8(VD, vrow + 2 * g * es), select8(x + 4 * g, i0), a0);
  }
  acc[0] = hsum(_mm256_add_ps(a0, a1));
  return g;
}

// Expand form (the weights made dense in registers, shared by every x row). Each
// metadata byte (two groups) indexes a table giving the 8 dense lanes' source among
// [v0 v1 v2 v3 0 0 0 0] (4: a zero), so a 4-group chunk becomes two dense vectors with
// two 4-value loads (zeros above) and two vpermps, once for all MR rows, which then run
// one plain FMA per 8 dense weights against contiguous x. Selecting x per row instead
// made the shuffles grow with M (Zen 3, 4096² f16 in cache, 2 threads: M=4 3.8 -> 1.6-1.8
// ms, M=6 4.8 -> 1.9-2.6 ms). Still ~4 cycles of decoding per 16 dense weights per
// weight row whatever the decoding variant tried (one 8-value conversion and two
// blends, an int8 table, one metadata word per step; vpermps alone takes ~1.4 cycles on
// Zen 3): in cache the dense GEMV stays ahead at 2-6 rows; from DRAM (16384²) the halved
// weight bytes tie at 2 rows (16.6 vs 17.1 ms) and lose at 4 (23-25 vs 18 ms).
struct ExpandTable {
  alignas(64) int32_t lane[256][8];
};
constexpr ExpandTable make_expand_table() {
  ExpandTable t{};
  for (int b = 0; b < 256; ++b)
    for (int half = 0; half < 2; ++half) {
      const int nib = (b >> (4 * half)) & 0xf, i0 = nib & 3, i1 = nib >> 2;
      // Legal nibbles have i0 < i1 (compress writes no other); i0 == i1 would keep the first.
      for (int p = 0; p < 4; ++p) t.lane[b][4 * half + p] = p == i0 ? 2 * half : p == i1 ? 2 * half + 1 : 4;
    }
  return t;
}
constexpr ExpandTable kExpand = make_expand_table();

// Values 2g..2g+3 (two groups) in lanes 0-3, zeros in 4-7: a VEX 128-bit load or
// conversion clears the upper lanes, so no blend is needed to make the zeros.
template <int VD>
inline __m256 load_values4(const char* p) {
  if constexpr (VD == 0) return _mm256_zextps128_ps256(_mm_loadu_ps(reinterpret_cast<const float*>(p)));
  const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  if constexpr (VD == 1) return _mm256_zextps128_ps256(_mm_cvtph_ps(h));
  return _mm256_zextps128_ps256(_mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(h), 16)));
}

// The 8 dense weights of groups 2i, 2i+1 (metadata byte b), from their values in lanes
// 0-3 and zeros above.
inline __m256 expand8(__m256 v4, uint32_t b) {
  return _mm256_permutevar8x32_ps(v4, _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.lane[b])));
}

// MR x rows against NR weight rows (n, n + 1: the x loads serve both), 8 groups (one
// metadata word, 32 dense weights) per step. NA accumulators per (weight row, x row),
// enough that 8 chains run (FMA latency 4 at 2 a cycle). acc[w·MR + r].
template <int VD, int MR, int NR>
int64_t dot_rows(const float* x, int64_t K, const char* const* vrow, const uint32_t* const* mrow, int64_t G, float* acc) {
  constexpr size_t es = VD == 0 ? 4 : 2;
  constexpr int NA = MR * NR >= 8 ? 1 : 2;
  __m256 a[NR][MR][NA];
  for (int w = 0; w < NR; ++w)
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NA; ++j) a[w][r][j] = _mm256_setzero_ps();
  int64_t g = 0;
  auto chunk = [&](int64_t g4, int slot) __attribute__((always_inline)) {  // groups g4..g4+3
    __m256 d[NR][2];
    for (int w = 0; w < NR; ++w)
      for (int j = 0; j < 2; ++j)
        d[w][j] = expand8(load_values4<VD>(vrow[w] + (2 * g4 + 4 * j) * es),
                          reinterpret_cast<const uint8_t*>(mrow[w])[g4 / 2 + j]);
    for (int j = 0; j < 2; ++j)
      for (int r = 0; r < MR; ++r) {
        const __m256 xv = _mm256_loadu_ps(x + r * K + 4 * g4 + 8 * j);
        for (int w = 0; w < NR; ++w) a[w][r][(slot + j) % NA] = _mm256_fmadd_ps(d[w][j], xv, a[w][r][(slot + j) % NA]);
      }
  };
  if constexpr (NA == 1)  // one 4-group chunk a step: a short body keeps the accumulators in place
    for (; g + 4 <= G; g += 4) {
      if (g % 8 == 0)
        for (int w = 0; w < NR; ++w) {
          _mm_prefetch(vrow[w] + (2 * g + kPrefetchValues) * es, _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(mrow[w] + g / 8) + kPrefetchValues / 4, _MM_HINT_T0);
        }
      chunk(g, 0);
    }
  for (; g + 8 <= G; g += 8) {
    for (int w = 0; w < NR; ++w) {
      _mm_prefetch(vrow[w] + (2 * g + kPrefetchValues) * es, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(mrow[w] + g / 8) + kPrefetchValues / 4, _MM_HINT_T0);
    }
    chunk(g, 0);
    chunk(g + 4, 2);
  }
  for (; g + 4 <= G; g += 4) chunk(g, 0);
  for (int w = 0; w < NR; ++w)
    for (int r = 0; r < MR; ++r) {
      for (int j = 1; j < NA; ++j) a[w][r][0] = _mm256_add_ps(a[w][r][0], a[w][r][j]);
      acc[w * MR + r] = hsum(a[w][r][0]);
    }
  return g;
}
#endif

#if defined(__AVX512F__)
constexpr int kPairRows = 1;  // weight rows per dot pass
int64_t dot_simd(int vdtype, int mr, int, const float* x, int64_t K, const char* const* vrow,
                 const uint32_t* const* mrow, int64_t G, float* acc) {
  switch (mr) {
    case 1: return dot_rows<1>(vdtype, x, K, vrow[0], mrow[0], G, acc);
    case 2: return dot_rows<2>(vdtype, x, K, vrow[0], mrow[0], G, acc);
    case 3: return dot_rows<3>(vdtype, x, K, vrow[0], mrow[0], G, acc);
    default: return dot_rows<4>(vdtype, x, K, vrow[0], mrow[0], G, acc);
  }
}
#elif defined(__AVX2__)
constexpr int kPairRows = 2;
template <int VD, int NR>
int64_t dot_nr(int mr, const float* x, int64_t K, const char* const* vrow, const uint32_t* const* mrow, int64_t G,
               float* acc) {
  switch (mr) {
    case 2: return dot_rows<VD, 2, NR>(x, K, vrow, mrow, G, acc);
    case 3: return dot_rows<VD, 3, NR>(x, K, vrow, mrow, G, acc);
    case 4: return dot_rows<VD, 4, NR>(x, K, vrow, mrow, G, acc);
    case 5: return dot_rows<VD, 5, NR>(x, K, vrow, mrow, G, acc);
    case 6: return dot_rows<VD, 6, NR>(x, K, vrow, mrow, G, acc);
  }
  if constexpr (NR == 1) {
    if (mr == 7) return dot_rows<VD, 7, 1>(x, K, vrow, mrow, G, acc);
    return dot_rows<VD, 8, 1>(x, K, vrow, mrow, G, acc);
  }
  return 0;  // not reached: NR = 2 only up to 6 rows
}
template <int VD>
int64_t dot_vd(int mr, int nr, const float* x, int64_t K, const char* const* vrow, const uint32_t* const* mrow,
               int64_t G, float* acc) {
  if (mr == 1) return dot_select1<VD>(x, vrow[0], mrow[0], G, acc);  // nr is 1 then
  return nr == 2 ? dot_nr<VD, 2>(mr, x, K, vrow, mrow, G, acc) : dot_nr<VD, 1>(mr, x, K, vrow, mrow, G, acc);
}
int64_t dot_simd(int vdtype, int mr, int nr, const float* x, int64_t K, const char* const* vrow,
                 const uint32_t* const* mrow, int64_t G, float* acc) {
  if (vdtype == 0) return dot_vd<0>(mr, nr, x, K, vrow, mrow, G, acc);
  if (vdtype == 1) return dot_vd<1>(mr, nr, x, K, vrow, mrow, G, acc);
  return dot_vd<2>(mr, nr, x, K, vrow, mrow, G, acc);
}
#else
constexpr int kPairRows = 1;
#endif

// ---- Many x rows (M > kDotMaxRows): half the FMAs of a dense GEMM ------------------
// A dense GEMM broadcasts x and vectorizes over n. Each 2:4 weight row keeps its own k,
// so this one vectorizes over m instead: x is packed transposed in blocks of MB = NV·W
// rows (xT[k][m], sparse24_pack_xt), every kept weight w[n,k] is broadcast and
// multiplied into the NV vectors xT[k][m0..m0+MB) — one FMA per kept weight per W
// outputs, half the FMAs of the dense product. The weights of a (row block, k block)
// are decoded once per call into f32 values and byte offsets k·MB·4 (pack_rows) and
// reused by every m block. Per kept weight and row the microkernel issues a broadcast,
// an offset load and NV FMAs with their x operand from memory; on Zen 3 that loop ran at
// ~3.2 cycles per 4 FMAs whether the offsets hit one line or spread over 16 KiB (load
// ports, not cache), and 4x3 beat 8x1 and 2x4 per FMA (microbenchmark).
// NV = 4 (MB = 4·W, 3 weight rows: 12 accumulators) when M > 2·W; else NV = 2 (6 rows),
// which wastes no FMAs on padding rows when M ≤ 2·W (M = 16 on AVX2: 1.7x faster).
template <int NV>
struct Blocked {
  static constexpr int MB = NV * W;                     // x rows per block
  static constexpr int NR = 12 / NV;                    // weight rows per microkernel
  static constexpr int64_t KC = 4096 / MB;              // k per block: the xT block (KC x MB f32) is 16 KiB, in L1
  static constexpr int64_t NC = 32 * NR;                // weight rows per block: packed pairs <= 96 KiB, in L2
  static constexpr int kShift = __builtin_ctz(MB * 4);  // byte offset of k in an xT block = k << kShift
  static_assert(KC % 32 == 0, "k blocks start on a metadata word");
};

// Rows [n0, n0 + nn) of the weights, k in [kc, kc + kb): kb/2 (value, offset) pairs per
// row, row r at vals/offs + r·(kb/2).
template <int kShift>
void pack_rows(int vdtype, const void* values, const int32_t* meta, int64_t K, int64_t n0, int64_t nn, int64_t kc,
               int64_t kb, float* vals, int32_t* offs) {
  const int64_t MW = sparse24_meta_words(K), J = kb / 2, g0 = kc / 4, G = kb / 4;
  const size_t es = vdtype == 0 ? 4 : 2;
  for (int64_t r = 0; r < nn; ++r) {
    const char* vrow = static_cast<const char*>(values) + size_t((n0 + r) * (K / 2) + 2 * g0) * es;
    const uint32_t* mrow = reinterpret_cast<const uint32_t*>(meta + (n0 + r) * MW) + g0 / 8;
    float* v = vals + r * J;
    int32_t* o = offs + r * J;
    int64_t g = 0;
#if defined(__AVX512F__)
    for (; g + 8 <= G; g += 8) {
      const __m512i k = _mm512_add_epi32(chunk_indices(mrow[g / 8]), _mm512_set1_epi32(int(4 * g)));
      _mm512_storeu_si512(o + 2 * g, _mm512_slli_epi32(k, kShift));
      _mm512_storeu_ps(v + 2 * g, load_values16(vdtype, vrow + 2 * g * es));
    }
#elif defined(__AVX2__)
    for (; g + 4 <= G; g += 4) {
      // chunk_indices addresses each half's 8 x elements: lanes 4-7 sit 8 further on
      const uint32_t bits = (mrow[g / 8] >> (4 * (g % 8))) & 0xffffu;
      const __m256i k = _mm256_add_epi32(chunk_indices(bits), _mm256_set_epi32(8, 8, 8, 8, 0, 0, 0, 0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 2 * g),
                          _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(int(4 * g))), kShift));
      _mm256_storeu_ps(v + 2 * g, load_values8(vdtype, vrow + 2 * g * es));
    }
#endif
    for (; g < G; ++g) {
      const uint32_t nib = (mrow[g / 8] >> (4 * (g % 8))) & 0xfu;
      v[2 * g] = value_at(vdtype, vrow, 2 * g);
      v[2 * g + 1] = value_at(vdtype, vrow, 2 * g + 1);
      o[2 * g] = int32_t((4 * g + (nib & 3)) << kShift);
      o[2 * g + 1] = int32_t((4 * g + (nib >> 2)) << kShift);
    }
  }
}

// c[r][0..NV·W) (+)= Σ_j vals[r][j] · xT[offs[r][j]][0..NV·W) for R weight rows.
template <int NV, int R>
void micro(int64_t J, const float* vals, const int32_t* offs, const char* xb, float* c, int64_t ldc, bool first) {
  vf acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = vf{};
  for (int64_t j = 0; j < J; ++j)
    for (int r = 0; r < R; ++r) {
      const vf b = splat(vals[r * J + j]);
      const float* xk = reinterpret_cast<const float*>(xb + offs[r * J + j]);
      for (int v = 0; v < NV; ++v) acc[r][v] += b * ld(xk + v * W);
    }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      float* cp = c + r * ldc + v * W;
      st(cp, first ? acc[r][v] : acc[r][v] + ld(cp));
    }
}

template <int NV, int... Rs>
void micro_rows(int rows, std::integer_sequence<int, Rs...>, int64_t J, const float* vals, const int32_t* offs,
                const char* xb, float* c, int64_t ldc, bool first) {
  ((rows == Rs + 1 ? micro<NV, Rs + 1>(J, vals, offs, xb, c, ldc, first) : void()), ...);
}

template <int NV>
void gemm_xt(const float* xt, int64_t M, int64_t K, int vdtype, const void* values, const int32_t* meta, int64_t n0,
             int64_t n1, float* yt) {
  using B = Blocked<NV>;
  const int64_t mblocks = (M + B::MB - 1) / B::MB, Mp = mblocks * B::MB;
  std::vector<float> vals(size_t(B::NC * B::KC / 2));
  std::vector<int32_t> offs(vals.size());
  for (int64_t nc = n0; nc < n1; nc += B::NC) {
    const int64_t nn = std::min(B::NC, n1 - nc);
    for (int64_t kc = 0; kc < K; kc += B::KC) {
      const int64_t kb = std::min(B::KC, K - kc), J = kb / 2;
      pack_rows<B::kShift>(vdtype, values, meta, K, nc, nn, kc, kb, vals.data(), offs.data());
      for (int64_t b = 0; b < mblocks; ++b) {
        const char* xb = reinterpret_cast<const char*>(xt + (b * K + kc) * B::MB);
        for (int64_t r = 0; r < nn; r += B::NR)
          micro_rows<NV>(int(std::min<int64_t>(B::NR, nn - r)), std::make_integer_sequence<int, B::NR>{}, J,
                         vals.data() + r * J, offs.data() + r * J, xb, yt + (nc + r) * Mp + b * B::MB, Mp, kc == 0);
      }
    }
  }
}

}  // namespace

int64_t sparse24_dot_max_rows() { return kDotMaxRows; }

int64_t sparse24_xt_rows(int64_t M) { return M > 2 * W ? Blocked<4>::MB : Blocked<2>::MB; }

// xT block b (rows b·mb..) of x[M,K]: [K][mb] f32, rows past M zero.
void sparse24_pack_xt(const float* x, int64_t M, int64_t K, int64_t mb, int64_t b, float* xt) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < mb; ++i) {
      const int64_t m = b * mb + i;
      xt[k * mb + i] = m < M ? x[m * K + k] : 0.f;
    }
}

// yT[n][0..Mp) for weight rows [n0, n1), Mp = M rounded up to sparse24_xt_rows(M), from
// the packed xT.
void sparse24_gemm_xt(const float* xt, int64_t M, int64_t K, int vdtype, const void* values, const int32_t* meta,
                      int64_t n0, int64_t n1, float* yt) {
  if (sparse24_xt_rows(M) == Blocked<4>::MB)
    gemm_xt<4>(xt, M, K, vdtype, values, meta, n0, n1, yt);
  else
    gemm_xt<2>(xt, M, K, vdtype, values, meta, n0, n1, yt);
}

void sparse24_gemm(const float* x, int64_t M, int64_t K, int vdtype, const void* values, const int32_t* meta,
                   int64_t n0, int64_t n1, int64_t N, float* y) {
  const int64_t G = K / 4, MW = sparse24_meta_words(K), vstride = K / 2;
  const size_t es = vdtype == 0 ? 4 : 2;
  // Blocks of weight rows small enough to stay in L2 while every x row passes by, so
  // the compressed weights come from DRAM once even when M is large.
  constexpr int64_t kNBlock = 32;
  for (int64_t nb = n0; nb < n1; nb += kNBlock) {
    const int64_t nb1 = nb + kNBlock < n1 ? nb + kNBlock : n1;
    for (int64_t m0 = 0; m0 < M; m0 += kRows) {
      const int mr = int(M - m0 < kRows ? M - m0 : kRows);
      const float* xb = x + m0 * K;
      for (int64_t n = nb; n < nb1;) {
        // Two weight rows a pass (AVX2) for 2-6 x rows: NR·MR accumulators + 2·NR dense
        // vectors fit the 16 ymm; one for 1 row (select form) and 7-8 rows.
        const int nr = kPairRows == 2 && mr >= 2 && mr <= 6 && n + 2 <= nb1 ? 2 : 1;
        const char* vrow[kPairRows];
        const uint32_t* mrow[kPairRows];
        for (int w = 0; w < nr; ++w) {
          vrow[w] = static_cast<const char*>(values) + size_t((n + w) * vstride) * es;
          mrow[w] = reinterpret_cast<const uint32_t*>(meta + (n + w) * MW);
        }
        float acc[kPairRows * kRows] = {};
        int64_t g = 0;
#if defined(__AVX512F__) || defined(__AVX2__)
        g = dot_simd(vdtype, mr, nr, xb, K, vrow, mrow, G, acc);
#endif
        for (int w = 0; w < nr; ++w) {
          groups_scalar(xb, K, mr, vdtype, vrow[w], mrow[w], g, G, acc + w * mr);
          for (int r = 0; r < mr; ++r) y[(m0 + r) * N + n + w] = acc[w * mr + r];
        }
        n += nr;
      }
    }
  }
}

}  // namespace llmk::cpu::LLMK_ISA_NS
