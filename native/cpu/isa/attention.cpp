// FlashAttention kernels on the CPU, compiled once per ISA (see CMakeLists). Query rows
// (pre-scaled by scale·log2 e, so every exponential is an exp2) stream over tiles of
// keys with an online softmax: running max m and sum l per row in f32, the f32 output
// accumulator rescaled by 2^(m_old − m_new) when the max grows, one division by l at
// the end. Nothing of size rows × keys beyond one tile ever exists.
//   attend_rows (prefill): a block of query rows of one kv head; f16/bf16 tiles of
//     kAttnTileKeys keys are converted to f32 once per tile and shared by all rows
//     (every q head of a GQA group). With bf16 inputs on AVX512-BF16 both products
//     run on VDPBF16PS instead (twice the multiply-adds per instruction; see below).
//   attend_decode (paged flash-decoding): one query per row, every kv head of a token;
//     K and V are read in place and converted in registers (see below).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu/attention.h"
#include "cpu/isa/convert_simd.h"
#include "cpu/isa/vec_simd.h"

namespace llmk::cpu::LLMK_ISA_NS {

namespace {

constexpr int kBc = kAttnTileKeys;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Output-accumulator vectors per register block: 4 rows × kC vectors + kC V loads
// fit the register file (32 zmm; 16 ymm/xmm).
constexpr int kC = W == 16 ? 4 : 2;

// Scores with the rows as vector lanes, ST[j][r] = q_r · k_j: Q is kept transposed
// (QT[d][r], built once per task) and each K element is broadcast, so a block of RB
// row vectors × J keys is RB·J accumulators fed by RB loads and J broadcasts per d —
// the GEMM micro-kernel's outer product, with no horizontal sums. Register budget:
// AVX-512 4 × 6 (+ 4 + 1 of 32 zmm); 16-register ISAs 2 × 6 (+ 2 + 1 of 16: 2 × 4
// left each FMA chain one step from latency-bound; on Zen 3, 2 × 6 with 6-row P·V
// blocks took S = 2048 f16 prefill from 61–65 to 67–71 GFLOP/s a core).
constexpr int kRB = W == 16 ? 4 : 2;
inline float* st_at(float* st, size_t ldq, int j, int rv) { return st + size_t(j) * ldq + size_t(rv) * W; }
constexpr int kJ = 6;

template <int J, int RB>
inline void qkt_tile(const float* qt, size_t ldq, const float* k, size_t ks, int D, int j, int rv, float* out) {
  vf acc[J][RB];
  for (int jj = 0; jj < J; ++jj)
    for (int b = 0; b < RB; ++b) acc[jj][b] = vf{};
  const float* kj = k + size_t(j) * ks;
  for (int d = 0; d < D; ++d) {
    vf qv[RB];
    for (int b = 0; b < RB; ++b) qv[b] = ld(qt + size_t(d) * ldq + size_t(rv + b) * W);
    for (int jj = 0; jj < J; ++jj) {
      const vf kb = splat(kj[size_t(jj) * ks + d]);
      for (int b = 0; b < RB; ++b) acc[jj][b] += kb * qv[b];
    }
  }
  for (int jj = 0; jj < J; ++jj)
    for (int b = 0; b < RB; ++b) st(st_at(out, ldq, j + jj, rv + b), acc[jj][b]);
}

// ST[0 : n][0 : nv·W] for nv row vectors.
template <int RB>
inline void qkt_rows(const float* qt, size_t ldq, const float* k, size_t ks, int D, int n, int rv, float* out) {
  int j = 0;
  for (; j + kJ <= n; j += kJ) qkt_tile<kJ, RB>(qt, ldq, k, ks, D, j, rv, out);
  // The rest of a 64-key tile (64 = 10·6 + 4) in one blocked tile, not key by key.
  for (; j + 4 <= n; j += 4) qkt_tile<4, RB>(qt, ldq, k, ks, D, j, rv, out);
  for (; j < n; ++j) qkt_tile<1, RB>(qt, ldq, k, ks, D, j, rv, out);
}
inline void qkt_block(const float* qt, size_t ldq, const float* k, size_t ks, int D, int n, int nv, float* out) {
  int rv = 0;
  for (; rv + kRB <= nv; rv += kRB) qkt_rows<kRB>(qt, ldq, k, ks, D, n, rv, out);
  for (; rv < nv; ++rv) qkt_rows<1>(qt, ldq, k, ks, D, n, rv, out);
}

// O[r][d0 : d0 + C·W] = alpha_r · O + Σ_j P[r][j] · V[j][...] for R rows, C vectors;
// P[r][j] = p[r·rs + j·js] (the prefill kernels keep P transposed: rs = 1).
template <int R, int C>
inline void pv_block(const float* p, size_t rs, size_t js, const float* alpha, const float* v, size_t vs, int n, int dp,
                     int d0, float* o) {
  vf acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = ld(o + size_t(r) * dp + d0 + c * W) * alpha[r];
  for (int j = 0; j < n; ++j) {
    const float* vj = v + size_t(j) * vs + d0;
    vf vv[C];
    for (int c = 0; c < C; ++c) vv[c] = ld(vj + c * W);
    for (int r = 0; r < R; ++r) {
      const vf pr = splat(p[size_t(r) * rs + size_t(j) * js]);
      for (int c = 0; c < C; ++c) acc[r][c] += pr * vv[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) st(o + size_t(r) * dp + d0 + c * W, acc[r][c]);
}

// Calls f(integral_constant<R>, r) for the register blocks of M rows: on W = 8, 6-row
// blocks (12 accumulators), as many as leave a multiple of 4 rows after them where
// that takes at most two fewer (M = 128: 20 × 6 + 2 × 4); then 4-row blocks, then
// single rows.
template <class F>
inline void for_row_blocks(int M, F&& f) {
  int r = 0;
  if constexpr (W == 8) {
    int n6 = M / 6;
    for (int i = 0; i < 2 && n6 > 0 && (M - 6 * n6) % 4 != 0; ++i) --n6;
    for (; r < 6 * n6; r += 6) f(std::integral_constant<int, 6>{}, r);
  }
  for (; r + 4 <= M; r += 4) f(std::integral_constant<int, 4>{}, r);
  for (; r < M; ++r) f(std::integral_constant<int, 1>{}, r);
}
// f(integral_constant<C>, d0) for the column blocks of dp: kC vectors wide, then one.
template <class F>
inline void for_column_blocks(int dp, F&& f) {
  int d0 = 0;
  for (; d0 + kC * W <= dp; d0 += kC * W) f(std::integral_constant<int, kC>{}, d0);
  for (; d0 < dp; d0 += W) f(std::integral_constant<int, 1>{}, d0);
}
// All M rows of O. For one tile (n ≤ kBc keys) the column blocks go outside: one
// column block's slice of V (n lines) stays in L1 while every row block's P streams
// past it, where rows outside streamed the whole V tile from L2 once per row block
// (M = 128, D = 128: 22 tiles' worth of V against 8 of P; Zen 3, one thread, S = 2048
// f16 flash prefill 3-6% faster). For the whole key range of the naive kernel P is
// megabytes, so there the rows stay outside.
inline void pv_all(const float* p, size_t rs, size_t js, const float* alpha, const float* v, size_t vs, int n, int dp,
                   int M, float* o) {
  const auto block = [&](auto R, int r, auto C, int d0) {
    pv_block<decltype(R)::value, decltype(C)::value>(p + size_t(r) * rs, rs, js, alpha + r, v, vs, n, dp, d0,
                                                     o + size_t(r) * dp);
  };
  if (n <= kBc)
    for_column_blocks(dp, [&](auto C, int d0) { for_row_blocks(M, [&](auto R, int r) { block(R, r, C, d0); }); });
  else
    for_row_blocks(M, [&](auto R, int r) { for_column_blocks(dp, [&](auto C, int d0) { block(R, r, C, d0); }); });
}

// Loads token rows [j0, j0 + n) of one kv head as f32, rows ld floats apart (columns
// D to the next multiple of W zero: what the kernels read).
// Successive rows lie Hkv·D elements apart, which the hardware prefetcher does not
// follow: rows kPrefetch ahead (below `limit`) are prefetched.
constexpr int kPrefetch = 8;
inline void prefetch_row(const KvRows& src, int64_t j, int64_t limit, int row_bytes) {
  if (j >= limit) return;
  const char* p = src.row(j);
  for (int b = 0; b < row_bytes; b += 64) __builtin_prefetch(p + b);
}
inline void load_tile(int dtype, const KvRows& src, int64_t j0, int n, int D, int ld, float* dst, int64_t limit) {
  const int es = dtype == 0 ? 4 : 2;
  for (int j = 0; j < n; ++j) {
    prefetch_row(src, j0 + j + kPrefetch, limit, D * es);
    float* row = dst + size_t(j) * ld;
    load_f32_n(dtype, src.row(j0 + j), row, D);
    for (int d = D; d < (D + W - 1) / W * W; ++d) row[d] = 0;
  }
}

#if defined(__AVX512BF16__)
// ---- Prefill with bf16 inputs on AVX512-BF16 ------------------------------------------
// VDPBF16PS multiplies pairs of bf16 and adds both products into one f32 lane: 32
// multiply-adds per instruction where an f32 FMA does 16, and K and V need no widening.
// Both products are laid out in pairs along the dimension they reduce: Q as QT2[d/2][r]
// (lane r holds elements d, d+1 of row r), each K pair broadcast straight from its bf16
// row; P as PT2[j/2][r] and V as V2[j/2][d] (lane d holds rows j, j+1 of V). P is
// rounded to bf16, as tensor-core FlashAttention feeds it to its second product (l sums
// the f32 values: see softmax_tile_t). Q keeps its input bits (a bf16 rounding of
// q·scale would lose precision); the scores are scaled as they leave the registers.
inline __m512 dpbf(__m512 acc, __m512i a, __m512i b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
inline uint32_t ld_u32(const void* p) {
  uint32_t x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline __m512i ld_pairs(const uint32_t* p) { return _mm512_loadu_si512(p); }

// QT2[d2][r] = bf16 elements 2·d2, 2·d2 + 1 of q row r, d2 < D/2, rows M…ldq zero.
// m and l of the padding rows as transpose_q sets them.
inline void transpose_q_bf16(const AttnRowsJob& a, int M, uint32_t* qt2, size_t ldq, float* m, float* l) {
  const int D2 = a.D / 2;
  for (int r = 0; r < M; ++r)
    for (int d2 = 0; d2 < D2; ++d2) qt2[size_t(d2) * ldq + r] = ld_u32(a.q[r] + 4 * d2);
  for (int d2 = 0; d2 < D2; ++d2)
    for (size_t r = size_t(M); r < ldq; ++r) qt2[size_t(d2) * ldq + r] = 0;
  for (size_t r = size_t(M); r < ldq; ++r) {
    m[r] = kNegInf;
    l[r] = 0;
  }
}

// Token rows [j0, j0 + n) of one kv head as bf16 rows dp apart (K; only d < D is read).
inline void load_tile_bf16(const KvRows& src, int64_t j0, int n, int D, int dp, uint16_t* dst, int64_t limit) {
  for (int j = 0; j < n; ++j) {
    prefetch_row(src, j0 + j + kPrefetch, limit, D * 2);
    std::memcpy(dst + size_t(j) * dp, src.row(j0 + j), size_t(D) * 2);
  }
}

// V2[j2][d] = (V[j0 + 2·j2][d], V[j0 + 2·j2 + 1][d]) for 2·j2 < n, d < dp: a missing odd
// row and the columns from D on are zero.
inline void load_v2_bf16(const KvRows& src, int64_t j0, int n, int D, int dp, uint32_t* dst, int64_t limit) {
  const __m512i zero = _mm512_setzero_si512();
  for (int j = 0; j < n; j += 2) {
    prefetch_row(src, j0 + j + kPrefetch, limit, D * 2);
    prefetch_row(src, j0 + j + 1 + kPrefetch, limit, D * 2);
    const auto* lo = reinterpret_cast<const uint16_t*>(src.row(j0 + j));
    const auto* hi = j + 1 < n ? reinterpret_cast<const uint16_t*>(src.row(j0 + j + 1)) : nullptr;
    uint32_t* out = dst + size_t(j / 2) * dp;
    for (int d = 0; d < dp; d += 16) {
      const __mmask16 mk = d + 16 <= D ? __mmask16(0xffff) : d < D ? __mmask16((1u << (D - d)) - 1) : __mmask16(0);
      const __m512i l = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, lo + d));
      const __m512i h = hi ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, hi + d)) : zero;
      _mm512_storeu_si512(out + d, _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
    }
  }
}

// ST[j][rv·16 …] = sc · (q_r · k_j) for a block of J keys × RB row vectors.
template <int J, int RB>
inline void qkt_tile_bf16(const uint32_t* qt2, size_t ldq, const uint16_t* k, size_t ks, int D2, int j, int rv,
                          float sc, float* out) {
  __m512 acc[J][RB];
  for (int jj = 0; jj < J; ++jj)
    for (int b = 0; b < RB; ++b) acc[jj][b] = _mm512_setzero_ps();
  const uint16_t* kj = k + size_t(j) * ks;
  for (int d2 = 0; d2 < D2; ++d2) {
    __m512i qv[RB];
    for (int b = 0; b < RB; ++b) qv[b] = ld_pairs(qt2 + size_t(d2) * ldq + size_t(rv + b) * W);
    for (int jj = 0; jj < J; ++jj) {
      const __m512i kb = _mm512_set1_epi32(int(ld_u32(kj + size_t(jj) * ks + 2 * d2)));
      for (int b = 0; b < RB; ++b) acc[jj][b] = dpbf(acc[jj][b], qv[b], kb);
    }
  }
  for (int jj = 0; jj < J; ++jj)
    for (int b = 0; b < RB; ++b) st(st_at(out, ldq, j + jj, rv + b), acc[jj][b] * splat(sc));
}
template <int RB>
inline void qkt_rows_bf16(const uint32_t* qt2, size_t ldq, const uint16_t* k, size_t ks, int D2, int n, int rv,
                          float sc, float* out) {
  int j = 0;
  for (; j + kJ <= n; j += kJ) qkt_tile_bf16<kJ, RB>(qt2, ldq, k, ks, D2, j, rv, sc, out);
  for (; j + 4 <= n; j += 4) qkt_tile_bf16<4, RB>(qt2, ldq, k, ks, D2, j, rv, sc, out);
  for (; j < n; ++j) qkt_tile_bf16<1, RB>(qt2, ldq, k, ks, D2, j, rv, sc, out);
}
inline void qkt_block_bf16(const uint32_t* qt2, size_t ldq, const uint16_t* k, size_t ks, int D2, int n, int nv,
                           float sc, float* out) {
  int rv = 0;
  for (; rv + kRB <= nv; rv += kRB) qkt_rows_bf16<kRB>(qt2, ldq, k, ks, D2, n, rv, sc, out);
  for (; rv < nv; ++rv) qkt_rows_bf16<1>(qt2, ldq, k, ks, D2, n, rv, sc, out);
}

// O[r][d0 : d0 + C·16] = alpha_r · O + Σ_j P[r][j] · V[j][…] over pairs of keys, P as
// PT2 (p2[j2·ldq + r]) and V as V2.
template <int R, int C>
inline void pv_block_bf16(const uint32_t* p2, size_t ldq, const float* alpha, const uint32_t* v2, int n2, int dp,
                          int d0, float* o) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = ld(o + size_t(r) * dp + d0 + c * W) * alpha[r];
  for (int j2 = 0; j2 < n2; ++j2) {
    __m512i vv[C];
    for (int c = 0; c < C; ++c) vv[c] = ld_pairs(v2 + size_t(j2) * dp + d0 + c * W);
    for (int r = 0; r < R; ++r) {
      const __m512i pr = _mm512_set1_epi32(int(p2[size_t(j2) * ldq + r]));
      for (int c = 0; c < C; ++c) acc[r][c] = dpbf(acc[r][c], pr, vv[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) st(o + size_t(r) * dp + d0 + c * W, acc[r][c]);
}
template <int R>
inline void pv_rows_bf16(const uint32_t* p2, size_t ldq, const float* alpha, const uint32_t* v2, int n2, int dp,
                         float* o) {
  int d0 = 0;
  for (; d0 + kC * W <= dp; d0 += kC * W) pv_block_bf16<R, kC>(p2, ldq, alpha, v2, n2, dp, d0, o);
  for (; d0 < dp; d0 += W) pv_block_bf16<R, 1>(p2, ldq, alpha, v2, n2, dp, d0, o);
}
inline void pv_all_bf16(const uint32_t* p2, size_t ldq, const float* alpha, const uint32_t* v2, int n2, int dp, int M,
                        float* o) {
  int r = 0;
  for (; r + 4 <= M; r += 4) pv_rows_bf16<4>(p2 + r, ldq, alpha + r, v2, n2, dp, o + size_t(r) * dp);
  for (; r < M; ++r) pv_rows_bf16<1>(p2 + r, ldq, alpha + r, v2, n2, dp, o + size_t(r) * dp);
}
#endif  // __AVX512BF16__

// Consecutive regions of a kernel's f32 scratch.
struct Carve {
  float* p;
  float* take(size_t n) {
    float* r = p;
    p += n;
    return r;
  }
};

// Row setup shared by the kernels: Q rows converted and pre-scaled (zero padding to
// dp; skipped when Q is null: the bf16 kernels read q raw), O = 0, m = −inf, l = 0.
// Returns the largest last_key (tiles past it are skipped).
inline int64_t init_rows(const AttnRowsJob& a, int dp, float* Q, float* O, float* m, float* l, int64_t* lim_min) {
  int64_t lim_max = -1;
  *lim_min = std::numeric_limits<int64_t>::max();
  for (int r = 0; r < a.rows; ++r) {
    if (Q) {
      float* qr = Q + size_t(r) * dp;
      load_f32_n(a.dtype, a.q[r], qr, a.D);
      for (int d = 0; d < a.D; ++d) qr[d] *= a.scale_log2;
      for (int d = a.D; d < dp; ++d) qr[d] = 0;
    }
    std::memset(O + size_t(r) * dp, 0, sizeof(float) * dp);
    m[r] = kNegInf;
    l[r] = 0;
    lim_max = a.last_key[r] > lim_max ? a.last_key[r] : lim_max;
    *lim_min = a.last_key[r] < *lim_min ? a.last_key[r] : *lim_min;
  }
  return lim_max;
}

// The online-softmax step of one row over one tile of scores s[0, nw): keys from
// `visible` on are masked, the running max m and sum l are updated, s becomes
// P = 2^(s − m_new), and the factor 2^(m_old − m_new) that rescales O is returned.
inline float softmax_tile(float* s, int visible, int nw, float& m, float& l) {
  for (int j = visible; j < nw; ++j) s[j] = kNegInf;
  vf mx = splat(kNegInf);
  for (int j = 0; j < nw; j += W) {
    const vf x = ld(s + j);
    mx = x > mx ? x : mx;
  }
  const float tile_max = hmax(mx), m_new = tile_max > m ? tile_max : m;
  if (m_new == kNegInf) {  // nothing visible yet: P = 0, O and l stay 0
    std::memset(s, 0, sizeof(float) * nw);
    return 1;
  }
  const float alpha = std::exp2(m - m_new);
  vf sum = vf{};
  for (int j = 0; j < nw; j += W) {
    const vf p = exp2v(ld(s + j) - m_new);
    st(s + j, p);
    sum += p;
  }
  l = l * alpha + hsum(sum);
  m = m_new;
  return alpha;
}

// Normalizes O by l, writes each row to its output and its base-2 LSE.
inline void finish_rows(const AttnRowsJob& a, int dp, float* O, const float* m, const float* l) {
  for (int r = 0; r < a.rows; ++r) {
    float* o = O + size_t(r) * dp;
    const float inv = l[r] > 0 ? 1.f / l[r] : 0.f;
    for (int d = 0; d < a.D; ++d) o[d] *= inv;
    a.lse2[r] = l[r] > 0 ? m[r] + std::log2(l[r]) : kNegInf;
    store_f32_n(a.out_dtype, o, a.out[r], a.D);
  }
}

inline vi ld_i(const int32_t* p) {
  vi v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The P of the bf16 kernels, from scaled scores minus the running max (≤ 0, or −inf):
// 2^x with a degree-5 fit of 2^f on [−0.5, 0.5] (relative error 2.4e-7 in f32 — P is
// rounded to bf16 and l needs f32 accuracy only to ~1e-6) where exp2v spends degree 7
// and an upper clamp; −inf (x ≤ −127) gives exactly 0.
inline vf exp2v_nonpos(vf x) {
  x = x < -127.f ? splat(-127.f) : x;
  const vf r = (x + 12582912.f) - 12582912.f;
  const vf f = x - r;
  vf p = splat(0.001327646430581808f);
  p = p * f + 0.009675540961325169f;
  p = p * f + 0.05550713464617729f;
  p = p * f + 0.24022120237350464f;
  p = p * f + 0.6931469440460205f;
  p = p * f + 1.0000001192092896f;
  const vi bits = (__builtin_convertvector(r, vi) + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// P of two keys (p0 the earlier) as bf16 pairs, rounded to nearest even: p0 in the low
// half of each 32-bit lane, p1 in the high half — VDPBF16PS's operand order. Stored in
// f32 slots of the scores buffer.
#if defined(__AVX512BF16__)
template <int = 0>
inline vf pack_p(vf p0, vf p1) {
  // VCVTNE2PS2BF16 puts p0's 16 values in the low half and p1's in the high half;
  // VPERMW interleaves them into (p0[i], p1[i]) pairs.
  alignas(64) static constexpr int16_t kIdx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(p1, p0);
  return (vf)_mm512_permutexvar_epi16(_mm512_load_si512(kIdx), both);
}
#else
template <int = 0>
vf pack_p(vf p0, vf p1);  // declared only (a template: no unused warning); only AVX512-BF16 packs P
#endif

// QT[d][r] = Q[r][d] for d < D (rows M…ldq zero, with m = −inf and l = 0 there, so the
// padding lanes of the transposed kernels compute harmless values that are never stored).
inline void transpose_q(const float* Q, int M, int dp, int D, float* qt, size_t ldq, float* m, float* l) {
  for (int d = 0; d < D; ++d) {
    float* row = qt + size_t(d) * ldq;
    for (int r = 0; r < M; ++r) row[r] = Q[size_t(r) * dp + d];
    for (size_t r = size_t(M); r < ldq; ++r) row[r] = 0;
  }
  for (size_t r = size_t(M); r < ldq; ++r) {
    m[r] = kNegInf;
    l[r] = 0;
  }
}

// lim[r] = the last key of [j0, j0 + n) row r sees, relative to j0 (−1: none; padding
// rows see all).
inline void key_limits(const AttnRowsJob& a, int M, int64_t j0, int n, size_t ldq, int32_t* lim) {
  for (int r = 0; r < M; ++r) {
    const int64_t v = a.last_key[r] - j0;
    lim[r] = int32_t(v < -1 ? -1 : v > n ? n : v);
  }
  for (size_t r = size_t(M); r < ldq; ++r) lim[r] = n;
}

// The online-softmax step of W rows at once (lanes rv·W…): scores ST[j][·] of keys
// j < n, keys past lim[r] masked (lim null: none), m and l updated, ST becomes
// P = 2^(s − m_new) and alpha = 2^(m_old − m_new). Rows with nothing visible yet keep
// P = 0 (their reference max is taken as 0, not −inf). Pack (the bf16 kernels): P is
// stored rounded to bf16, as pairs, keys j, j + 1 in row j / 2 (see pack_p); l sums
// the f32 values, as tensor-core FlashAttention does (the LSE stays f32-accurate).
template <bool Pack = false>
inline void softmax_tile_t(float* st_, size_t ldq, int n, int rv, const int32_t* lim, float* m, float* l, float* alpha) {
  const size_t off = size_t(rv) * W;
  const vf neg = splat(kNegInf), mo = ld(m + off);
  vf mx = neg;
  if (lim) {
    const vi lv = ld_i(lim + off);
    for (int j = 0; j < n; ++j) {
      float* x = st_ + size_t(j) * ldq + off;
      const vf v = (vi{} + j) > lv ? neg : ld(x);
      st(x, v);
      mx = v > mx ? v : mx;
    }
  } else {
    for (int j = 0; j < n; ++j) {
      const vf v = ld(st_ + size_t(j) * ldq + off);
      mx = v > mx ? v : mx;
    }
  }
  const vf mn = mx > mo ? mx : mo, ref = mn == neg ? vf{} : mn;
  const vf al = exp2v(mo - ref);
  vf sum = vf{};
  if constexpr (Pack) {
    // Row j / 2 is written after rows j and j + 1 are read, and every row below j was
    // read by an earlier pair: the packing runs in place.
    for (int j = 0; j < n; j += 2) {
      const vf p0 = exp2v_nonpos(ld(st_ + size_t(j) * ldq + off) - ref);
      const vf p1 = j + 1 < n ? exp2v_nonpos(ld(st_ + size_t(j + 1) * ldq + off) - ref) : vf{};
      sum += p0 + p1;
      st(st_ + size_t(j / 2) * ldq + off, pack_p(p0, p1));
    }
  } else {
    for (int j = 0; j < n; ++j) {
      float* x = st_ + size_t(j) * ldq + off;
      const vf p = exp2v(ld(x) - ref);
      st(x, p);
      sum += p;
    }
  }
  st(l + off, ld(l + off) * al + sum);
  st(m + off, mn);
  st(alpha + off, al);
}

// ---- Flash-decoding: one query per row, K/V read straight from the cache --------------
// Decode is memory-bound (every K/V byte is used by the G = rows/heads q heads of its
// kv head and never again), so nothing is staged: each vector of a K or V row is
// converted from f16/bf16 in registers as it is loaded.
//
// Keys go in steps of kDecStep, each step doing every kv head: a row group (R = 4, 2 or
// 1 rows of one kv head, whichever divides G) takes blocks of KB = W/R keys; a block's
// R·KB dot products accumulate in W vectors (each K vector converted once for R rows)
// and one transpose-add tree (sum_lanes) sums them into one vector, lane r·KB + k =
// q_r · k_k. The online softmax runs on those vectors: masking by compare, per-row max
// and sum by butterflies within KB-lane groups, m and l kept as vectors (each row's
// value in its KB lanes), and the 2^(m_old − m_new) rescale of O and l only in the
// steps where some row's max grows. P · V then accumulates the group's O rows.
//
// Memory order. A step's token rows (Hkv·D elements each, K and V) are prefetched one
// step ahead, line by line in address order, a share per row group. The walk over one
// step is head-major (strided by the row length), so what the core streams from DRAM
// is that sequential prefetch. Measured (Zen 5 VM, 2 threads, Hkv = 8, D = 128 f16,
// beyond L3: Sk = 32768, in-process A/B): 8-key steps 3.4 ms (39.5 GB/s) against
// 5.0 ms (27) for the kernel before, which walked 32-key tiles head by head and
// prefetched each head's segments 16 keys ahead. A load-only model of the patterns
// agrees: steps of 4–8 tokens with a sequential one-step-ahead prefetch read as fast as
// a plain sequential sweep, 16–32-token steps or every-other-line prefetches 25–35%
// slower; prefetching whole rows in bursts (64 lines at once) lost it all (5.1 ms).
// In cache (Sk = 2048, L3) the small steps cost ~10% more per key than 32-key tiles.
constexpr int kDecStep = 8;
constexpr float kDecSlack = 8;

// W elements of dtype DT (0 f32, 1 f16, 2 bf16) at p as f32; ldx_half: the first W/2
// (AVX-512 only, where D may be an odd multiple of 8), the rest zero.
template <int DT>
inline vf ldx(const char* p) {
  if constexpr (DT == 0) {
    return ld(reinterpret_cast<const float*>(p));
  } else {
#if defined(__AVX512F__)
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (DT == 1) return _mm512_cvtph_ps(h);
    else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
#elif defined(__AVX2__)
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (DT == 1) return _mm256_cvtph_ps(h);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
#else
    alignas(64) float t[W];
    load_f32_n(DT, p, t, W);
    return ld(t);
#endif
  }
}
#if defined(__AVX512F__)
template <int DT>
inline vf ldx_half(const char* p) {
  if constexpr (DT == 0) return _mm512_maskz_loadu_ps(0xff, p);
  const __m256i h = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if constexpr (DT == 1) return _mm512_cvtph_ps(h);
  else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#else
template <int DT>
inline vf ldx_half(const char*) { return vf{}; }  // D is a multiple of W: never called
#endif

// GCC folds a vector used by several FMAs into each of them as a memory operand, loading
// it once per use; keep_in_register makes it one load. On Zen 3 (AVX2: two loads a
// cycle, two FMAs) qk_block's chunk of 2 K conversions and 8 FMAs then issues in 4
// cycles instead of 5 (10 loads); measured in isolation 1.63 -> 1.30 ns a chunk.
inline void keep_in_register(vf& v) {
#if !defined(__AVX512F__)
  __asm__("" : "+x"(v));
#else
  (void)v;  // unmeasured on AVX-512 hardware: left to the compiler
#endif
}

template <int DT, int R>
inline vf qk_block(const float* q, int dp, const char* const* kr, size_t hoff, int nfull, bool half) {
  constexpr int KB = W / R;
  constexpr size_t es = DT == 0 ? 4 : 2;
  vf acc[W];
  for (int i = 0; i < W; ++i) acc[i] = vf{};
  for (int c = 0; c < nfull; ++c) {
    vf kv[KB];
    for (int k = 0; k < KB; ++k) kv[k] = ldx<DT>(kr[k] + hoff + size_t(c) * W * es);
    for (int r = 0; r < R; ++r) {
      vf qv = ld(q + size_t(r) * dp + c * W);
      keep_in_register(qv);
      for (int k = 0; k < KB; ++k) acc[r * KB + k] += qv * kv[k];
    }
  }
  if (half) {
    vf kv[KB];
    for (int k = 0; k < KB; ++k) kv[k] = ldx_half<DT>(kr[k] + hoff + size_t(nfull) * W * es);
    for (int r = 0; r < R; ++r) {
      const vf qv = ld(q + size_t(r) * dp + nfull * W);
      for (int k = 0; k < KB; ++k) acc[r * KB + k] += qv * kv[k];
    }
  }
  return sum_lanes(acc);
}

// O[r][c0·W : (c0 + C)·W] = alpha_r · O + Σ_j P[r][j] · V[j][…] for the R rows of a
// group; P in block layout (p[(j / KB)·W + r·KB + j % KB]).
template <int DT, int R, int C, bool Scale, bool Half = false>
inline void pv_group(const float* p, const float* alpha, const char* const* vr, size_t hoff, int n, int dp, int c0,
                     float* o) {
  constexpr int KB = W / R;
  constexpr size_t es = DT == 0 ? 4 : 2;
  vf acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      acc[r][c] = ld(o + size_t(r) * dp + (c0 + c) * W);
      if constexpr (Scale) acc[r][c] *= alpha[r * KB];
    }
  for (int j0 = 0; j0 < n; j0 += KB, p += W)
    for (int k = 0, kn = n - j0 < KB ? n - j0 : KB; k < kn; ++k) {
      const char* vj = vr[j0 + k] + hoff + size_t(c0) * W * es;
      vf vv[C];
      for (int c = 0; c < C; ++c) vv[c] = Half ? ldx_half<DT>(vj) : ldx<DT>(vj + size_t(c) * W * es);
      for (int r = 0; r < R; ++r) {
        const vf pr = splat(p[r * KB + k]);
        for (int c = 0; c < C; ++c) acc[r][c] += pr * vv[c];
      }
    }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) st(o + size_t(r) * dp + (c0 + c) * W, acc[r][c]);
}

template <int DT, int R, int C, bool Scale>
inline void pv_rows_group(const float* p, const float* alpha, const char* const* vr, size_t hoff, int n, int dp,
                          int nfull, bool half, float* o) {
  int c = 0;
  for (; c + C <= nfull; c += C) pv_group<DT, R, C, Scale>(p, alpha, vr, hoff, n, dp, c, o);
  for (; c < nfull; ++c) pv_group<DT, R, 1, Scale>(p, alpha, vr, hoff, n, dp, c, o);
  if (half) pv_group<DT, R, 1, Scale, true>(p, alpha, vr, hoff, n, dp, nfull, o);
}

#if defined(__AVX512BF16__)
// ---- bf16 decode: q·k on VDPBF16PS -----------------------------------------------------
// With a bf16 cache the scores run on VDPBF16PS: a K row's chunk of 32 elements is one
// operand just as it lies in memory (no widening, half the instructions of the f32
// FMAs), q stays raw bf16 (Qb, rows dq apart, zero-padded to a multiple of 32) and the
// scores are scaled after the lane tree. The products are exact in f32, so the scores
// are as accurate as the f32 path's. P·V stays on f32 FMAs (a bf16 P·V over key pairs
// was tried: it missed the error rule in the rising-scores test, 2.06× the naive error
// where the prefill kernel's bf16 P stays within 1.06×; not pursued).
inline __mmask32 tail_mask32(int rem) { return rem >= 32 ? ~__mmask32(0) : (__mmask32(1) << rem) - 1; }

template <int R>
inline vf qk_block_bf16(const uint16_t* qb, int dq, const char* const* kr, size_t hoff, int D, float sc) {
  constexpr int KB = W / R;
  vf acc[W];
  for (int i = 0; i < W; ++i) acc[i] = vf{};
  for (int d = 0; d < D; d += 32) {
    const __mmask32 mk = tail_mask32(D - d);
    __m512i kv[KB];
    for (int k = 0; k < KB; ++k) kv[k] = _mm512_maskz_loadu_epi16(mk, kr[k] + hoff + size_t(d) * 2);
    for (int r = 0; r < R; ++r) {
      const __m512i qv = _mm512_loadu_si512(qb + size_t(r) * dq + d);
      for (int k = 0; k < KB; ++k) acc[r * KB + k] = dpbf(acc[r * KB + k], qv, kv[k]);
    }
  }
  return sum_lanes(acc) * splat(sc);
}

#endif  // __AVX512BF16__

// Prefetches lines [l0, l1) of the K and V rows k[0..), v[0..) (consecutive tokens,
// row_lines lines each), in address order.
__attribute__((always_inline)) inline void prefetch_lines(const char* const* k, const char* const* v, int l0, int l1,
                                                          int row_lines) {
  while (l0 < l1) {
    const int t = l0 / row_lines, first = l0 - t * row_lines;
    const int last = l1 - t * row_lines < row_lines ? l1 - t * row_lines : row_lines;
    const char* kt = k[t];
    const char* vt = v[t];
    for (int i = first; i < last; ++i) {
      __builtin_prefetch(kt + i * 64);
      __builtin_prefetch(vt + i * 64);
    }
    l0 += last - first;
  }
}

template <int DT, int R>
void attend_decode_r(const AttnRowsJob& a, float* scratch) {
  constexpr int KB = W / R;
  // Keys per online-softmax step: kDecStep (32 KB of f16 K and V rows at Hkv·D = 1024,
  // in L1 while every head uses them), or one block when a block is wider.
  constexpr int S = KB > kDecStep ? KB : kDecStep, NB = S / KB;
  // Output vectors per PV pass: R·C accumulators + C V vectors fit the register file.
  constexpr int C = (W == 16 ? 16 : 8) / R > 8 ? 8 : (W == 16 ? 16 : 8) / R;
  constexpr size_t es = DT == 0 ? 4 : 2;
#if defined(__AVX512BF16__)
  constexpr bool kDot = DT == 2;  // the VDPBF16PS products (see qk_block_bf16)
#else
  constexpr bool kDot = false;
#endif
  const int M = a.rows, D = a.D, dp = (D + W - 1) / W * W, H = a.heads, G = M / H;
  const int nfull = D / W, NG = M / R;
  const bool half = D % W != 0;
  // Row stride of Qb: whole 32-column chunks.
  const int dq = (D + 31) / 32 * 32;
  Carve cv{scratch};  // layout: attn_decode_scratch_floats
  float* Q = cv.take(size_t(M) * dp);
  float* O = cv.take(size_t(M) * dp);
  float* P = cv.take(size_t(NB) * W);
  float* mv = cv.take(size_t(NG) * W);
  float* lv = cv.take(size_t(NG) * W);
  float* alpha = cv.take(W);
  float* m = cv.take(M);
  float* l = cv.take(M);
  int64_t lim_min;
  const int64_t lim_max = init_rows(a, dp, kDot ? nullptr : Q, O, m, l, &lim_min);
  auto* Qb = reinterpret_cast<uint16_t*>(Q);
  if constexpr (kDot)  // raw bf16 q rows, zero-padded to dq (M·dq halves fit in M·dp floats)
    for (int r = 0; r < M; ++r) {
      std::memcpy(Qb + size_t(r) * dq, a.q[r], size_t(D) * 2);
      std::memset(Qb + size_t(r) * dq + D, 0, size_t(dq - D) * 2);
    }
  (void)Qb;
  for (int g = 0; g < NG; ++g) {
    st(mv + size_t(g) * W, splat(kNegInf));
    st(lv + size_t(g) * W, vf{});
  }
  const int64_t k_end = a.k_end < lim_max + 1 ? a.k_end : lim_max + 1;
  // Row pointers of this step's keys and of the next step's.
  const char* kr[2 * S];
  const char* vr[2 * S];
  const int row_lines = H * D * int(es) / 64, units = 4 * NG;
  vi lane_key;  // key of lane r·KB + k within its block: k
  for (int L = 0; L < W; ++L) lane_key[L] = L % KB;
  for (int64_t j0 = a.k_begin; j0 < k_end; j0 += S) {
    const int n = int(k_end - j0 < S ? k_end - j0 : S);
    const int64_t want = j0 + 2 * int64_t(S);
    const int nr = int((want < k_end ? want : k_end) - j0);
    a.k.rows(j0, nr, kr);
    a.v.rows(j0, nr, vr);
    for (int j = nr; j < S; ++j) kr[j] = vr[j] = kr[0];  // unused lanes of a last block (masked)
    // The next step's rows, a share at each of 4 points per row group, in address order
    // (one share per group, 64 prefetches at once, read 1.4x slower from DRAM).
    const int pf_lines = nr > S ? (nr - S) * row_lines : 0;
    int unit = 0;
    auto prefetch_share = [&]() __attribute__((always_inline)) {
      prefetch_lines(kr + S, vr + S, unit * pf_lines / units, (unit + 1) * pf_lines / units, row_lines);
      ++unit;
    };
    const int nb = (n + KB - 1) / KB;
    const bool boundary = j0 + n - 1 > lim_min;
    // Row groups in a software pipeline: the scores of group g + 1 are computed before
    // group g's softmax and P·V, so the dot products of one overlap the other's
    // dependent chain (tree, max, exp2, then the P loads of P·V).
    auto scores = [&](int g, vf* s) {
      const int r0 = g * R;
      const size_t hoff = size_t(r0 / G) * D * es;
#if defined(__AVX512BF16__)
      if constexpr (kDot) {
        for (int b = 0; b < nb; ++b)
          s[b] = qk_block_bf16<R>(Qb + size_t(r0) * dq, dq, kr + b * KB, hoff, D, a.scale_log2);
        return;
      }
#endif
      for (int b = 0; b < nb; ++b) s[b] = qk_block<DT, R>(Q + size_t(r0) * dp, dp, kr + b * KB, hoff, nfull, half);
    };
    vf sc[2][NB];
    scores(0, sc[0]);
    for (int g = 0; g < NG; ++g) {
      const int r0 = g * R;
      const size_t hoff = size_t(r0 / G) * D * es;
      vf* s = sc[g & 1];
      prefetch_share();
      if (g + 1 < NG) scores(g + 1, sc[(g + 1) & 1]);
      prefetch_share();
      // Masking only where needed: each lane's row sees the step's first n keys, or
      // fewer past the row's limit.
      if (n < S || boundary) {
        vi vis;
        for (int r = 0; r < R; ++r) {
          const int64_t v = boundary ? a.last_key[r0 + r] - j0 + 1 : n;
          const int vrow = int(v < 0 ? 0 : v < n ? v : n);
          for (int k = 0; k < KB; ++k) vis[r * KB + k] = vrow;
        }
        for (int b = 0; b < nb; ++b) s[b] = (lane_key + b * KB) < vis ? s[b] : splat(kNegInf);
      }
      vf mx = s[0];
      for (int b = 1; b < nb; ++b) mx = s[b] > mx ? s[b] : mx;
      mx = group_max<KB>(mx);
      const vf mo = ld(mv + size_t(g) * W);
      // The reference max m moves only when some row's max passes it by more than
      // kDecSlack (log2 units): P = 2^(s − m) then stays ≤ 2^kDecSlack, O and l hold
      // the same sums times a constant, and the 2^(m_old − m_new) rescale of O and l
      // is skipped in most steps (FlashAttention-4's conditional rescaling).
      const bool grows = any_lane(mx > mo + kDecSlack);
      const vf mn = grows ? (mx > mo ? mx : mo) : mo;
      const vf ref = mn == splat(kNegInf) ? vf{} : mn;  // nothing visible yet: P = 0
      vf sum = vf{};
      for (int b = 0; b < nb; ++b) {
        const vf pb = exp2v(s[b] - ref);
        st(P + size_t(b) * W, pb);
        sum += pb;
      }
      prefetch_share();
      float* o = O + size_t(r0) * dp;
      if (grows) {
        const vf al = exp2v(mo - ref);
        st(lv + size_t(g) * W, ld(lv + size_t(g) * W) * al + group_sum<KB>(sum));
        st(mv + size_t(g) * W, mn);
        st(alpha, al);
        pv_rows_group<DT, R, C, true>(P, alpha, vr, hoff, n, dp, nfull, half, o);
      } else {
        st(lv + size_t(g) * W, ld(lv + size_t(g) * W) + group_sum<KB>(sum));
        pv_rows_group<DT, R, C, false>(P, alpha, vr, hoff, n, dp, nfull, half, o);
      }
      prefetch_share();
    }
  }
  for (int r = 0; r < M; ++r) {
    m[r] = mv[size_t(r / R) * W + (r % R) * KB];
    l[r] = lv[size_t(r / R) * W + (r % R) * KB];
  }
  finish_rows(a, dp, O, m, l);
}

template <int DT>
void attend_decode_t(const AttnRowsJob& a, float* scratch) {
  const int G = a.rows / a.heads;
  if (G % 4 == 0) attend_decode_r<DT, 4>(a, scratch);
  else if (G % 2 == 0) attend_decode_r<DT, 2>(a, scratch);
  else attend_decode_r<DT, 1>(a, scratch);
}

// Row strides of the prefill kernels' scratch for nv row vectors and head dim D: ldq
// for QT and ST, ts for the K/V tiles, both attn_walk_stride for the f32 kernels. The
// bf16 kernels keep dense ones (untimed: no AVX512-BF16 machine since the change).
struct TileStrides {
  size_t ldq;
  int ts;
};
template <bool Bf16>
inline TileStrides tile_strides(int nv, int D) {
  if constexpr (Bf16) return {size_t(nv) * W, (D + W - 1) / W * W};
  return {size_t(attn_walk_stride(int64_t(nv) * W)), int(attn_walk_stride(D))};
}

// Bf16 (AVX512-BF16 builds only): the VDPBF16PS products above, with bf16 inputs.
template <bool Bf16>
void attend_rows_t(const AttnRowsJob& a, float* scratch) {
  const int M = a.rows, D = a.D, dp = (D + W - 1) / W * W, nv = (M + W - 1) / W;
  const auto [ldq, ts] = tile_strides<Bf16>(nv, D);
  Carve c{scratch};  // layout: attn_scratch_floats
  float* Q = c.take(size_t(M) * dp);
  float* QT = c.take(size_t(dp) * ldq);
  float* O = c.take(size_t(M) * dp);
  float* K = c.take(size_t(kBc) * ts);
  float* V = c.take(size_t(kBc) * ts);
  float* ST = c.take(size_t(kBc) * ldq);
  float* m = c.take(ldq);
  float* l = c.take(ldq);
  float* alpha = c.take(ldq);
  auto* lim = reinterpret_cast<int32_t*>(c.take(ldq));
  int64_t lim_min;
  const int64_t lim_max = init_rows(a, dp, Bf16 ? nullptr : Q, O, m, l, &lim_min);
#if defined(__AVX512BF16__)
  if constexpr (Bf16) transpose_q_bf16(a, M, reinterpret_cast<uint32_t*>(QT), ldq, m, l);
  else
#endif
    transpose_q(Q, M, dp, D, QT, ldq, m, l);
  // Tiles past every row's last visible key are skipped (the causal upper triangle).
  const int64_t k_end = a.k_end < lim_max + 1 ? a.k_end : lim_max + 1;
  for (int64_t j0 = a.k_begin; j0 < k_end; j0 += kBc) {
    const int n = int(k_end - j0 < kBc ? k_end - j0 : kBc);
#if defined(__AVX512BF16__)
    if constexpr (Bf16) {
      auto* Kb = reinterpret_cast<uint16_t*>(K);
      load_tile_bf16(a.k, j0, n, D, dp, Kb, k_end);
      load_v2_bf16(a.v, j0, n, D, dp, reinterpret_cast<uint32_t*>(V), k_end);
      qkt_block_bf16(reinterpret_cast<const uint32_t*>(QT), ldq, Kb, dp, D / 2, n, nv, a.scale_log2, ST);
    } else
#endif
    {
      load_tile(a.dtype, a.k, j0, n, D, ts, K, k_end);
      load_tile(a.dtype, a.v, j0, n, D, ts, V, k_end);
      qkt_block(QT, ldq, K, ts, D, n, nv, ST);
    }
    // Masking only where the tile crosses some row's limit (boundary tiles).
    const bool boundary = j0 + n - 1 > lim_min;
    if (boundary) key_limits(a, M, j0, n, ldq, lim);
    // The next tile's K and V rows are prefetched a share per row vector of the softmax
    // (a tile's rows lie Hkv·D apart, which the hardware prefetchers do not follow; the
    // row-by-row prefetch of load_tile alone left its loads waiting on L3).
    const int64_t pj = j0 + kBc;
    const int pn = pj < k_end ? int(k_end - pj < kBc ? k_end - pj : kBc) : 0;
    const int row_bytes = D * (a.dtype == 0 ? 4 : 2);
    const char* pk[kBc];
    const char* pv[kBc];
    if (pn > 0) {  // one division per run on a paged cache, not one per row
      a.k.rows(pj, pn, pk);
      a.v.rows(pj, pn, pv);
    }
    for (int rv = 0; rv < nv; ++rv) {
      for (int j = rv * pn / nv, e = (rv + 1) * pn / nv; j < e; ++j)
        for (int b = 0; b < row_bytes; b += 64) {
          __builtin_prefetch(pk[j] + b);
          __builtin_prefetch(pv[j] + b);
        }
      softmax_tile_t<Bf16>(ST, ldq, n, rv, boundary ? lim : nullptr, m, l, alpha);
    }
#if defined(__AVX512BF16__)
    if constexpr (Bf16) pv_all_bf16(reinterpret_cast<const uint32_t*>(ST), ldq, alpha, reinterpret_cast<const uint32_t*>(V), (n + 1) / 2, dp, M, O);
    else
#endif
      pv_all(ST, 1, ldq, alpha, V, ts, n, dp, M, O);
  }
  finish_rows(a, dp, O, m, l);
}

// The baseline the benchmark compares against: the same register-blocked kernels, but
// the whole scores block [Sk, rows] is materialized in f32, softmaxed (max, exp and
// sum, divide: three sweeps), then multiplied by V (K and V converted once in full;
// with bf16 inputs on AVX512-BF16, the bf16 products with P rounded to bf16 and the
// divide by l on the output, as the flash kernel does). Contiguous K/V of one kv head. Scratch: see
// attention_naive.
template <bool Bf16>
void attend_rows_naive_t(const AttnRowsJob& a, float* scratch) {
  const int M = a.rows, D = a.D, dp = (D + W - 1) / W * W, nv = (M + W - 1) / W;
  const auto [ldq, ts] = tile_strides<Bf16>(nv, D);
  const int Sk = int(a.k_end);
  Carve c{scratch};  // layout: attention_naive (cpu/attention.cpp)
  float* ST = c.take(size_t(Sk) * ldq);
  float* K = c.take(size_t(Sk) * ts);
  float* V = c.take(size_t(Sk) * ts);
  float* Q = c.take(size_t(M) * dp);
  float* QT = c.take(size_t(dp) * ldq);
  float* O = c.take(size_t(M) * dp);
  float* m = c.take(ldq);
  float* l = c.take(ldq);
  float* ones = c.take(ldq);
  auto* lim = reinterpret_cast<int32_t*>(c.take(ldq));
  int64_t lim_min;
  init_rows(a, dp, Bf16 ? nullptr : Q, O, m, l, &lim_min);
#if defined(__AVX512BF16__)
  if constexpr (Bf16) {
    auto* Kb = reinterpret_cast<uint16_t*>(K);
    load_tile_bf16(a.k, 0, Sk, D, dp, Kb, Sk);
    load_v2_bf16(a.v, 0, Sk, D, dp, reinterpret_cast<uint32_t*>(V), Sk);
    transpose_q_bf16(a, M, reinterpret_cast<uint32_t*>(QT), ldq, m, l);
    qkt_block_bf16(reinterpret_cast<const uint32_t*>(QT), ldq, Kb, dp, D / 2, Sk, nv, a.scale_log2, ST);
  } else
#endif
  {
    load_tile(a.dtype, a.k, 0, Sk, D, ts, K, Sk);
    load_tile(a.dtype, a.v, 0, Sk, D, ts, V, Sk);
    transpose_q(Q, M, dp, D, QT, ldq, m, l);
    qkt_block(QT, ldq, K, ts, D, Sk, nv, ST);
  }
  key_limits(a, M, 0, Sk, ldq, lim);
  for (size_t r = 0; r < ldq; ++r) ones[r] = 1;
  const vf neg = splat(kNegInf);
  for (int j = 0; j < Sk; ++j)
    for (int rv = 0; rv < nv; ++rv) {
      float* x = ST + size_t(j) * ldq + size_t(rv) * W;
      vf v = ld(x);
      v = (vi{} + j) > ld_i(lim + size_t(rv) * W) ? neg : v;
      st(x, v);
      st(m + size_t(rv) * W, v > ld(m + size_t(rv) * W) ? v : ld(m + size_t(rv) * W));
    }
  for (int rv = 0; rv < nv; ++rv) {  // fully masked rows: exponentials of −inf, 0
    const vf mv = ld(m + size_t(rv) * W);
    st(m + size_t(rv) * W, mv == neg ? vf{} : mv);
  }
  for (int j = 0; j < Sk; ++j)
    for (int rv = 0; rv < nv; ++rv) {
      float* x = ST + size_t(j) * ldq + size_t(rv) * W;
      const vf p = exp2v(ld(x) - ld(m + size_t(rv) * W));
      st(x, p);
      st(l + size_t(rv) * W, ld(l + size_t(rv) * W) + p);
    }
  for (size_t r = 0; r < ldq; ++r) l[r] = l[r] > 0 ? 1.f / l[r] : 0.f;
  if constexpr (Bf16) {
    // P rounded to bf16 and packed in place (pairs of keys, as in softmax_tile_t); the
    // divide by l moves to the output rows, as FlashAttention's.
    for (int j = 0; j < Sk; j += 2)
      for (int rv = 0; rv < nv; ++rv) {
        const vf p0 = ld(ST + size_t(j) * ldq + size_t(rv) * W);
        const vf p1 = j + 1 < Sk ? ld(ST + size_t(j + 1) * ldq + size_t(rv) * W) : vf{};
        st(ST + size_t(j / 2) * ldq + size_t(rv) * W, pack_p(p0, p1));
      }
  } else {
    for (int j = 0; j < Sk; ++j)
      for (int rv = 0; rv < nv; ++rv) {
        float* x = ST + size_t(j) * ldq + size_t(rv) * W;
        st(x, ld(x) * ld(l + size_t(rv) * W));
      }
  }
#if defined(__AVX512BF16__)
  if constexpr (Bf16) {
    pv_all_bf16(reinterpret_cast<const uint32_t*>(ST), ldq, ones, reinterpret_cast<const uint32_t*>(V), (Sk + 1) / 2, dp, M, O);
    for (int r = 0; r < M; ++r)
      for (int d = 0; d < D; ++d) O[size_t(r) * dp + d] *= l[r];
  } else
#endif
    pv_all(ST, 1, ldq, ones, V, ts, Sk, dp, M, O);
  for (int r = 0; r < M; ++r) store_f32_n(a.out_dtype, O + size_t(r) * dp, a.out[r], D);
}

}  // namespace

void attend_rows(const AttnRowsJob& a, float* scratch) {
#if defined(__AVX512BF16__)
  if (a.dtype == 2) return attend_rows_t<true>(a, scratch);
#endif
  attend_rows_t<false>(a, scratch);
}

void attend_rows_naive(const AttnRowsJob& a, float* scratch) {
#if defined(__AVX512BF16__)
  if (a.dtype == 2) return attend_rows_naive_t<true>(a, scratch);
#endif
  attend_rows_naive_t<false>(a, scratch);
}

// Flash-decoding's combine for one row: the ns partial outputs O_s (f32, part_o +
// s·o_stride) with their base-2 LSEs (lse2[s·l_stride]) merge as Σ w_s·O_s / Σ w_s,
// w_s = 2^(lse2_s − max lse2), into out (out_dtype); returns the merged base-2 LSE. A
// split that saw no key (−inf) weighs nothing; if none saw one, out is 0 and the LSE
// −inf. (Was a scalar loop in the driver, its f16 stores without F16C: ~6 µs of each
// Sk = 1024 decode call, after the kernels.)
float combine_row(const float* part_o, size_t o_stride, const float* lse2, size_t l_stride, int ns, int D,
                  int out_dtype, void* out) {
  float mx = kNegInf;
  for (int s = 0; s < ns; ++s) mx = std::max(mx, lse2[size_t(s) * l_stride]);
  alignas(64) float acc[256];  // D ≤ 256 (checked by the bindings)
  for (int d = 0; d < D; ++d) acc[d] = 0;
  float wsum = 0;
  for (int s = 0; s < ns; ++s) {
    const float ls = lse2[size_t(s) * l_stride];
    if (ls == kNegInf) continue;
    const float w = std::exp2(ls - mx);
    const float* o = part_o + size_t(s) * o_stride;
    wsum += w;
    for (int d = 0; d < D; ++d) acc[d] += w * o[d];
  }
  const float inv = wsum > 0 ? 1.f / wsum : 0.f;
  for (int d = 0; d < D; ++d) acc[d] *= inv;
  store_f32_n(out_dtype, acc, out, D);
  return wsum > 0 ? mx + std::log2(wsum) : kNegInf;
}

void attend_decode(const AttnRowsJob& a, float* scratch) {
  if (a.dtype == 0) attend_decode_t<0>(a, scratch);
  else if (a.dtype == 1) attend_decode_t<1>(a, scratch);
  else attend_decode_t<2>(a, scratch);
}

}  // namespace llmk::cpu::LLMK_ISA_NS
