// RoPE rows on the CPU, compiled once per ISA (see CMakeLists): the per-token cos/sin
// table is built once and applied to every head of q and k. neox pairs are two
// contiguous halves and gptj pairs are interleaved; both loops are plain f32 code the
// compiler vectorizes for the ISA of this copy.
#include <cmath>
#include <cstdint>

#include "common/half.h"
#include "common/rope.h"

#ifndef LLMK_ISA_NS
#error "compiled through the per-ISA wrappers only"
#endif

namespace llmk::cpu::LLMK_ISA_NS {

namespace {

template <class T>
inline float ld(const T* p, int i);
template <>
inline float ld<float>(const float* p, int i) { return p[i]; }
template <class T>
inline void st(T* p, int i, float v);
template <>
inline void st<float>(float* p, int i, float v) { p[i] = v; }

struct F16 { uint16_t bits; };
struct BF16 { uint16_t bits; };
template <>
inline float ld<F16>(const F16* p, int i) { return f16_to_f32(p[i].bits); }
template <>
inline void st<F16>(F16* p, int i, float v) { p[i].bits = f32_to_f16(v); }
template <>
inline float ld<BF16>(const BF16* p, int i) { return bf16_to_f32(p[i].bits); }
template <>
inline void st<BF16>(BF16* p, int i, float v) { p[i].bits = f32_to_bf16(v); }

template <class T, RopeStyle S>
void rotate_heads(T* x, int heads, int D, int half, const float* c, const float* s, float* a, float* b) {
  for (int h = 0; h < heads; ++h) {
    T* row = x + size_t(h) * D;
    // Gather the pair operands into two f32 lanes-friendly arrays, rotate, scatter.
    for (int i = 0; i < half; ++i) {
      const int i0 = S == RopeStyle::Neox ? i : 2 * i, i1 = S == RopeStyle::Neox ? i + half : 2 * i + 1;
      a[i] = ld(row, i0);
      b[i] = ld(row, i1);
    }
    for (int i = 0; i < half; ++i) {
      const float x0 = a[i], x1 = b[i];
      a[i] = x0 * c[i] - x1 * s[i];
      b[i] = x1 * c[i] + x0 * s[i];
    }
    for (int i = 0; i < half; ++i) {
      const int i0 = S == RopeStyle::Neox ? i : 2 * i, i1 = S == RopeStyle::Neox ? i + half : 2 * i + 1;
      st(row, i0, a[i]);
      st(row, i1, b[i]);
    }
  }
}

template <class T>
void rotate(void* x, int heads, int D, const RopeConfig& cfg, const float* c, const float* s, float* a, float* b) {
  const int half = cfg.rotary_dim / 2;
  if (cfg.style == RopeStyle::Neox)
    rotate_heads<T, RopeStyle::Neox>(static_cast<T*>(x), heads, D, half, c, s, a, b);
  else
    rotate_heads<T, RopeStyle::Gptj>(static_cast<T*>(x), heads, D, half, c, s, a, b);
}

}  // namespace

// One token: q_row = &q[t,0,0], k_row = &k[t,0,0] (or null); dtype 0 f32, 1 f16, 2 bf16.
// scratch holds 4 · rotary_dim/2 floats.
void rope_token(int dtype, void* q_row, int hq, void* k_row, int hkv, int D, int32_t pos, const RopeConfig& cfg,
                const RopeTable& table, float* scratch) {
  const int half = cfg.rotary_dim / 2;
  float* c = scratch;
  float* s = scratch + half;
  const float scale = float(table.attn_scale), sign = cfg.inverse ? -1.f : 1.f;
  for (int i = 0; i < half; ++i) {
    const float ang = rope_angle(pos, table.inv_freq[i]);
    c[i] = std::cos(ang) * scale;
    s[i] = sign * std::sin(ang) * scale;
  }
  float* a = scratch + 2 * half;
  float* b = scratch + 3 * half;
  auto apply = [&](void* row, int heads) {
    if (!row) return;
    if (dtype == 0) rotate<float>(row, heads, D, cfg, c, s, a, b);
    else if (dtype == 1) rotate<F16>(row, heads, D, cfg, c, s, a, b);
    else rotate<BF16>(row, heads, D, cfg, c, s, a, b);
  };
  apply(q_row, hq);
  apply(k_row, hkv);
}

}  // namespace llmk::cpu::LLMK_ISA_NS
