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

LLMK_HD int sparse24_lowest_bit(uint32_t x4) { return (x4 & 1u) ? 0 : (x4 & 2u) ? 1 : (x4 & 4u) ? 2 : 3; }

// Picks the two kept positions of a group from its non-zero mask (bit j = element j is
// non-zero, at most 2 bits set): the non-zeros, completed with the lowest zero
// positions, so the pair is always two distinct ascending indices. Branch-light and
// array-free so it stays in registers on the GPU.
LLMK_HD void sparse24_pick(uint32_t nonzero_mask, int* i0, int* i1) {
  uint32_t m = nonzero_mask & 0xfu;
  for (int fill = 0; fill < 2; ++fill) {
    const bool two = (m & (m - 1u)) != 0u;  // at least two bits set
    if (!two) m |= ~m & (m + 1u);           // add the lowest zero bit
  }
  *i0 = sparse24_lowest_bit(m);
  *i1 = sparse24_lowest_bit(m & (m - 1u));
}

}  // namespace llmk
