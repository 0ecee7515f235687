// RoPE rows on the CPU, compiled once per ISA (see CMakeLists). Per token: the
// cos/sin table is built once (common/rope.h rope_sincos: f64, vectorizable, no libm
// call per pair), then every head of q and k is rotated: the rotary part of
// a row is converted to f32 in one bulk pass, rotated, and converted back.
#include <cmath>
#include <cstdint>

#include "common/rope.h"
#include "cpu/isa/convert_simd.h"

namespace llmk::cpu::LLMK_ISA_NS {

namespace {

void rotate_heads(int dtype, int es, char* x, int heads, int D, const RopeConfig& cfg, const float* c,
                  const float* s, float* buf) {
  const int half = cfg.rotary_dim / 2, rd = cfg.rotary_dim;
  float* a = buf + rd;  // deinterleaved operands for gptj
  float* b = a + half;
  for (int h = 0; h < heads; ++h) {
    char* row = x + size_t(h) * D * es;
    load_f32_n(dtype, row, buf, rd);
    if (cfg.style == RopeStyle::Neox) {
      for (int i = 0; i < half; ++i) {
        const float x0 = buf[i], x1 = buf[i + half];
        buf[i] = x0 * c[i] - x1 * s[i];
        buf[i + half] = x1 * c[i] + x0 * s[i];
      }
    } else {
      for (int i = 0; i < half; ++i) {
        a[i] = buf[2 * i];
        b[i] = buf[2 * i + 1];
      }
      for (int i = 0; i < half; ++i) {
        buf[2 * i] = a[i] * c[i] - b[i] * s[i];
        buf[2 * i + 1] = b[i] * c[i] + a[i] * s[i];
      }
    }
    store_f32_n(dtype, buf, row, rd);
  }
}

}  // namespace

// `heads` rows of D elements starting at `rows`, all at position `pos`. The cos/sin
// table in scratch[0, rotary_dim) is rebuilt when fresh_table (once per token: q
// first, then k reuses it). scratch holds 4 · rotary_dim floats.
void rope_rows(int dtype, void* rows, int heads, int D, int32_t pos, const RopeConfig& cfg, const RopeTable& table,
               float* scratch, bool fresh_table) {
  const int half = cfg.rotary_dim / 2;
  float* c = scratch;
  float* s = scratch + half;
  if (fresh_table) {
    const double scale = table.attn_scale, sign = cfg.inverse ? -1.0 : 1.0;
    const double* f = table.inv_freq.data();
    for (int i = 0; i < half; ++i) {
      double sn, cs;
      rope_sincos(pos, f[i], &sn, &cs);
      c[i] = float(cs * scale);
      s[i] = float(sign * sn * scale);
    }
  }
  rotate_heads(dtype, dtype == 0 ? 4 : 2, static_cast<char*>(rows), heads, D, cfg, c, s, scratch + 2 * half);
}

}  // namespace llmk::cpu::LLMK_ISA_NS
