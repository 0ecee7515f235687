// Shared between the attention driver (cpu/attention.cpp) and its per-ISA kernels
// (cpu/isa/attention.cpp): where the K/V rows of one kv head are, and what one call
// of the tile kernel computes.
#pragma once
#include <cstdint>

namespace llmk::cpu {

// Keys per K/V tile: 64 f32 rows of D ≤ 256 are 64 KiB for K and V together, which
// stays in L2 while a block of query rows streams past it.
constexpr int kAttnTileKeys = 64;
// Query rows per prefill task (all q heads of one kv head share them, so K/V tiles are
// converted once per group): enough rows to amortize the conversion of each tile.
// B=1 Hq=32 Hkv=8 D=128 f16 on 2 threads, rows 64 / 128 / 256: S=2048 160 / 156 / 153
// ms, causal 84 / 81 / 83 ms, S=512 causal 5.8 / 5.8 / 6.8 ms (too few tasks).
constexpr int kAttnTaskRows = 128;

// Token rows of K or V for one kv head: contiguous, or scattered over a paged cache.
struct KvRows {
  const char* base = nullptr;     // token 0 of this head (contiguous) / slot 0 of the cache at this head (paged)
  int64_t stride = 0;             // bytes between consecutive tokens / slots (Hkv · D · element size)
  const int32_t* pages = nullptr; // paged: the sequence's block-table row; null when contiguous
  int64_t page_size = 1;
  const char* row(int64_t j) const {
    return pages ? base + (int64_t(pages[j / page_size]) * page_size + j % page_size) * stride : base + j * stride;
  }
  // out[i] = row(j0 + i) for i < n, with one division for the run (the decode kernel
  // takes 16 rows per 8 keys: a division per row cost ~4% of its time).
  void rows(int64_t j0, int n, const char** out) const {
    if (!pages) {
      for (int i = 0; i < n; ++i) out[i] = base + (j0 + i) * stride;
      return;
    }
    int64_t pg = j0 / page_size, off = j0 - pg * page_size;
    const char* p = base + (int64_t(pages[pg]) * page_size + off) * stride;
    for (int i = 0; i < n; ++i) {
      out[i] = p;
      p += stride;
      if (++off == page_size && i + 1 < n) {
        off = 0;
        p = base + int64_t(pages[++pg]) * page_size * stride;
      }
    }
  }
};

// One call of the tile kernel: `rows` query rows of `heads` consecutive kv heads
// (rows / heads rows per head, head-major) attend to keys
// [k_begin, k_end); row r sees keys j <= last_key[r] only (causal / length limit).
// Writes row r's output, normalized, to out[r] (dtype out_dtype: 0 f32, 1 f16, 2 bf16)
// and its log-sum-exp in base 2 (of the scaled scores) to lse2[r]; a row that sees
// no key gets 0 and -inf.
struct AttnRowsJob {
  int dtype = 0;                  // q, k, v element type: 0 f32, 1 f16, 2 bf16
  int D = 0;
  float scale_log2 = 0;           // softmax scale · log2(e): scores come out in the exp2 domain
  int rows = 0;
  // kv heads: the decode kernel covers every head of a token (rows / heads q heads per
  // kv head); the prefill kernel takes rows of one kv head (heads = 1).
  int heads = 1;
  const char* const* q = nullptr; // per row
  const int64_t* last_key = nullptr;
  KvRows k, v;                    // at the first of the `heads` heads
  int64_t k_begin = 0, k_end = 0;
  int out_dtype = 0;
  void* const* out = nullptr;     // per row
  float* lse2 = nullptr;
};

// Paged decode splits are whole multiples of this many keys (the decode kernel itself
// steps 8 keys at a time, 16 for one-row groups: kDecStep in cpu/isa/attention.cpp).
constexpr int kAttnDecodeKeys = 32;

// Row stride, in floats, of a matrix whose rows an inner loop walks one after another
// (the K/V tiles along keys, the transposed Q along d, the scores along keys): at
// least `floats`, whole 64-byte lines and an odd number of them. Rows a power of two
// lines apart fall into a few L1 sets: at D = 128 and 128 rows every such matrix had
// rows 512 bytes (8 lines) apart, so the 64 rows of a V tile and of the scores that
// P·V walks together shared 8 of the 64 sets and evicted each other. Measured on Zen 3
// (inline-asm copy of the P·V inner loop, 64 keys): 3.0 ns a key at 512-byte strides,
// 1.95 at 576, 1.93 contiguous.
inline int64_t attn_walk_stride(int64_t floats) { return ((floats + 15) / 16 | 1) * 16; }

// f32 scratch the prefill tile kernel needs for `rows` rows of head dim D: Q rows, Q
// transposed, O rows, a K and a V tile, the transposed scores of a tile, m, l, alpha
// and the per-row key limits (strides as attend_rows gives them: attn_walk_stride).
inline int64_t attn_scratch_floats(int rows, int D) {
  const int64_t dp = (D + 15) / 16 * 16, mp = attn_walk_stride(rows), ts = attn_walk_stride(D);
  const int64_t n = 2 * int64_t(rows) * dp + dp * mp + 2 * int64_t(kAttnTileKeys) * ts + int64_t(kAttnTileKeys) * mp + 4 * mp;
  return (n + 15) / 16 * 16;  // keeps what callers place after it 64-byte aligned
}

// f32 scratch of the decode kernel: Q and O rows, one step's scores (at most 32), m
// and l as vectors (at most 16 lanes per row) and per row, alpha.
inline int64_t attn_decode_scratch_floats(int rows, int D) {
  const int64_t dp = (D + 15) / 16 * 16;
  const int64_t n = 2 * int64_t(rows) * dp + 32 + 2 * int64_t(rows) * 16 + 16 + 2 * int64_t(rows);
  return (n + 15) / 16 * 16;
}

}  // namespace llmk::cpu
