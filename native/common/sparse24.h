// 2:4 structured sparsity, the public compressed format shared by every backend:
//   values [N, K/2]   the two kept elements of each group of 4 along K, in order
//   meta   i32 [N, ceil(K/32)]  one nibble per group: bits 1:0 = index of the first
//          kept element, bits 3:2 = the second (ascending, PTX "ordered_metadata");
//          group g of a row sits in word g/8 at bits 4·(g%8).
// Legal nibbles: 0x4 (0,1) 0x8 (0,2) 0x9 (1,2) 0xC (0,3) 0xD (1,3) 0xE (2,3).
// K must be a multiple of 4 (every real model's is; we reject other K rather than pad).
#pragma once
#include <cstdint>

#include "common/half.h"

namespace llmk {

LLMK_HD int sparse24_meta_words(int64_t K) { return int((K / 4 + 7) / 8); }

LLMK_HD uint32_t sparse24_nibble(int i0, int i1) { return uint32_t(i0 | (i1 << 2)); }

LLMK_HD bool sparse24_nibble_legal(uint32_t nib) {
  const uint32_t i0 = nib & 3u, i1 = (nib >> 2) & 3u;
  return i0 < i1;
}

// Picks the two kept positions of a group from its non-zero mask (bit j = element j is
// non-zero, at most 2 bits set): the non-zeros, completed with the lowest zero
// positions so that the pair is always two distinct ascending indices.
LLMK_HD void sparse24_pick(uint32_t nonzero_mask, int* i0, int* i1) {
  int picked[2] = {-1, -1}, n = 0;
  for (int j = 0; j < 4 && n < 2; ++j)
    if (nonzero_mask & (1u << j)) picked[n++] = j;
  for (int j = 0; j < 4 && n < 2; ++j)
    if (!(nonzero_mask & (1u << j)) && j != picked[0]) picked[n++] = j;
  if (picked[0] > picked[1]) {
    const int t = picked[0];
    picked[0] = picked[1];
    picked[1] = t;
  }
  *i0 = picked[0];
  *i1 = picked[1];
}

}  // namespace llmk
