// y[m, n0..n1) = x[m,:] · W[n,:]ᵀ with W in 2:4 compressed form (common/sparse24.h),
// compiled once per ISA. The weights are read once in compressed form (values +
// metadata: 9/16 of dense f16 bytes) and expanded in registers: on AVX-512 one
// metadata word (8 groups) becomes a 16-lane index vector that gathers the matching x
// elements from two zmm registers (vpermt2ps), then one FMA per 16 kept weights; on
// AVX2 a 16-bit metadata field (4 groups) selects 8 x elements from two ymm with two
// vpermps and a blend, then one FMA per 8 kept weights.
#include <immintrin.h>

#include <cstdint>

#include "common/sparse24.h"
#include "cpu/isa/convert_simd.h"

namespace llmk::cpu::LLMK_ISA_NS {

namespace {

constexpr int kRows = 4;  // x rows per pass: 4 accumulators, the decoded indices reused 4×

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
// AVX2 has no two-register permute: a chunk of 4 groups (8 kept weights, 16 x elements
// in two ymm) selects its x elements with one vpermps per register (the index's low 3
// bits address each) and a blend (lanes 0-3 from the first, 4-7 from the second). The
// index vector and the values are decoded once per chunk and reused by all MR rows. (A
// gather per row, as before, ran at ~4 GB/s of weights on Zen 3: 0.2-0.3x dense.)
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

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// MR x rows against one weight row, 8 groups (one metadata word) per step in two
// chunks with separate accumulators (FMA latency at MR = 1).
template <int MR>
int64_t dot_rows(int vdtype, const float* x, int64_t K, const char* vrow, const uint32_t* mrow, int64_t G, float* acc) {
  const size_t es = vdtype == 0 ? 4 : 2;
  __m256 a0[MR], a1[MR];
  for (int r = 0; r < MR; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= G; g += 8) {
    _mm_prefetch(vrow + (2 * g + kPrefetchValues) * es, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(mrow + g / 8) + kPrefetchValues / 4, _MM_HINT_T0);
    const uint32_t word = mrow[g / 8];
    const __m256i i0 = chunk_indices(word & 0xffffu), i1 = chunk_indices(word >> 16);
    const __m256 v0 = load_values8(vdtype, vrow + 2 * g * es), v1 = load_values8(vdtype, vrow + (2 * g + 8) * es);
    for (int r = 0; r < MR; ++r) {
      const float* xr = x + r * K + 4 * g;
      a0[r] = _mm256_fmadd_ps(v0, select8(xr, i0), a0[r]);
      a1[r] = _mm256_fmadd_ps(v1, select8(xr + 16, i1), a1[r]);
    }
  }
  for (; g + 4 <= G; g += 4) {
    const __m256i i0 = chunk_indices((mrow[g / 8] >> (4 * (g % 8))) & 0xffffu);
    const __m256 v0 = load_values8(vdtype, vrow + 2 * g * es);
    for (int r = 0; r < MR; ++r) a0[r] = _mm256_fmadd_ps(v0, select8(x + r * K + 4 * g, i0), a0[r]);
  }
  for (int r = 0; r < MR; ++r) acc[r] = hsum(_mm256_add_ps(a0[r], a1[r]));
  return g;
}
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
int64_t dot_simd(int vdtype, int mr, const float* x, int64_t K, const char* vrow, const uint32_t* mrow, int64_t G,
                 float* acc) {
  switch (mr) {
    case 1: return dot_rows<1>(vdtype, x, K, vrow, mrow, G, acc);
    case 2: return dot_rows<2>(vdtype, x, K, vrow, mrow, G, acc);
    case 3: return dot_rows<3>(vdtype, x, K, vrow, mrow, G, acc);
    default: return dot_rows<4>(vdtype, x, K, vrow, mrow, G, acc);
  }
}
#endif

}  // namespace

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
      for (int64_t n = nb; n < nb1; ++n) {
        const char* vrow = static_cast<const char*>(values) + size_t(n * vstride) * es;
        const uint32_t* mrow = reinterpret_cast<const uint32_t*>(meta + n * MW);
        float acc[kRows] = {0.f, 0.f, 0.f, 0.f};
        int64_t g = 0;
#if defined(__AVX512F__) || defined(__AVX2__)
        g = dot_simd(vdtype, mr, xb, K, vrow, mrow, G, acc);
#endif
        groups_scalar(xb, K, mr, vdtype, vrow, mrow, g, G, acc);
        for (int r = 0; r < mr; ++r) y[(m0 + r) * N + n] = acc[r];
      }
    }
  }
}

}  // namespace llmk::cpu::LLMK_ISA_NS
