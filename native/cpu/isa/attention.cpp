// FlashAttention tile kernel on the CPU, compiled once per ISA (see CMakeLists). A
// block of query rows (pre-scaled by scale·log2 e, so every exponential is an exp2)
// streams over K/V tiles of kAttnTileKeys keys with an online softmax: running max m
// and sum l per row in f32, the f32 output accumulator rescaled by 2^(m_old − m_new)
// when the max grows, one division by l at the end. Nothing of size rows × keys beyond
// one tile ever exists. f16/bf16 tiles are converted to f32 once per tile and shared
// by all rows (every q head of a GQA group).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

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

// The sums of four accumulators, out[i · stride] = Σ lanes of a[i].
inline void hsum4(const vf* a, float* out, size_t stride) {
#if defined(__AVX2__)
  const __m128 s = _mm_hadd_ps(_mm_hadd_ps(fold128(a[0]), fold128(a[1])), _mm_hadd_ps(fold128(a[2]), fold128(a[3])));
  alignas(16) float t[4];
  _mm_store_ps(t, s);
  for (int i = 0; i < 4; ++i) out[i * stride] = t[i];
#else
  for (int i = 0; i < 4; ++i) out[i * stride] = hsum(a[i]);
#endif
}

// S[r][j] = q_r · k_j for R rows × J keys per register block (R·J accumulators; each
// Q and K load feeds J or R FMAs, so the loads keep up with the FMA pipes).
template <int R, int J>
inline void qk_tile(const float* q, const float* k, size_t ks, int j, int dp, float* s, size_t s_stride) {
  vf acc[J][R];
  for (int jj = 0; jj < J; ++jj)
    for (int r = 0; r < R; ++r) acc[jj][r] = vf{};
  for (int d = 0; d < dp; d += W) {
    vf kv[J];
    for (int jj = 0; jj < J; ++jj) kv[jj] = ld(k + size_t(j + jj) * ks + d);
    for (int r = 0; r < R; ++r) {
      const vf qv = ld(q + size_t(r) * dp + d);
      for (int jj = 0; jj < J; ++jj) acc[jj][r] += qv * kv[jj];
    }
  }
  for (int jj = 0; jj < J; ++jj) {
    if constexpr (R == 4) {
      hsum4(acc[jj], s + j + jj, s_stride);
    } else {
      for (int r = 0; r < R; ++r) s[size_t(r) * s_stride + j + jj] = hsum(acc[jj][r]);
    }
  }
}

template <int R>
inline void qk_block(const float* q, const float* k, size_t ks, int n, int dp, float* s, size_t s_stride) {
  int j = 0;
  for (; j + 2 <= n; j += 2) qk_tile<R, 2>(q, k, ks, j, dp, s, s_stride);
  for (; j < n; ++j) qk_tile<R, 1>(q, k, ks, j, dp, s, s_stride);
}

// O[r][d0 : d0 + C·W] = alpha_r · O + Σ_j P[r][j] · V[j][...] for R rows, C vectors.
template <int R, int C>
inline void pv_block(const float* p, size_t p_stride, const float* alpha, const float* v, size_t vs, int n, int dp,
                     int d0, float* o) {
  vf acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = ld(o + size_t(r) * dp + d0 + c * W) * alpha[r];
  for (int j = 0; j < n; ++j) {
    const float* vj = v + size_t(j) * vs + d0;
    vf vv[C];
    for (int c = 0; c < C; ++c) vv[c] = ld(vj + c * W);
    for (int r = 0; r < R; ++r) {
      const vf pr = splat(p[size_t(r) * p_stride + j]);
      for (int c = 0; c < C; ++c) acc[r][c] += pr * vv[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) st(o + size_t(r) * dp + d0 + c * W, acc[r][c]);
}

template <int R>
inline void pv_rows(const float* p, size_t p_stride, const float* alpha, const float* v, size_t vs, int n, int dp,
                    float* o) {
  int d0 = 0;
  for (; d0 + kC * W <= dp; d0 += kC * W) pv_block<R, kC>(p, p_stride, alpha, v, vs, n, dp, d0, o);
  for (; d0 < dp; d0 += W) pv_block<R, 1>(p, p_stride, alpha, v, vs, n, dp, d0, o);
}

// Loads token rows [j0, j0 + n) of `heads` consecutive kv heads as f32, [n][heads][dp]
// (the padding is zero). With one head of several, successive rows lie Hkv·D elements
// apart, which the hardware prefetcher does not follow: rows kPrefetch ahead (below
// `limit`) are prefetched. Rows spanning every head (decode: one tile of keys for all
// kv heads) are prefetched two tiles ahead, so the loads of the next tiles overlap this
// tile's arithmetic — measured on Zen 5, Sk=8192 Hkv=8 D=128 f16: 14.8 GB/s with no
// prefetch, 18.8 one tile ahead, 21.3 two, 21.8 four (an Intel VM earlier saw rows 8
// ahead only add stalls).
constexpr int kPrefetch = 8;
inline void load_tile(int dtype, const KvRows& src, int heads, int64_t j0, int n, int D, int dp, float* dst,
                      int64_t limit) {
  const int es = dtype == 0 ? 4 : 2, row_bytes = heads * D * es;
  const int ahead = heads == 1 ? kPrefetch : 2 * n;
  for (int j = 0; j < n; ++j) {
    if (j0 + j + ahead < limit) {
      const char* next = src.row(j0 + j + ahead);
      for (int b = 0; b < row_bytes; b += 64) __builtin_prefetch(next + b);
    }
    const char* in = src.row(j0 + j);
    for (int h = 0; h < heads; ++h) {
      float* row = dst + (size_t(j) * heads + h) * dp;
      load_f32_n(dtype, in + size_t(h) * D * es, row, D);
      for (int d = D; d < dp; ++d) row[d] = 0;
    }
  }
}

}  // namespace

void attend_rows(const AttnRowsJob& a, float* scratch) {
  const int M = a.rows, D = a.D, dp = (D + W - 1) / W * W;
  float* Q = scratch;
  float* O = Q + size_t(M) * dp;
  float* K = O + size_t(M) * dp;
  const int H = a.heads, rph = M / H;
  const size_t kvs = size_t(H) * dp;  // f32 stride between keys in the K/V tiles
  float* V = K + size_t(attn_tile_keys(H)) * kvs;
  float* S = V + size_t(attn_tile_keys(H)) * kvs;
  float* m = S + size_t(M) * kBc;
  float* l = m + M;
  float* alpha = l + M;

  int64_t lim_max = -1, lim_min = std::numeric_limits<int64_t>::max();
  for (int r = 0; r < M; ++r) {
    float* qr = Q + size_t(r) * dp;
    load_f32_n(a.dtype, a.q[r], qr, D);
    for (int d = 0; d < D; ++d) qr[d] *= a.scale_log2;
    for (int d = D; d < dp; ++d) qr[d] = 0;
    std::memset(O + size_t(r) * dp, 0, sizeof(float) * dp);
    m[r] = kNegInf;
    l[r] = 0;
    lim_max = a.last_key[r] > lim_max ? a.last_key[r] : lim_max;
    lim_min = a.last_key[r] < lim_min ? a.last_key[r] : lim_min;
  }
  // Tiles past every row's last visible key are skipped (the causal upper triangle).
  const int64_t k_end = a.k_end < lim_max + 1 ? a.k_end : lim_max + 1;
  const int step = attn_tile_keys(H);
  for (int64_t j0 = a.k_begin; j0 < k_end; j0 += step) {
    const int n = int(k_end - j0 < step ? k_end - j0 : step), nw = (n + W - 1) / W * W;
    load_tile(a.dtype, a.k, H, j0, n, D, dp, K, k_end);
    load_tile(a.dtype, a.v, H, j0, n, D, dp, V, k_end);
    int r = 0;
    for (int h = 0; h < H; ++h) {
      const int end = (h + 1) * rph;
      for (r = h * rph; r + 4 <= end; r += 4) qk_block<4>(Q + size_t(r) * dp, K + h * dp, kvs, n, dp, S + size_t(r) * kBc, kBc);
      for (; r < end; ++r) qk_block<1>(Q + size_t(r) * dp, K + h * dp, kvs, n, dp, S + size_t(r) * kBc, kBc);
    }
    // Masking only where the tile crosses some row's limit (boundary tiles).
    const bool boundary = j0 + n - 1 > lim_min;
    for (r = 0; r < M; ++r) {
      float* s = S + size_t(r) * kBc;
      const int visible = boundary ? int(a.last_key[r] - j0 + 1 < 0 ? 0 : a.last_key[r] - j0 + 1 < n ? a.last_key[r] - j0 + 1 : n) : n;
      for (int j = visible; j < nw; ++j) s[j] = kNegInf;
      vf mx = splat(kNegInf);
      for (int j = 0; j < nw; j += W) {
        const vf x = ld(s + j);
        mx = x > mx ? x : mx;
      }
      const float tile_max = hmax(mx), m_new = tile_max > m[r] ? tile_max : m[r];
      if (m_new == kNegInf) {  // nothing visible yet: P = 0, O and l stay 0
        std::memset(s, 0, sizeof(float) * nw);
        alpha[r] = 1;
        continue;
      }
      alpha[r] = std::exp2(m[r] - m_new);
      vf sum = vf{};
      for (int j = 0; j < nw; j += W) {
        const vf p = exp2v(ld(s + j) - m_new);
        st(s + j, p);
        sum += p;
      }
      l[r] = l[r] * alpha[r] + hsum(sum);
      m[r] = m_new;
    }
    for (int h = 0; h < H; ++h) {
      const int end = (h + 1) * rph;
      const float* vh = V + h * dp;
      for (r = h * rph; r + 4 <= end; r += 4) pv_rows<4>(S + size_t(r) * kBc, kBc, alpha + r, vh, kvs, n, dp, O + size_t(r) * dp);
      for (; r < end; ++r) pv_rows<1>(S + size_t(r) * kBc, kBc, alpha + r, vh, kvs, n, dp, O + size_t(r) * dp);
    }
  }
  for (int r = 0; r < M; ++r) {
    float* o = O + size_t(r) * dp;
    const float inv = l[r] > 0 ? 1.f / l[r] : 0.f;
    for (int d = 0; d < D; ++d) o[d] *= inv;
    a.lse2[r] = l[r] > 0 ? m[r] + std::log2(l[r]) : kNegInf;
    store_f32_n(a.out_dtype, o, a.out[r], D);
  }
}

// The baseline the benchmark compares against: the same register-blocked kernels, but
// the whole scores block [rows, Sk] is materialized in f32, softmaxed, then multiplied
// by V (K and V converted once in full). Contiguous K/V of one kv head. Scratch:
// rows · Sk rounded up to kBc + (2 · Sk + 2 · rows) · dp floats.
void attend_rows_naive(const AttnRowsJob& a, float* scratch) {
  const int M = a.rows, D = a.D, dp = (D + W - 1) / W * W;
  const int64_t Sk = a.k_end;
  const size_t ss = size_t((Sk + kBc - 1) / kBc * kBc);
  float* S = scratch;
  float* K = S + size_t(M) * ss;
  float* V = K + size_t(Sk) * dp;
  float* Q = V + size_t(Sk) * dp;
  float* O = Q + size_t(M) * dp;
  float ones[4] = {1, 1, 1, 1};
  load_tile(a.dtype, a.k, 1, 0, int(Sk), D, dp, K, Sk);
  load_tile(a.dtype, a.v, 1, 0, int(Sk), D, dp, V, Sk);
  for (int r = 0; r < M; ++r) {
    float* qr = Q + size_t(r) * dp;
    load_f32_n(a.dtype, a.q[r], qr, D);
    for (int d = 0; d < D; ++d) qr[d] *= a.scale_log2;
    for (int d = D; d < dp; ++d) qr[d] = 0;
  }
  int r = 0;
  for (; r + 4 <= M; r += 4) qk_block<4>(Q + size_t(r) * dp, K, dp, int(Sk), dp, S + size_t(r) * ss, ss);
  for (; r < M; ++r) qk_block<1>(Q + size_t(r) * dp, K, dp, int(Sk), dp, S + size_t(r) * ss, ss);
  for (r = 0; r < M; ++r) {
    float* s = S + size_t(r) * ss;
    const int64_t visible = a.last_key[r] + 1 < Sk ? (a.last_key[r] + 1 < 0 ? 0 : a.last_key[r] + 1) : Sk;
    for (size_t j = size_t(visible); j < ss; ++j) s[j] = kNegInf;
    vf mxv = splat(kNegInf);
    for (size_t j = 0; j < ss; j += W) {
      const vf x = ld(s + j);
      mxv = x > mxv ? x : mxv;
    }
    const float mx = hmax(mxv);
    vf sum = vf{};
    for (size_t j = 0; j < ss; j += W) {
      const vf p = mx == kNegInf ? vf{} : exp2v(ld(s + j) - mx);
      st(s + j, p);
      sum += p;
    }
    const float tot = hsum(sum), inv = tot > 0 ? 1.f / tot : 0.f;
    for (size_t j = 0; j < ss; ++j) s[j] *= inv;
    std::memset(O + size_t(r) * dp, 0, sizeof(float) * dp);
  }
  for (r = 0; r + 4 <= M; r += 4) pv_rows<4>(S + size_t(r) * ss, ss, ones, V, dp, int(Sk), dp, O + size_t(r) * dp);
  for (; r < M; ++r) pv_rows<1>(S + size_t(r) * ss, ss, ones, V, dp, int(Sk), dp, O + size_t(r) * dp);
  for (r = 0; r < M; ++r) store_f32_n(a.out_dtype, O + size_t(r) * dp, a.out[r], D);
}

}  // namespace llmk::cpu::LLMK_ISA_NS
